//! The openraft type configuration and the entry payload.
//!
//! An entry carries a batch of commands, each already bincode-encoded: a follower that
//! receives an entry copies bytes (cheap even for a push of many megabytes) and only the
//! state machine decodes them. That keeps AppendEntries fast, which matters because in
//! openraft 0.9 an AppendEntries RPC must complete within one heartbeat interval.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub use crate::config::NodeId;
use model::{Command, Outcome};

/// What a node advertises to its peers: its peer (Raft RPC) address.
pub type PeerNode = openraft::BasicNode;

/// One log entry's worth of commands, applied in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub commands: Vec<EncodedCommand>,
}

/// A bincode-encoded [`Command`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedCommand(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl EncodedCommand {
    pub fn encode(command: &Command) -> Result<Self, crate::codec::CodecError> {
        crate::codec::encode(command).map(EncodedCommand)
    }

    pub fn decode(&self) -> Result<Command, crate::codec::CodecError> {
        crate::codec::decode(&self.0)
    }
}

openraft::declare_raft_types!(
    /// The Raft types of the group store.
    pub TypeConfig:
        D = Proposal,
        R = Vec<Outcome>,
        NodeId = NodeId,
        Node = PeerNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, PeerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, PeerNode>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type RpcError<E = openraft::error::Infallible> = openraft::error::RPCError<NodeId, PeerNode, RaftError<E>>;
