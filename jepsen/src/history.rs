//! The recorded history: one entry per operation, invoke and completion, written as
//! JSON lines. A timed-out or otherwise ambiguous operation is `Info` (unknown), never
//! `Fail`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an operation did to one group (grouping key `{job="jepsen",key=<key>}`).
///
/// The group holds up to two families: `v` (set by PUT, which replaces the whole group)
/// and `w` (set by POST, which replaces only `w`). Values are unique per operation, so
/// every observed value names the write that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `PUT` with `v <value>`.
    Put { value: u64 },
    /// `POST` with `w <value>`.
    Post { value: u64 },
    /// `DELETE` of the group.
    Delete,
    /// A read of the group; `observed` is filled on success.
    Read { observed: Option<GroupState> },
    /// `PUT` with `v <value>` and `__ttl__` of `ttl_ms` (`--workload expiry`).
    PutTtl { value: u64, ttl_ms: u64 },
    /// `PUT /api/v1/admin/delete?match[]={job="jepsen",key=~"<key>"}` (`--workload expiry`).
    DeleteMatching,
    /// Not sent: the expiry of the group a [`Action::PutTtl`] of `of` wrote, which the
    /// checker adds as an operation that may take effect any time from that PUT's
    /// invocation plus its TTL on, or never; it removes the group only if that PUT was the
    /// group's last write (a later PUT or POST gives the group another TTL or none).
    Expire { of: u64 },
}

/// What a read saw: `None` if the group did not exist.
pub type GroupState = Option<Families>;

/// The pushed families of a group: `v` and `w` values, if present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Families {
    pub v: Option<u64>,
    pub w: Option<u64>,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Acknowledged (2xx) / read served.
    Ok,
    /// Certainly had no effect (503, connection refused before sending).
    Fail,
    /// Unknown: may or may not have taken effect (504, timeout, broken connection).
    Info,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: usize,
    pub node: usize,
    pub key: u32,
    pub action: Action,
    /// Milliseconds since the start of the run.
    pub invoke_ms: u64,
    pub complete_ms: u64,
    pub outcome: Outcome,
    /// HTTP status, or 0 when no answer came.
    pub status: u16,
}

/// Operations grouped by key, in invocation order.
pub fn by_key(ops: &[Op]) -> BTreeMap<u32, Vec<&Op>> {
    let mut out: BTreeMap<u32, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        out.entry(op.key).or_default().push(op);
    }
    for list in out.values_mut() {
        list.sort_by_key(|o| (o.invoke_ms, o.id));
    }
    out
}
