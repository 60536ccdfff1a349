//! Peer traffic: the Raft RPCs and the calls a follower makes to the leader (forwarded
//! proposals, read index, membership changes), over HTTP with bincode bodies on a
//! listener owned by this crate (like etcd's peer port beside its client port).
//!
//! - [`client`]: the one HTTP client, and openraft's network built on it;
//! - [`server`]: the peer listener's routes, which call a [`PeerService`] (the node).
//!
//! The server knows the node only through [`PeerService`], so this module depends on
//! nothing of the node's.
//!
//! The types here are the wire format between nodes of different builds (a rolling
//! upgrade runs both): their bincode encoding must not change. The facade's typed
//! [`ClusterError`] is converted at this edge.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::http::HeaderValue;

use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::error::ClusterError;
use crate::raft_types::{EncodedCommand, RaftError, TypeConfig};
use model::Outcome;

pub mod client;
pub mod server;

pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
/// "Would you vote for me?" before a node stands ([`crate::election`]); builds before it
/// answer 404.
pub const PATH_PRE_VOTE: &str = "/raft/pre-vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub const PATH_PROPOSE: &str = "/raft/propose";
pub const PATH_READ_INDEX: &str = "/raft/read-index";
pub const PATH_ADMIN: &str = "/raft/admin";
/// What replicated-format version this node understands (`model::version`); new with the
/// cluster version, so older builds answer 404.
pub const PATH_VERSION: &str = "/raft/version";
/// This node's [`crate::NodeStatus`], for the view of every member an operator asks any
/// node for ([`crate::Node::members`]); builds before it answer 404.
pub const PATH_STATUS: &str = "/raft/status";
/// Who this node is and which cluster it holds ([`crate::identity::IdentityAnswer`]);
/// answered from the start, also while the node finds out its own identity.
pub const PATH_IDENTITY: &str = "/raft/identity";
/// Asked by the lowest initial member of a new cluster of each other member before it
/// initializes: "be incarnation 0 of it". Answered with an [`crate::identity::IdentityAnswer`]
/// whose `initialized` is false if the node takes it (see `identity::ask`).
pub const PATH_ADOPT: &str = "/raft/adopt";
/// The Raft id a Raft RPC is meant for. A node refuses (409) a request meant for another
/// id: an earlier incarnation of it that lost its data must never vote or acknowledge
/// again. Builds before incarnations do not send it.
pub const HEADER_TARGET: &str = "x-pushgateway-raft-target";

/// The secret shared by the members, sent as `Authorization: Bearer <secret>`.
#[derive(Clone)]
pub struct PeerSecret(Arc<str>);

impl PeerSecret {
    pub fn new(secret: String) -> Self {
        PeerSecret(secret.into())
    }

    pub(crate) fn header(&self) -> Option<HeaderValue> {
        HeaderValue::try_from(format!("Bearer {}", self.0)).ok()
    }

    /// Whether an `Authorization` header carries the secret; compares in time that does
    /// not depend on where the first difference is.
    pub(crate) fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(given) = header.and_then(|h| h.as_bytes().strip_prefix(b"Bearer ")) else {
            return false;
        };
        let expected = self.0.as_bytes();
        given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// A membership change asked of the leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Add `id` at `addr`: as a learner, then (unless `learner_only`) as a voter.
    Add { id: NodeId, addr: String, learner_only: bool },
    /// Remove `id` from the cluster.
    Remove { id: NodeId },
    /// A node that lost its data rejoins as `id` (a new incarnation, see
    /// [`crate::identity`]) at `addr`: as a learner, then, once caught up, in the place
    /// of the earlier incarnations `replaces` (a voter if one of them was), in one change.
    Rejoin { id: NodeId, addr: String, replaces: Vec<NodeId> },
}

/// Why a forwarded batch failed, as it travels (variant order and payloads fixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireProposeError {
    /// Certainly not applied: the follower may retry.
    Unavailable(String),
    /// Proposed, not confirmed in time: it may still be applied.
    Timeout(String),
    /// The leader's storage failed.
    Storage(String),
}

/// Why a membership change failed, as it travels (variant order and payloads fixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireAdminError {
    NotLeader { leader: Option<String> },
    Rejected(String),
    Unavailable(String),
    Checkpoint(String),
}

/// A forwarded batch of commands and its answer.
pub type ProposeAnswer = Result<Vec<Outcome>, WireProposeError>;
/// The leader's read index (the log index a consistent read must have applied).
pub type ReadIndexAnswer = Result<u64, String>;
/// The members after a membership change.
pub type AdminAnswer = Result<BTreeMap<NodeId, String>, WireAdminError>;

impl From<ClusterError> for WireProposeError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NoLeader | ClusterError::NotLeader { .. } | ClusterError::Refused(_) => {
                WireProposeError::Unavailable(e.to_string())
            }
            ClusterError::Timeout => WireProposeError::Timeout(e.to_string()),
            ClusterError::Internal(m) => WireProposeError::Storage(m),
        }
    }
}

impl From<WireProposeError> for ClusterError {
    fn from(e: WireProposeError) -> Self {
        match e {
            WireProposeError::Unavailable(_) => ClusterError::NoLeader,
            WireProposeError::Timeout(_) => ClusterError::Timeout,
            WireProposeError::Storage(m) => ClusterError::Internal(m),
        }
    }
}

impl From<ClusterError> for WireAdminError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NotLeader { leader } => WireAdminError::NotLeader { leader },
            ClusterError::Refused(m) => WireAdminError::Rejected(m),
            ClusterError::NoLeader | ClusterError::Timeout => WireAdminError::Unavailable(e.to_string()),
            ClusterError::Internal(m) => WireAdminError::Checkpoint(m),
        }
    }
}

impl From<WireAdminError> for ClusterError {
    fn from(e: WireAdminError) -> Self {
        match e {
            WireAdminError::NotLeader { leader } => ClusterError::NotLeader { leader },
            WireAdminError::Rejected(m) => ClusterError::Refused(m),
            WireAdminError::Unavailable(_) => ClusterError::NoLeader,
            WireAdminError::Checkpoint(m) => ClusterError::Internal(m),
        }
    }
}

/// What the peer listener serves; the node implements it. Each method answers one peer
/// route, with the answer that travels back.
pub trait PeerService: Clone + Send + Sync + 'static {
    fn append_entries(
        &self,
        request: AppendEntriesRequest<TypeConfig>,
    ) -> impl Future<Output = Result<AppendEntriesResponse<NodeId>, RaftError>> + Send;

    fn vote(
        &self,
        request: VoteRequest<NodeId>,
    ) -> impl Future<Output = Result<VoteResponse<NodeId>, RaftError>> + Send;

    fn install_snapshot(
        &self,
        request: InstallSnapshotRequest<TypeConfig>,
    ) -> impl Future<Output = Result<InstallSnapshotResponse<NodeId>, RaftError<InstallSnapshotError>>> + Send;

    /// On the leader: a batch a follower forwarded, proposed with the leader's own.
    fn pre_vote(&self, request: crate::election::PreVoteRequest) -> crate::election::PreVoteAnswer;

    fn propose_forwarded(&self, commands: Vec<EncodedCommand>) -> impl Future<Output = ProposeAnswer> + Send;

    /// On the leader: the index a consistent read must have applied.
    fn read_index(&self) -> impl Future<Output = ReadIndexAnswer> + Send;

    /// On the leader: a membership change.
    fn change_membership(&self, request: AdminRequest) -> impl Future<Output = AdminAnswer> + Send;

    /// The highest replicated-format version this build understands.
    fn supported_format(&self) -> model::FormatVersion;

    /// This node's Raft id (requests meant for another are refused).
    fn raft_id(&self) -> NodeId;

    /// This node's role and progress.
    fn node_status(&self) -> crate::NodeStatus;

    /// Who this node is and which cluster it holds.
    fn identity(&self) -> impl Future<Output = crate::identity::IdentityAnswer> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        crate::codec::encode(value).unwrap()
    }

    /// The answers' encoding is what nodes of the previous build send and expect: the
    /// variants' order and payloads are part of the wire format.
    #[test]
    fn wire_errors_keep_their_encoding() {
        #[derive(Serialize)]
        enum PreviousProposeError {
            Unavailable(String),
            Timeout(String),
            Storage(String),
        }
        #[derive(Serialize)]
        enum PreviousAdminError {
            NotLeader { leader: Option<String> },
            Rejected(String),
            Unavailable(String),
            Checkpoint(String),
        }
        let m = || "m".to_string();
        assert_eq!(encode(&WireProposeError::Unavailable(m())), encode(&PreviousProposeError::Unavailable(m())));
        assert_eq!(encode(&WireProposeError::Timeout(m())), encode(&PreviousProposeError::Timeout(m())));
        assert_eq!(encode(&WireProposeError::Storage(m())), encode(&PreviousProposeError::Storage(m())));
        let leader = Some("a:1".to_string());
        assert_eq!(
            encode(&WireAdminError::NotLeader { leader: leader.clone() }),
            encode(&PreviousAdminError::NotLeader { leader })
        );
        assert_eq!(encode(&WireAdminError::Rejected(m())), encode(&PreviousAdminError::Rejected(m())));
        assert_eq!(encode(&WireAdminError::Unavailable(m())), encode(&PreviousAdminError::Unavailable(m())));
        assert_eq!(encode(&WireAdminError::Checkpoint(m())), encode(&PreviousAdminError::Checkpoint(m())));
    }

    #[test]
    fn errors_cross_the_wire_with_their_meaning() {
        for e in [ClusterError::NoLeader, ClusterError::Timeout, ClusterError::Internal("disk".into())] {
            assert_eq!(ClusterError::from(WireProposeError::from(e.clone())), e);
        }
        for e in [
            ClusterError::NotLeader { leader: Some("a:1".into()) },
            ClusterError::Refused("no such member".into()),
            ClusterError::NoLeader,
        ] {
            assert_eq!(ClusterError::from(WireAdminError::from(e.clone())), e);
        }
    }
}
