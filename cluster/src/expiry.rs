//! Expiry on the cluster's side: the leader looks every [`PERIOD`] whether a group's TTL
//! has run out by its clock and, if one has, proposes one [`Command::Expire`] carrying the
//! time it judged by. `apply` judges again at that entry, so every node removes the same
//! groups at the same log index, and a replay after a restart removes them again at the
//! same place. Nothing expires without a leader (no entry), and a leader that changes
//! during an expiry either committed the entry (every node applies it once) or did not
//! (the next leader judges anew).
//!
//! The time is the leader's wall clock, as push times are the accepting node's: the
//! cluster's clocks must agree (NTP) to within what a TTL may be early or late.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{Command, Outcome, Ttl, UnixNanos};
use serde::Serialize;

use crate::node::Node;
use crate::raft_types::EncodedCommand;

/// How often the leader looks for groups whose TTL ran out: a group goes at most about
/// this long after its time (plus the entry's commit).
pub const PERIOD: Duration = Duration::from_secs(1);

/// One removal of several groups this node applied: at which log index, and how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub index: u64,
    pub groups: usize,
}

/// The removals of several groups this node applied since it started (expiry and delete
/// by match): the last of each kind, and how many groups expiry removed in all. Every
/// node shows the same indexes for the same entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemovalsSeen {
    pub last_expiry: Option<Removal>,
    pub last_delete_matching: Option<Removal>,
    pub expired_groups_total: u64,
}

/// [`RemovalsSeen`], shared by the state machine (which records) and the node (which reports).
#[derive(Clone, Default)]
pub(crate) struct Removals(Arc<Mutex<RemovalsSeen>>);

impl Removals {
    pub(crate) fn record(&self, index: u64, outcome: &Outcome) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match *outcome {
            Outcome::Expired { groups } => {
                seen.last_expiry = Some(Removal { index, groups });
                seen.expired_groups_total += groups as u64;
            }
            Outcome::DeletedMatching { groups } => seen.last_delete_matching = Some(Removal { index, groups }),
            _ => {}
        }
    }

    pub(crate) fn seen(&self) -> RemovalsSeen {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The wall clock as the log carries time: push times and the leader's expiry time.
pub fn wall_clock() -> UnixNanos {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UnixNanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Node {
    /// The removals of several groups this node applied since it started.
    pub fn removals(&self) -> RemovalsSeen {
        self.removals_shared().seen()
    }

    /// One look, on the leader: proposes an expiry if a group's TTL ran out by now.
    async fn expire_once(&self, default_ttl: Option<Ttl>) -> Result<Option<usize>, String> {
        let leads = self.raft().metrics().borrow().current_leader == Some(self.id());
        if !leads || self.format_version() < model::version::V5 {
            return Ok(None);
        }
        let now = wall_clock();
        let due = self.inner_store().read().map(|s| s.any_expired(now, default_ttl)).unwrap_or(false);
        if !due {
            return Ok(None);
        }
        // Proposed here, never forwarded: a follower's clock never decides.
        let command = EncodedCommand::encode(&Command::Expire { now, default_ttl }).map_err(|e| e.to_string())?;
        match self.propose_as_leader_within(vec![command], self.propose_timeout()).await.as_deref() {
            Ok([Outcome::Expired { groups }]) => Ok(Some(*groups)),
            Ok(other) => Err(format!("unexpected outcome {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The leader's side of expiry: every [`PERIOD`], on whichever node leads.
pub(crate) async fn keep(node: Node, default_ttl: Option<Ttl>) {
    loop {
        tokio::time::sleep(PERIOD).await;
        match node.expire_once(default_ttl).await {
            Ok(Some(groups)) => tracing::debug!(groups, "proposed an expiry"),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "expiry not proposed this time"),
        }
    }
}
