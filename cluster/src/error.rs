//! The errors of the facade: typed, so that callers decide on what happened (may a
//! request be retried? may it still be applied?) and not on a message.

use std::path::PathBuf;

/// Why the cluster could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// No leader took the request before the deadline (none elected, none reachable, or
    /// every node asked had stopped leading): a command was certainly not applied, and
    /// retrying is safe.
    #[error("no leader available")]
    NoLeader,
    /// A request only the leader serves reached a node that is not the leader;
    /// `leader` is the leader's peer address, if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<String> },
    /// Sent to the leader but not confirmed before the deadline: a command may still be
    /// applied (unknown, never "failed").
    #[error("not confirmed in time; the command may still be applied")]
    Timeout,
    /// A membership change the leader refused (a member that does not exist, say).
    #[error("membership change refused: {0}")]
    Refused(String),
    /// This node failed: storage, or a task that stopped.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data directory {0}: {1}")]
    Storage(PathBuf, String),
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    #[error("cannot serve the peer listener: {0}")]
    Listen(String),
    #[error("raft failed to start: {0}")]
    Raft(String),
}
