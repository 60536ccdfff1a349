//! The election gate: a node stands for election only once a majority of the voters
//! said they would vote for it (the pre-vote of the Raft thesis, §9.6). openraft 0.9
//! has no pre-vote, so its own election timer is off (`enable_elect: false`) and this
//! module decides when to call `Raft::trigger().elect()`.
//!
//! Why: without it, a node cut off by a partition times out again and again, raising its
//! term each time. When the partition heals its higher term reaches the leader, which
//! steps down, and the cluster stops accepting pushes until a new election ends (10.9 s
//! was measured). With the gate, the cut-off node's pre-votes are never answered by a
//! majority, its term stays, and the heal changes nothing.
//!
//! The rules:
//! - A voter that has not heard from a leader for its timeout (random between the
//!   minimum and the maximum election timeout, drawn anew each round; the first round
//!   after start is shorter, so that a restarted cluster elects at once) asks every other
//!   voter, in parallel, whether it would vote for it at its next term.
//! - A voter says yes only if it is not the leader, has not heard from a leader for the
//!   lease (openraft's own lease on votes, so that a yes here is a yes there), its term is
//!   below the one asked for, and the candidate's last log id is at least its own. The
//!   answer changes nothing on the voter: no term, no vote is stored.
//! - With yes from a majority (itself included), the node starts a real election, unless
//!   it heard from a leader or its term moved while it asked (late answers are void).
//! - Builds before the gate answer the question 404 (they run openraft's own elections).
//!   A 404 counts as no while that voter's log, as last shown to this node, ends after
//!   this node's log as it is now: it would refuse the vote by its log. It counts as yes
//!   once its log is shown not to, or, while it has shown none, once this node has heard
//!   no leader for [`Gate::patience`]. A voter shows its log in its answer to this node's
//!   vote request and in its own vote request to this node; the last one shown is kept
//!   until the next. Standing with a stale log only raises the term, and a higher term in
//!   the answers of the other voters ends the candidacy of a node that could win
//!   (measured: a node restarted on the new build with a log two entries behind stood
//!   seven times in 17 s beside an earlier build, and each time ended the candidacy of the
//!   one node that could win; a first 404 that counted as yes before anything was known
//!   ended an earlier build's resumed leadership). An earlier build that hears no leader
//!   stands on its own timer, so its log is usually known well within the patience; the
//!   patience bounds the wait for one that never stands (it is a learner in its own log,
//!   say, while the membership that made it a voter reached this node only).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::node::Node;
use crate::raft_types::LogId;
use crate::transport::client::PeerError;
use crate::transport::PATH_PRE_VOTE;

/// How often the gate looks at the time since the leader was last heard.
const TICK: Duration = Duration::from_millis(20);

/// "Would you vote for me at `term`?", asked of each voter before standing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    /// The term the candidate would stand in (its current term plus one).
    pub term: u64,
    pub last_log_id: Option<LogId>,
}

/// Yes, or no with the reason (for the logs).
pub type PreVoteAnswer = Result<(), String>;

/// What the gate keeps: when this node last heard from a leader (an append or a snapshot
/// it took, or a vote it granted), and its timeouts.
pub(crate) struct Gate {
    heard: Mutex<Option<Instant>>,
    /// The minimum and maximum election timeout.
    timeout: (Duration, Duration),
    /// Where each voter's log ends, as it last showed it to this node.
    peer_logs: PeerLogs,
    /// When the gate was made: the silence of a node that has never heard a leader counts
    /// from here.
    born: Instant,
}

/// The last log id each voter showed this node: in its answer to this node's vote request
/// (openraft's `VoteResponse::last_log_id`, recorded by the Raft network client) or in its
/// own vote request to this node (`VoteRequest::last_log_id`, recorded by the peer
/// server's handler), whichever came last; read by the gate. Not forgotten when a leader
/// is heard: a leader that steps down at once (an earlier build resuming its leadership at
/// restart meets this node's higher term) may leave this node's log as far behind as
/// before.
#[derive(Clone, Default)]
pub(crate) struct PeerLogs(Arc<Mutex<HashMap<NodeId, Option<LogId>>>>);

impl PeerLogs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Option<LogId>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `peer` showed its log ending at `last_log_id`, in an answer to a vote request of
    /// this node or in a vote request of its own.
    pub(crate) fn record(&self, peer: NodeId, last_log_id: Option<LogId>) {
        self.lock().insert(peer, last_log_id);
    }

    /// Whether `peer`'s log, as last shown, ends after `mine`: `None` if it has shown none.
    fn ahead_of(&self, peer: NodeId, mine: Option<LogId>) -> Option<bool> {
        self.lock().get(&peer).map(|theirs| *theirs > mine)
    }
}

/// How long after hearing from a leader a node refuses to help elect another, given the
/// minimum and maximum election timeout: the minimum, at least 2 ms (so that openraft's
/// `election_timeout_min`, set 1 ms below it, is positive and below its maximum).
/// Openraft is given it as its lease on votes, and the gate refuses pre-votes for it.
pub(crate) fn vote_lease(timeout: (Duration, Duration)) -> Duration {
    timeout.0.max(Duration::from_millis(2))
}

impl Gate {
    pub(crate) fn new(timeout: (Duration, Duration)) -> Self {
        Gate { heard: Mutex::new(None), timeout, peer_logs: PeerLogs::default(), born: Instant::now() }
    }

    /// Where the Raft network client records the voters' answers (see [`PeerLogs`]).
    pub(crate) fn peer_logs(&self) -> PeerLogs {
        self.peer_logs.clone()
    }

    /// Called with every vote request this node receives, before Raft judges it: the
    /// candidate showed where its log ends (an earlier build standing on its own timer
    /// is how this node learns it, see [`PeerLogs`]).
    pub(crate) fn vote_requested(&self, request: &openraft::raft::VoteRequest<NodeId>) {
        if let Some(candidate) = request.vote.leader_id().voted_for() {
            self.peer_logs.record(candidate, request.last_log_id);
        }
    }

    /// How long a node hears no leader before a 404 from a voter whose log it does not
    /// know counts as yes: three maximum election timeouts, by when an earlier build that
    /// heard no leader either (its lease and one timeout) has stood and shown its log.
    pub(crate) fn patience(&self) -> Duration {
        self.timeout.1 * 3
    }

    /// Whether this node has heard no leader (since the gate was made, if never) for at
    /// least [`Gate::patience`].
    fn out_of_patience(&self, now: Instant) -> bool {
        let silence = self.silence(now).unwrap_or_else(|| now.saturating_duration_since(self.born));
        silence >= self.patience()
    }

    /// See [`vote_lease`].
    pub(crate) fn lease(&self) -> Duration {
        vote_lease(self.timeout)
    }

    /// Called when this node took an append or a snapshot from the leader of its term,
    /// or granted a vote.
    pub(crate) fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn last_heard(&self) -> Option<Instant> {
        *self.heard.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn silence(&self, now: Instant) -> Option<Duration> {
        self.last_heard().map(|at| now.saturating_duration_since(at))
    }

    /// A timeout drawn between `low` and `high`.
    fn draw(low: Duration, high: Duration) -> Duration {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let span = high.saturating_sub(low).as_micros() as u64;
        low + Duration::from_micros(if span == 0 { 0 } else { random % span })
    }
}

impl Node {
    /// This node's answer to a pre-vote (see the module's rules).
    pub(crate) fn pre_vote_answer(&self, request: &PreVoteRequest) -> PreVoteAnswer {
        let metrics = self.raft().metrics().borrow().clone();
        if metrics.state == ServerState::Leader {
            return Err("this node is the leader".into());
        }
        if let Some(silence) = self.gate().silence(Instant::now()) {
            if silence < self.gate().lease() {
                return Err(format!("heard from the leader {} ms ago", silence.as_millis()));
            }
        }
        if request.term <= metrics.current_term {
            return Err(format!("term {} is not above this node's {}", request.term, metrics.current_term));
        }
        let mine = self.raft().data_metrics().borrow().last_log;
        if request.last_log_id < mine {
            return Err(format!("the candidate's log ends before this node's ({mine:?})"));
        }
        Ok(())
    }
}

/// Whether this node may stand: the voters' answers, asked in parallel, its own yes
/// included.
async fn majority_would_vote(node: &Node, voters: Vec<(NodeId, String)>, request: PreVoteRequest) -> bool {
    // More than half of the voters, this node included.
    let total = voters.len() + 1;
    let needed = total / 2 + 1;
    let timeout = node.gate().timeout.0;
    let mut asks = tokio::task::JoinSet::new();
    let out_of_patience = node.gate().out_of_patience(Instant::now());
    for (id, addr) in voters {
        let (peers, request) = (node.peers().clone(), request.clone());
        let log_ahead = node.gate().peer_logs.ahead_of(id, request.last_log_id);
        asks.spawn(async move {
            let answer: Result<PreVoteAnswer, PeerError> =
                peers.call_to(&addr, Some(id), PATH_PRE_VOTE, &request, timeout).await;
            counts_as_yes(id, &answer, log_ahead, out_of_patience)
        });
    }
    let mut yes = 1;
    while let Some(answer) = asks.join_next().await {
        yes += usize::from(answer.unwrap_or(false));
        if yes >= needed {
            return true;
        }
    }
    false
}

/// Whether voter `peer`'s answer to a pre-vote counts as yes (see the module's rules):
/// `log_ahead`, whether the log it last showed ends after this node's (`None`: it has
/// shown none); `out_of_patience`, this node has heard no leader for [`Gate::patience`].
fn counts_as_yes(
    peer: NodeId,
    answer: &Result<PreVoteAnswer, PeerError>,
    log_ahead: Option<bool>,
    out_of_patience: bool,
) -> bool {
    match answer {
        Ok(Ok(())) => true,
        Err(PeerError::Status(_, 404)) => match log_ahead {
            Some(false) => true,
            Some(true) => {
                tracing::debug!(peer, "a build before the gate, whose log ends after this node's: it would refuse");
                false
            }
            None if out_of_patience => true,
            None => {
                tracing::debug!(peer, "a build before the gate, whose log is not known yet: waiting for it to stand");
                false
            }
        },
        Ok(Err(why)) => {
            tracing::debug!(peer, why, "pre-vote refused");
            false
        }
        Err(e) => {
            tracing::debug!(peer, error = %e, "pre-vote not answered");
            false
        }
    }
}

/// The gate's loop, on every node until Raft stops: stands for election when the leader
/// has been silent for a drawn timeout and a majority said yes to a pre-vote.
pub(crate) async fn keep(node: Node) {
    let gate = node.gate();
    let (low, high) = gate.timeout;
    let mut round_start = Instant::now();
    // The first round is short: a restarted cluster has no leader to wait for, and a
    // node that restarts into a running one is refused (its peers hear the leader).
    let mut round = Gate::draw(Duration::ZERO, low);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let me = node.id();
        // Read under the borrow; only a round that asks copies the membership.
        let (stopped, standing, term) = {
            let metrics = node.raft().metrics();
            let m = metrics.borrow();
            let voter = m.membership_config.membership().voter_ids().any(|v| v == me);
            (m.running_state.is_err(), m.state != ServerState::Leader && voter, m.current_term)
        };
        if stopped {
            return;
        }
        if !standing {
            round_start = Instant::now();
            continue;
        }
        let now = Instant::now();
        let since = match gate.silence(now) {
            Some(silence) => silence.min(now - round_start),
            None => now - round_start,
        };
        if since < round {
            continue;
        }
        let voters: Vec<(NodeId, String)> = {
            let metrics = node.raft().metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter(|v| *v != me)
                .filter_map(|v| membership.get_node(&v).map(|n| (v, n.addr.clone())))
                .collect()
        };
        let request = PreVoteRequest { term: term + 1, last_log_id: node.raft().data_metrics().borrow().last_log };
        let asked = voters.len() + 1;
        let heard_before = gate.last_heard();
        let yes = majority_would_vote(&node, voters, request.clone()).await;
        // The answers may come late (a peer resumed after a pause answers a question it
        // was asked before); a leader heard meanwhile, or a term moved on, voids them.
        let still_alone = gate.last_heard() == heard_before && node.raft().metrics().borrow().current_term == term;
        if yes && still_alone {
            tracing::info!(term = request.term, "a majority would vote for this node: standing for election");
            if node.raft().trigger().elect().await.is_err() {
                return;
            }
        } else if !yes {
            tracing::info!(
                term = request.term,
                voters = asked,
                "no leader heard, and no majority would vote for this node"
            );
        }
        round_start = Instant::now();
        round = Gate::draw(low, high);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(openraft::CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn a_build_before_the_gate_counts_as_yes_once_its_log_is_known_and_not_ahead() {
        let not_found: Result<PreVoteAnswer, PeerError> = Err(PeerError::Status("p".into(), 404));
        for waited in [false, true] {
            assert!(counts_as_yes(2, &not_found, Some(false), waited));
            assert!(!counts_as_yes(2, &not_found, Some(true), waited), "a log seen ahead, however long the wait");
        }
        assert!(!counts_as_yes(2, &not_found, None, false), "a log not known yet");
        assert!(counts_as_yes(2, &not_found, None, true), "not known after the patience");
        for known in [None, Some(true), Some(false)] {
            for waited in [false, true] {
                assert!(counts_as_yes(2, &Ok(Ok(())), known, waited), "a gate's own yes stands");
                assert!(!counts_as_yes(2, &Ok(Err("no".into())), known, waited));
                assert!(!counts_as_yes(2, &Err(PeerError::Status("p".into(), 500)), known, waited));
                let silent = Err(PeerError::NoAnswer("p".into(), "timed out".into()));
                assert!(!counts_as_yes(2, &silent, known, waited));
            }
        }
    }

    #[test]
    fn patience_runs_from_the_last_leader_heard_or_from_the_start() {
        let gate = Gate::new((Duration::from_millis(100), Duration::from_millis(200)));
        let start = gate.born;
        assert_eq!(gate.patience(), Duration::from_millis(600));
        assert!(!gate.out_of_patience(start + Duration::from_millis(599)));
        assert!(gate.out_of_patience(start + Duration::from_millis(600)));
        gate.heard();
        let heard = gate.last_heard().expect("just heard");
        assert!(!gate.out_of_patience(heard + Duration::from_millis(599)), "a leader heard restarts it");
        assert!(gate.out_of_patience(heard + Duration::from_millis(600)));
    }

    #[test]
    fn the_voters_logs_are_compared_with_this_nodes_as_it_is_now() {
        let gate = Gate::new((Duration::from_millis(100), Duration::from_millis(200)));
        let logs = gate.peer_logs();
        assert_eq!(gate.peer_logs.ahead_of(2, log(1, 811)), None, "nothing shown yet");
        logs.record(2, log(1, 813));
        logs.record(3, log(1, 811));
        assert_eq!(gate.peer_logs.ahead_of(2, log(1, 811)), Some(true));
        assert_eq!(gate.peer_logs.ahead_of(2, log(1, 813)), Some(false), "as long as this node's");
        assert_eq!(gate.peer_logs.ahead_of(2, log(2, 812)), Some(false), "a later term ends after");
        assert_eq!(gate.peer_logs.ahead_of(3, log(1, 811)), Some(false));
        assert_eq!(gate.peer_logs.ahead_of(2, None), Some(true), "any log ends after an empty one");
        gate.heard();
        assert_eq!(gate.peer_logs.ahead_of(2, log(1, 811)), Some(true), "kept when a leader is heard");
        logs.record(2, log(1, 811));
        assert_eq!(gate.peer_logs.ahead_of(2, log(1, 811)), Some(false), "replaced by the voter's next answer");
    }

    #[test]
    fn a_candidates_vote_request_shows_where_its_log_ends() {
        let gate = Gate::new((Duration::from_millis(100), Duration::from_millis(200)));
        let request = |candidate: NodeId, term: u64, last: Option<LogId>| {
            openraft::raft::VoteRequest::new(openraft::Vote::new(term, candidate), last)
        };
        gate.vote_requested(&request(3, 4, log(2, 40)));
        assert_eq!(gate.peer_logs.ahead_of(3, log(2, 39)), Some(true));
        assert_eq!(gate.peer_logs.ahead_of(3, log(2, 40)), Some(false));
        assert_eq!(gate.peer_logs.ahead_of(2, log(2, 39)), None, "only the candidate is learned");
        gate.vote_requested(&request(3, 5, log(2, 38)));
        assert_eq!(gate.peer_logs.ahead_of(3, log(2, 39)), Some(false), "its later request replaces the earlier");
        gate.vote_requested(&request(3, 6, None));
        assert_eq!(
            gate.peer_logs.ahead_of(3, None),
            Some(false),
            "an empty log is known, and not ahead of an empty one"
        );
    }
}
