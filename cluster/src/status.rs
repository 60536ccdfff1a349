//! What a node says about itself: its role and progress ([`NodeStatus`]), whether it is
//! ready, and what became of the commands proposed through it ([`ProposalStats`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::error::ClusterError;
use crate::node::Node;
use crate::transport::PATH_STATUS;

/// Role and progress of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Last entry removed from the log (compacted into a snapshot); 0 if none.
    pub purged_index: u64,
    /// Voters and learners with their peer addresses.
    pub voters: BTreeMap<NodeId, String>,
    pub learners: BTreeMap<NodeId, String>,
    /// On a leader: time since a majority of voters last acknowledged it (openraft's
    /// `millis_since_quorum_ack`); `None` elsewhere.
    pub millis_since_quorum_ack: Option<u64>,
    /// What the log and the state take in the node's database: RocksDB's live SST files
    /// plus its memtables.
    pub storage_bytes: u64,
    /// Size of the last snapshot this node serialized for a peer; 0 if none yet.
    pub snapshot_bytes: u64,
    /// The replicated-format version in force here, and the highest this build
    /// understands (`model::version`).
    #[serde(default)]
    pub format_version: u32,
    #[serde(default)]
    pub format_supported: u32,
    /// Why Raft stopped on this node (an entry it cannot apply, a storage failure), if it did.
    #[serde(default)]
    pub stopped: Option<String>,
    /// Milliseconds since a read on this node last passed the read barrier, and how many
    /// reads it served stale (see `ClusterConfig::stale_reads_after`).
    #[serde(default)]
    pub read_staleness_millis: u64,
    #[serde(default)]
    pub stale_reads: u64,
}

/// One member of the cluster as the answering node sees it, with what that member said
/// about itself when asked over the peer channel ([`Node::members`]), or why it did not
/// answer in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    /// Peer address from the membership.
    pub address: String,
    pub voter: bool,
    /// The member's own status; `None` when it did not answer.
    pub status: Option<NodeStatus>,
    /// Why there is no status (unreachable, refused, timed out).
    pub error: Option<String>,
}

impl MemberStatus {
    /// Entries of the cluster's log this member has not applied yet, measured against the
    /// longest log any member reported (`None` when it did not answer).
    pub fn lag(&self, members: &[MemberStatus]) -> Option<u64> {
        let longest = members.iter().filter_map(|m| m.status.as_ref()).map(|s| s.last_log_index).max()?;
        self.status.as_ref().map(|s| longest.saturating_sub(s.applied_index))
    }
}

/// Upper bounds (seconds) of the buckets of [`ProposalStats::duration_buckets`].
pub const PROPOSAL_DURATION_BOUNDS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// What happened to the commands proposed through this node since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposalStats {
    /// Batches this node sent to the leader (as a follower), including failed attempts.
    pub forwarded_batches: u64,
    /// Commands answered with an error: no leader took them (`unavailable`), not confirmed
    /// in time (`timeout`), this node failed (`storage`).
    pub failed_unavailable: u64,
    pub failed_timeout: u64,
    pub failed_storage: u64,
    /// Time from proposing a command to its outcome, per bucket of
    /// [`PROPOSAL_DURATION_BOUNDS`] (not cumulative), with the sum and count of all.
    pub duration_buckets: [u64; PROPOSAL_DURATION_BOUNDS.len()],
    pub duration_sum: f64,
    pub duration_count: u64,
}

impl ProposalStats {
    fn observe(&mut self, seconds: f64, result: Result<(), &ClusterError>) {
        if let Some(i) = PROPOSAL_DURATION_BOUNDS.iter().position(|b| seconds <= *b) {
            self.duration_buckets[i] += 1;
        }
        self.duration_sum += seconds;
        self.duration_count += 1;
        match result {
            Ok(()) => {}
            Err(ClusterError::NoLeader | ClusterError::NotLeader { .. } | ClusterError::Refused(_)) => {
                self.failed_unavailable += 1
            }
            Err(ClusterError::Timeout) => self.failed_timeout += 1,
            Err(ClusterError::Internal(_)) => self.failed_storage += 1,
        }
    }
}

/// Every role [`NodeStatus::role`] can name (metrics expose each, 0 or 1, so that alerts
/// can count leaders across nodes).
pub const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "shutdown"];

/// How long [`Node::members`] waits for each member's answer.
pub const MEMBER_ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// How far behind its own log a node may be and still call itself ready.
pub const READY_MAX_LAG: u64 = 100;

impl Node {
    /// What happened to the commands proposed through this node (see [`ProposalStats`]).
    pub fn proposal_stats(&self) -> ProposalStats {
        self.stats().lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn observe_proposal(&self, took: Duration, result: Result<(), &ClusterError>) {
        if let Ok(mut stats) = self.stats().lock() {
            stats.observe(took.as_secs_f64(), result);
        }
    }

    pub(crate) fn count_forwarded_batch(&self) {
        if let Ok(mut stats) = self.stats().lock() {
            stats.forwarded_batches += 1;
        }
    }

    /// Status of this node, from its Raft metrics.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut voter_map = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (id, node) in membership.nodes() {
            if voters.contains(id) {
                voter_map.insert(*id, node.addr.clone());
            } else {
                learners.insert(*id, node.addr.clone());
            }
        }
        let role = ROLES[match m.state {
            ServerState::Leader => 0,
            ServerState::Follower => 1,
            ServerState::Candidate => 2,
            ServerState::Learner => 3,
            ServerState::Shutdown => 4,
        }];
        let freshness = self.read_freshness();
        NodeStatus {
            node_id: self.id(),
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            voters: voter_map,
            learners,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            storage_bytes: self.storage_bytes(),
            snapshot_bytes: self.snapshot_bytes(),
            format_version: self.format_version(),
            format_supported: model::version::SUPPORTED,
            stopped: m.running_state.as_ref().err().map(|e| e.to_string()),
            read_staleness_millis: (freshness.seconds_since_confirmed * 1000.0) as u64,
            stale_reads: freshness.stale_reads,
        }
    }

    /// Every member of this node's membership with what it says about itself, asked over
    /// the peer channel at once (each within [`MEMBER_ASK_TIMEOUT`]), this node included
    /// (answered locally, and listed even when its membership no longer holds it).
    pub async fn members(&self) -> Vec<MemberStatus> {
        let own = self.status();
        let listed = own.voters.iter().map(|(id, a)| (*id, a.clone(), true));
        let listed: Vec<(NodeId, String, bool)> =
            listed.chain(own.learners.iter().map(|(id, a)| (*id, a.clone(), false))).collect();
        let mut asked = tokio::task::JoinSet::new();
        for (id, address, voter) in listed {
            let node = self.clone();
            let own = own.clone();
            asked.spawn(async move {
                let answer = if id == own.node_id {
                    Ok(own)
                } else {
                    node.peers()
                        .call::<(), NodeStatus>(&address, PATH_STATUS, &(), MEMBER_ASK_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())
                };
                let (status, error) = match answer {
                    Ok(status) => (Some(status), None),
                    Err(e) => (None, Some(e)),
                };
                MemberStatus { id, address, voter, status, error }
            });
        }
        let mut members: Vec<MemberStatus> = asked.join_all().await;
        if !members.iter().any(|m| m.id == own.node_id) {
            members.push(MemberStatus {
                id: own.node_id,
                address: String::new(),
                voter: false,
                status: Some(own),
                error: None,
            });
        }
        members.sort_by_key(|m| m.id);
        members
    }

    /// Ready: a leader is known, a leader that is this node has settled the format
    /// version ([`Node::format_settled`]), and this node has applied its log up to
    /// [`READY_MAX_LAG`] entries. The error says why not.
    pub fn ready(&self) -> Result<(), String> {
        let s = self.status();
        if let Some(why) = s.stopped {
            return Err(format!("raft stopped on this node: {why}"));
        }
        if s.leader.is_none() {
            return Err("no leader known".into());
        }
        // Openraft 0.9 keeps a leader that lost its majority a leader (it has no
        // check-quorum step-down): it would stay "ready" while every push it takes times
        // out. Such a leader is not ready once no majority has answered it for a lease.
        if s.leader == Some(self.id()) && s.voters.len() > 1 {
            let lease = self.leader_lease().as_millis() as u64;
            match s.millis_since_quorum_ack {
                Some(ms) if ms <= lease => {}
                Some(ms) => return Err(format!("leader without a majority: none has answered for {ms} ms")),
                None => return Err("leader without a majority yet".into()),
            }
        }
        if s.leader == Some(self.id()) && !self.format_settled() {
            return Err(format!(
                "leader at replicated format version {}, not yet asked the members whether it can rise",
                s.format_version
            ));
        }
        let lag = s.last_log_index.saturating_sub(s.applied_index);
        if lag > READY_MAX_LAG {
            return Err(format!("{lag} log entries not applied yet"));
        }
        Ok(())
    }

    /// Waits until [`Node::ready`] holds.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut metrics = self.raft().metrics();
        loop {
            let state = self.ready();
            if state.is_ok() || Instant::now() >= deadline {
                return state;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), metrics.changed()).await;
        }
    }
}

/// Logs every leader this node learns of, once per term (at `info`: openraft's own
/// messages about elections are quieter, see the binary's log filter). Ends when the
/// node's Raft stops. Woken only by changes of the vote, role, leader or membership
/// (openraft's server metrics), never by the log's progress.
pub(crate) async fn log_leaders(node: Node) {
    let mut server = node.raft().server_metrics();
    let mut logged: Option<(u64, NodeId)> = None;
    loop {
        let (term, leader) = {
            let now = server.borrow_and_update();
            (now.vote.leader_id().term, now.current_leader)
        };
        if let Some(leader) = leader.filter(|&leader| logged != Some((term, leader))) {
            tracing::info!(leader, term, this_node = leader == node.id(), "a leader was elected");
            logged = Some((term, leader));
        }
        if server.changed().await.is_err() {
            return;
        }
    }
}
