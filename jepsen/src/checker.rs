//! Checkers over a recorded history: linearizability per group (a model of Pushgateway
//! group semantics, searched in the manner of Wing & Gong with Lowe's memoization) and
//! durability of acknowledged writes.
//!
//! Linearizability is local: checking every group on its own is checking the whole
//! store. Unknown (`Info`) writes may take effect at any point after their invocation,
//! or never; failed operations had no effect; reads must see exactly the model state.

use std::collections::HashSet;

use serde::Serialize;

use crate::history::{by_key, Action, Families, GroupState, Op, Outcome};

/// The verdict of one checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Valid,
    Invalid(Vec<String>),
    /// The search ran out of budget: neither proven nor refuted.
    Unknown(String),
}

/// The model: what a write does to the group, and whether a read fits.
fn step(state: &GroupState, action: &Action) -> Option<GroupState> {
    match action {
        Action::Put { value } | Action::PutTtl { value, .. } => Some(Some(Families { v: Some(*value), w: None })),
        Action::Post { value } => {
            let v = state.and_then(|f| f.v);
            Some(Some(Families { v, w: Some(*value) }))
        }
        Action::Delete | Action::DeleteMatching => Some(None),
        Action::Read { observed } => (observed.as_ref() == Some(state)).then_some(*state),
        Action::Expire { of } => match state {
            Some(Families { v: Some(v), w: None }) if v == of => Some(None),
            other => Some(*other),
        },
    }
}

/// The expiries the server may apply: one [`Action::Expire`] per PUT with a TTL that may
/// have taken effect, from its invocation plus the TTL on (the server stamps the push
/// after it was invoked, and judges by a clock of the same machine), of unknown outcome.
fn with_expiries(ops: &[Op]) -> Vec<Op> {
    let mut out = ops.to_vec();
    for op in ops {
        if let (Action::PutTtl { value, ttl_ms }, Outcome::Ok | Outcome::Info) = (&op.action, op.outcome) {
            out.push(Op {
                id: u64::MAX - op.id,
                client: usize::MAX,
                action: Action::Expire { of: *value },
                invoke_ms: op.invoke_ms + ttl_ms,
                complete_ms: u64::MAX,
                outcome: Outcome::Info,
                status: 0,
                ..op.clone()
            });
        }
    }
    out
}

/// How many search states one group may explore before the verdict is unknown.
const SEARCH_BUDGET: usize = 2_000_000;

/// Checks every group; lists the groups with no valid linearization.
pub fn linearizable(ops: &[Op]) -> Verdict {
    let mut problems = Vec::new();
    let mut unknown = None;
    let ops = with_expiries(ops);
    for (key, list) in by_key(&ops) {
        match linearizable_group(&list) {
            Verdict::Valid => {}
            Verdict::Invalid(mut p) => {
                problems.extend(p.drain(..).map(|m| format!("key {key}: {m}")));
            }
            Verdict::Unknown(why) => unknown = Some(format!("key {key}: {why}")),
        }
    }
    match (problems.is_empty(), unknown) {
        (false, _) => Verdict::Invalid(problems),
        (true, Some(why)) => Verdict::Unknown(why),
        (true, None) => Verdict::Valid,
    }
}

struct Entry<'a> {
    op: &'a Op,
    /// `u64::MAX` for unknown writes: they may take effect any time after invocation.
    complete: u64,
    required: bool,
}

/// Wing & Gong's search with memoization of (linearized set, state).
pub fn linearizable_group(ops: &[&Op]) -> Verdict {
    let entries: Vec<Entry> = ops
        .iter()
        .filter_map(|op| match (op.outcome, &op.action) {
            (Outcome::Fail, _) => None,
            (Outcome::Info, Action::Read { .. }) => None,
            (Outcome::Info, _) => Some(Entry { op, complete: u64::MAX, required: false }),
            (Outcome::Ok, _) => Some(Entry { op, complete: op.complete_ms, required: true }),
        })
        .collect();
    let n = entries.len();
    let words = n.div_ceil(64);
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, GroupState)> = HashSet::new();
    let mut budget = SEARCH_BUDGET;
    let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;

    fn search(
        entries: &[Entry],
        done: &mut Vec<u64>,
        state: GroupState,
        seen: &mut HashSet<(Vec<u64>, GroupState)>,
        budget: &mut usize,
        is_done: &dyn Fn(&[u64], usize) -> bool,
    ) -> Option<bool> {
        let pending_required = entries.iter().enumerate().filter(|(i, e)| e.required && !is_done(done, *i));
        let Some(horizon) = pending_required.map(|(_, e)| e.complete).min() else {
            return Some(true);
        };
        if !seen.insert((done.clone(), state)) {
            return Some(false);
        }
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        for (i, e) in entries.iter().enumerate() {
            if is_done(done, i) || e.op.invoke_ms > horizon {
                continue;
            }
            if let Some(next) = step(&state, &e.op.action) {
                done[i / 64] |= 1 << (i % 64);
                let found = search(entries, done, next, seen, budget, is_done)?;
                done[i / 64] &= !(1 << (i % 64));
                if found {
                    return Some(true);
                }
            }
        }
        Some(false)
    }

    match search(&entries, &mut done, None, &mut seen, &mut budget, &is_done) {
        Some(true) => Verdict::Valid,
        Some(false) => {
            let first_read = entries
                .iter()
                .filter(|e| matches!(e.op.action, Action::Read { .. }))
                .map(|e| format!("op {} read {:?} at {} ms", e.op.id, e.op.action, e.op.invoke_ms))
                .next()
                .unwrap_or_default();
            Verdict::Invalid(vec![format!("no linearization of {} operations ({first_read} ...)", n)])
        }
        None => Verdict::Unknown(format!("search budget exhausted after {SEARCH_BUDGET} states")),
    }
}

/// Acknowledged writes that are gone from the final state although no later operation
/// on the same group could have replaced them. `final_state` is the state every node
/// served after healing, per key.
pub fn lost_writes(ops: &[Op], final_state: &std::collections::BTreeMap<u32, GroupState>) -> Vec<u64> {
    let mut lost = Vec::new();
    for (key, list) in by_key(ops) {
        let state = final_state.get(&key).copied().flatten();
        for op in list.iter().filter(|o| o.outcome == Outcome::Ok) {
            // A PUT with a TTL is meant to go; whether it went early is linearizability's to judge.
            let (value, family_v) = match op.action {
                Action::Put { value } => (value, true),
                Action::Post { value } => (value, false),
                _ => continue,
            };
            let visible = state.is_some_and(|f| if family_v { f.v == Some(value) } else { f.w == Some(value) });
            // Any write or delete invoked after this one was invoked may have replaced it
            // (a PUT also removes `w`; a POST leaves `v` alone).
            let replaced = list.iter().any(|o| {
                o.id != op.id
                    && o.outcome != Outcome::Fail
                    && (o.outcome == Outcome::Info || o.complete_ms >= op.invoke_ms)
                    && match o.action {
                        Action::Put { .. } | Action::PutTtl { .. } | Action::Delete | Action::DeleteMatching => true,
                        Action::Post { .. } => !family_v,
                        Action::Read { .. } | Action::Expire { .. } => false,
                    }
            });
            if !visible && !replaced {
                lost.push(op.id);
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, action: Action, invoke: u64, complete: u64, outcome: Outcome) -> Op {
        Op { id, client: 0, node: 0, key: 1, action, invoke_ms: invoke, complete_ms: complete, outcome, status: 200 }
    }

    fn read(id: u64, v: Option<u64>, w: Option<u64>, invoke: u64, complete: u64) -> Op {
        let observed = if v.is_none() && w.is_none() { None } else { Some(Families { v, w }) };
        op(id, Action::Read { observed: Some(observed) }, invoke, complete, Outcome::Ok)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op(1, Action::Put { value: 1 }, 0, 10, Outcome::Ok),
            read(2, Some(1), None, 11, 12),
            op(3, Action::Post { value: 3 }, 13, 20, Outcome::Ok),
            read(4, Some(1), Some(3), 21, 22),
            op(5, Action::Delete, 23, 30, Outcome::Ok),
            read(6, None, None, 31, 32),
        ];
        assert_eq!(linearizable(&h), Verdict::Valid);
    }

    #[test]
    fn a_stale_read_is_caught() {
        let h = vec![
            op(1, Action::Put { value: 1 }, 0, 10, Outcome::Ok),
            op(2, Action::Put { value: 2 }, 11, 20, Outcome::Ok),
            read(3, Some(1), None, 21, 22),
        ];
        assert!(matches!(linearizable(&h), Verdict::Invalid(_)));
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order() {
        let h = vec![
            op(1, Action::Put { value: 1 }, 0, 10, Outcome::Ok),
            op(2, Action::Put { value: 2 }, 1, 9, Outcome::Ok),
            read(3, Some(1), None, 11, 12),
        ];
        assert_eq!(linearizable(&h), Verdict::Valid);
    }

    #[test]
    fn unknown_writes_may_or_may_not_apply() {
        let applied = vec![op(1, Action::Put { value: 1 }, 0, 10, Outcome::Info), read(2, Some(1), None, 50, 51)];
        assert_eq!(linearizable(&applied), Verdict::Valid);
        let not_applied = vec![op(1, Action::Put { value: 1 }, 0, 10, Outcome::Info), read(2, None, None, 50, 51)];
        assert_eq!(linearizable(&not_applied), Verdict::Valid);
        let failed_but_seen =
            vec![op(1, Action::Put { value: 1 }, 0, 10, Outcome::Fail), read(2, Some(1), None, 50, 51)];
        assert!(matches!(linearizable(&failed_but_seen), Verdict::Invalid(_)));
    }

    /// A group written by a PUT with a TTL may vanish from its invocation plus the TTL on,
    /// not before, and not once a later write gave it another TTL.
    #[test]
    fn expiry_is_an_operation_of_the_model() {
        let put_ttl =
            |id, invoke, complete| op(id, Action::PutTtl { value: id, ttl_ms: 1000 }, invoke, complete, Outcome::Ok);
        let expired = vec![put_ttl(1, 0, 10), read(2, Some(1), None, 500, 510), read(3, None, None, 1200, 1210)];
        assert_eq!(linearizable(&expired), Verdict::Valid);
        let early = vec![put_ttl(1, 0, 10), read(2, None, None, 500, 510)];
        assert!(matches!(linearizable(&early), Verdict::Invalid(_)), "gone before its TTL");
        let refreshed = vec![
            put_ttl(1, 0, 10),
            op(2, Action::Post { value: 2 }, 20, 30, Outcome::Ok),
            read(3, None, None, 5000, 5010),
        ];
        assert!(matches!(linearizable(&refreshed), Verdict::Invalid(_)), "a POST took the TTL away");
        let deleted =
            vec![put_ttl(1, 0, 10), op(2, Action::DeleteMatching, 20, 30, Outcome::Ok), read(3, None, None, 40, 50)];
        assert_eq!(linearizable(&deleted), Verdict::Valid);
        let not_deleted =
            vec![put_ttl(1, 0, 10), op(2, Action::DeleteMatching, 20, 30, Outcome::Ok), read(3, Some(1), None, 40, 50)];
        assert!(matches!(linearizable(&not_deleted), Verdict::Invalid(_)));
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let h = vec![
            op(1, Action::Put { value: 1 }, 0, 10, Outcome::Ok),
            op(2, Action::Post { value: 2 }, 20, 30, Outcome::Ok),
        ];
        let mut final_state = std::collections::BTreeMap::new();
        final_state.insert(1, Some(Families { v: Some(1), w: None }));
        assert_eq!(lost_writes(&h, &final_state), vec![2]);
        final_state.insert(1, Some(Families { v: Some(1), w: Some(2) }));
        assert!(lost_writes(&h, &final_state).is_empty());
        // A later PUT legitimately replaces the POST's family.
        let mut h2 = h.clone();
        h2.push(op(3, Action::Put { value: 3 }, 40, 50, Outcome::Ok));
        final_state.insert(1, Some(Families { v: Some(3), w: None }));
        assert!(lost_writes(&h2, &final_state).is_empty());
    }
}
