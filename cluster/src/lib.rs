//! The replicated group store: every mutation of the groups goes through a Raft log
//! (openraft 0.9) into RocksDB on every node, and is applied there by the pure
//! [`model::GroupStore::apply`].
//!
//! The facade, and all that callers see: a [`Node`] to start with a [`ClusterConfig`],
//! which proposes commands ([`Node::propose`]), serves consistent views of the store
//! ([`Node::consistent_reader`]), reports its [`NodeStatus`] and changes the membership;
//! typed [`ClusterError`]s; and the offline recovery of a stopped node's data directory
//! ([`force_new_cluster`]). Raft and storage types never cross this line.
//!
//! Inside, one idea per file:
//! - `config`, `error`: the node's settings and the facade's errors;
//! - `node`: the handle, start and shutdown;
//! - `proposer`: group commit (one log entry for many concurrent pushes);
//! - `read`: the read barrier and views of the store;
//! - `identity`: the node's incarnation, and finding out at start whether it lost its data;
//! - `membership`: bootstrap, join, add, remove and rejoin;
//! - `status`: role, progress, readiness, proposal statistics;
//! - `election`: the election gate (a pre-vote before standing);
//! - `retry`: the one leader-retry policy of proposals, reads and membership changes;
//! - `expiry`: the leader's expiry of groups whose TTL ran out;
//! - `version`: the cluster version (what every member understands, raised by the leader);
//! - `transport`: peer traffic (`client`, `server` calling a `PeerService`);
//! - `storage`: the Raft log, the state machine and recovery, in RocksDB;
//! - `raft_types`, `codec`: openraft's type configuration and the bincode encoding.
//!
//! ```text
//! Node::propose ─► proposer (batch) ─► leader? Raft client_write : forward to the leader
//!     ─► log (synced, quorum) ─► storage::state_machine::apply ─► GroupStore::apply ─► Outcome
//! Node::consistent_reader ─► read index from the leader ─► wait until applied ─► StoreView
//! ```

mod codec;
mod config;
mod election;
mod error;
mod expiry;
mod identity;
mod membership;
mod node;
mod proposer;
mod raft_types;
mod read;
mod retry;
mod status;
mod storage;
mod transport;
mod version;

pub use config::{ClusterConfig, Faults, NodeId, ReadConsistency, PEER_LIMITS};
pub use error::{ClusterError, StartError};
pub use expiry::{wall_clock, Removal, RemovalsSeen, PERIOD as EXPIRY_PERIOD};
pub use identity::{incarnation_of, node_of, MAX_NODE_ID};
pub use node::Node;
pub use read::{ReadFreshness, StoreReader};
pub use status::{MemberStatus, NodeStatus, ProposalStats, PROPOSAL_DURATION_BOUNDS, READY_MAX_LAG, ROLES};
pub use storage::live_wal_bytes;
pub use storage::recovery::{force_new_cluster, Recovered};
pub use storage::timings::StorageTimings;
