//! The one leader-retry policy, used by proposals, consistent reads and membership
//! changes alike: until the deadline, find the leader (waiting for one to be elected),
//! make one attempt against it (locally when this node leads, else over the peer
//! transport), and try again after a short pause when the attempt certainly did
//! nothing: no leader yet, the leader unreachable (killed: the followers still name it
//! until they elect another), or the node asked is no longer the leader. A request that
//! meets a failover is delayed until the new leader takes it, not refused.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::NodeId;
use crate::error::ClusterError;
use crate::node::Node;

/// The longest pause between two attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(400);

/// The leader one attempt goes to.
pub(crate) struct Leader {
    /// Whether this node is the leader (the attempt is made locally).
    pub local: bool,
    /// The leader's peer address.
    pub addr: String,
    /// Time left until the deadline.
    pub remaining: Duration,
}

/// What one attempt came to.
pub(crate) enum Attempt<T> {
    /// An answer to give the caller.
    Done(Result<T, ClusterError>),
    /// Certainly nothing was done; try again (the reason is logged).
    Retry(String),
}

impl Node {
    /// Runs `attempt` against the leader until it is done or the deadline passes
    /// ([`ClusterError::NoLeader`]: no attempt did anything).
    pub(crate) async fn with_leader<T, F, Fut>(&self, deadline: Instant, mut attempt: F) -> Result<T, ClusterError>
    where
        F: FnMut(Leader) -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        for n in 0u32.. {
            if n > 0 && !self.pause_before_retry(n, deadline).await {
                break;
            }
            let Some((id, addr)) = self.wait_leader(deadline).await else { break };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match attempt(Leader { local: id == self.id(), addr, remaining }).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(reason) => tracing::debug!(%reason, attempt = n, "retrying with the leader"),
            }
        }
        Err(ClusterError::NoLeader)
    }

    /// Waits for a known leader until `deadline`; returns its id and peer address.
    async fn wait_leader(&self, deadline: Instant) -> Option<(NodeId, String)> {
        let mut metrics = self.raft().metrics();
        loop {
            let found = {
                let m = metrics.borrow();
                m.current_leader
                    .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| (l, n.addr.clone())))
            };
            if found.is_some() {
                return found;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return None;
            }
            let _ = tokio::time::timeout(remaining, metrics.changed()).await;
        }
    }

    /// Waits before retry number `attempt`: 50 ms, doubling up to [`MAX_RETRY_PAUSE`],
    /// or less if this node's view of the leader changes meanwhile (a new leader elected
    /// is the usual reason to retry at once). `false`, without waiting, if the pause
    /// would end past `deadline`.
    async fn pause_before_retry(&self, attempt: u32, deadline: Instant) -> bool {
        let pause = (Duration::from_millis(50) * 2u32.saturating_pow(attempt.min(8) - 1)).min(MAX_RETRY_PAUSE);
        if Instant::now() + pause >= deadline {
            return false;
        }
        let mut metrics = self.raft().metrics();
        let leader = metrics.borrow_and_update().current_leader;
        let leader_changed = async {
            loop {
                if metrics.changed().await.is_err() {
                    // Raft stopped: nothing will change; wait the whole pause.
                    std::future::pending::<()>().await;
                }
                if metrics.borrow_and_update().current_leader != leader {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(pause, leader_changed).await;
        true
    }
}
