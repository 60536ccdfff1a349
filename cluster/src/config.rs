//! Everything a node needs to start, as typed values (the HTTP side builds this from its
//! flags and validates them there).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Node ids are numbers. The configured one (`--cluster.node-id`) is below 2^32; the Raft
/// id of a node adds its incarnation times 2^32 (see `identity`).
pub type NodeId = u64;

/// How reads are made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Read index from the leader, then wait until applied: sees every acknowledged push.
    Linearizable,
    /// Whatever this node has applied: available without a leader, possibly stale.
    Local,
}

/// Faults a test may switch on to prove that the fault-injection harness catches them.
/// Never on in production; handed to the stores as a value (there is no process-wide
/// switch), so that one process can hold a faulty and a sound store side by side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Write the log and the state without fsync (the power-loss nemesis must notice).
    pub skip_fsync: bool,
    /// A node whose stored vote is its own committed one starts as the leader again, as
    /// openraft 0.9 does by itself (see [`crate::storage::log::LogStore::read_vote`]'s
    /// rule; the power-loss nemesis must notice).
    pub resume_leadership: bool,
}

/// The peer listener's bounds by default: peers keep a few connections each and send
/// continuously (heartbeats), so a small cap and the web listener's timeouts fit.
pub const PEER_LIMITS: serve::Limits = serve::Limits {
    header_read_timeout: std::time::Duration::from_secs(30),
    body_read_timeout: std::time::Duration::from_secs(30),
    max_connections: 256,
    max_connections_flag: "cluster.max-connections",
};

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    /// Directory for this node's database.
    pub data_dir: PathBuf,
    /// Address peers use to reach this node (defaults to the peer listener's address).
    pub advertise: Option<String>,
    /// Fresh-cluster membership (`id -> peer address`); the lowest id initializes once.
    pub initial_members: BTreeMap<NodeId, String>,
    /// A member to ask to add this node as a learner.
    pub join: Option<String>,
    pub heartbeat: Duration,
    pub election_timeout: (Duration, Duration),
    /// How long a proposal, a consistent read or a membership change may wait for a
    /// leader and its confirmation.
    pub propose_timeout: Duration,
    pub read_consistency: ReadConsistency,
    /// With linearizable reads: how long a read may wait for the read barrier before it is
    /// served from what this node has applied, marked stale (`None`: it waits up to the
    /// propose timeout and then fails). What keeps scrapes answering through an election
    /// or the loss of a majority.
    pub stale_reads_after: Option<Duration>,
    /// Snapshot every this many applied entries; the log keeps at most as many before it.
    pub snapshot_logs: u64,
    /// The secret every peer request must carry; `None`: peer traffic is not
    /// authenticated.
    pub peer_secret: Option<String>,
    /// Timeouts and the connection cap of the peer listener.
    pub peer_limits: serve::Limits,
    /// Test-only faults; all off by default.
    pub faults: Faults,
    /// The TTL of groups whose last push named none (`--push.default-ttl`): what the
    /// expiry this node proposes as leader judges by. `None`: such groups never expire.
    pub default_ttl: Option<model::Ttl>,
}

impl ClusterConfig {
    /// A one-member cluster in `data_dir` with default timeouts.
    pub fn single(data_dir: PathBuf) -> Self {
        ClusterConfig {
            node_id: 1,
            data_dir,
            advertise: None,
            initial_members: BTreeMap::new(),
            join: None,
            heartbeat: Duration::from_millis(250),
            election_timeout: (Duration::from_millis(1000), Duration::from_millis(2000)),
            propose_timeout: Duration::from_secs(5),
            read_consistency: ReadConsistency::Linearizable,
            stale_reads_after: None,
            snapshot_logs: 1000,
            peer_secret: None,
            peer_limits: PEER_LIMITS,
            faults: Faults::default(),
            default_ttl: None,
        }
    }
}
