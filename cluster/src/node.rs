//! The facade the HTTP side uses, and nothing else of Raft: propose a command, read a
//! consistent view, status, membership changes.
//!
//! What callers may rely on:
//! - [`Node::propose`] returns the [`Outcome`] of the command once it is committed on a
//!   quorum (fsynced) and applied. An `Err` says whether the command was certainly not
//!   applied ([`ProposeError::Unavailable`], retrying is safe) or may still be
//!   ([`ProposeError::Timeout`]: unknown, never "failed").
//! - [`Node::read`] with linearizable consistency sees every command whose `propose`
//!   returned before `read` was called, on any node: a follower asks the leader for its
//!   read index and waits until it has applied that far.
//! - Concurrent proposals are batched into one log entry (group commit): one fsync and
//!   one round trip serve many pushes. Followers forward their batches to the leader,
//!   whose queue puts them into its next entry with its own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, Outcome};
use crate::log_store::LogStore;
use crate::peer::{
    self, AdminAnswer, AdminRequest, NetworkFactory, PeerClient, PeerError, PeerSecret, ProposeAnswer, ReadIndexAnswer,
};
use crate::raft_types::{EncodedCommand, NodeId, PeerNode, Proposal, Raft};
use crate::state_machine::{open_db, StateMachine};
use crate::store::{GroupStore, OwnFamily};

/// Why a command could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ProposeError {
    /// Certainly not applied (no leader, leader unreachable before sending): retry is safe.
    #[error("no leader available: {0}")]
    Unavailable(String),
    /// Proposed but not confirmed in time: it may still be applied.
    #[error("not confirmed in time, the command may still be applied: {0}")]
    Timeout(String),
    /// The local storage failed.
    #[error("storage fault: {0}")]
    Storage(String),
}

/// Why a consistent read could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("no consistent read available: {0}")]
    Unavailable(String),
}

/// Why a membership change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AdminError {
    /// This node is not the leader; `leader` is the leader's peer address if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<String> },
    #[error("membership change refused: {0}")]
    Rejected(String),
    #[error("membership change not confirmed: {0}")]
    Unavailable(String),
    /// A checkpoint could not be written.
    #[error("checkpoint failed: {0}")]
    Checkpoint(String),
}

/// A membership change attempt: blocked by another change in progress, or failed.
enum AdminChangeError {
    InProgress(String),
    Other(AdminError),
}

/// How reads are made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Read index from the leader, then wait until applied: sees every acknowledged push.
    Linearizable,
    /// Whatever this node has applied: available without a leader, possibly stale.
    Local,
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    /// Directory for this node's database.
    pub data_dir: PathBuf,
    /// Peer listener; `None` for a one-member cluster that binds no peer port.
    pub listen: Option<SocketAddr>,
    /// Address peers use to reach this node (defaults to `listen`).
    pub advertise: Option<String>,
    /// Fresh-cluster membership (`id -> peer address`); the lowest id initializes once.
    pub initial_members: BTreeMap<NodeId, String>,
    /// A member to ask to add this node as a learner.
    pub join: Option<String>,
    pub heartbeat: Duration,
    pub election_timeout: (Duration, Duration),
    pub propose_timeout: Duration,
    pub read_consistency: ReadConsistency,
    /// Snapshot every this many applied entries; the log keeps at most as many before it.
    pub snapshot_logs: u64,
    /// The server's own families, which pushes are judged against.
    pub own_families: Vec<OwnFamily>,
    /// The secret every peer request must carry (see [`peer::PeerSecret`]); `None`:
    /// peer traffic is not authenticated.
    pub peer_secret: Option<String>,
    /// Test-only fault: write without fsync, so that the fault-injection harness can
    /// prove its power-loss nemesis catches an unsynced store. Never on by default.
    pub unsafe_skip_fsync: bool,
}

impl ClusterConfig {
    /// A one-member cluster in `data_dir` with default timeouts.
    pub fn single(data_dir: PathBuf, own_families: Vec<OwnFamily>) -> Self {
        ClusterConfig {
            node_id: 1,
            data_dir,
            listen: None,
            advertise: None,
            initial_members: BTreeMap::new(),
            join: None,
            heartbeat: Duration::from_millis(250),
            election_timeout: (Duration::from_millis(1000), Duration::from_millis(2000)),
            propose_timeout: Duration::from_secs(5),
            read_consistency: ReadConsistency::Linearizable,
            snapshot_logs: 1000,
            own_families,
            peer_secret: None,
            unsafe_skip_fsync: false,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data directory {0}: {1}")]
    Storage(PathBuf, String),
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, String),
    #[error("raft failed to start: {0}")]
    Raft(String),
}

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
    /// in time (`timeout`), local storage fault (`storage`).
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
    fn observe(&mut self, seconds: f64, result: Result<(), &ProposeError>) {
        if let Some(i) = PROPOSAL_DURATION_BOUNDS.iter().position(|b| seconds <= *b) {
            self.duration_buckets[i] += 1;
        }
        self.duration_sum += seconds;
        self.duration_count += 1;
        match result {
            Ok(()) => {}
            Err(ProposeError::Unavailable(_)) => self.failed_unavailable += 1,
            Err(ProposeError::Timeout(_)) => self.failed_timeout += 1,
            Err(ProposeError::Storage(_)) => self.failed_storage += 1,
        }
    }
}

/// Every role [`NodeStatus::role`] can name (metrics expose each, 0 or 1, so that alerts
/// can count leaders across nodes).
pub const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "shutdown"];

/// How far behind its own log a node may be and still call itself ready.
pub const READY_MAX_LAG: u64 = 100;
const MAX_BATCH_COMMANDS: usize = 512;
const MAX_BATCH_BYTES: usize = 8 << 20;
/// The longest pause between two attempts of a proposal or a read index.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(400);
/// Batches a follower keeps on their way to the leader at once (see [`proposer`]).
const BATCHES_IN_FLIGHT: usize = 4;

/// Commands that must go into the same log entry (one push, or a batch a follower
/// forwarded), and where their outcomes go.
struct Pending {
    commands: Vec<EncodedCommand>,
    reply: oneshot::Sender<ProposeAnswer>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.commands.iter().map(|c| c.0.len()).sum()
    }
}

struct Inner {
    id: NodeId,
    raft: Raft,
    store: Arc<RwLock<GroupStore>>,
    peers: PeerClient,
    queue: mpsc::Sender<Pending>,
    propose_timeout: Duration,
    read_consistency: ReadConsistency,
    peer_server: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: std::sync::Mutex<ProposalStats>,
    /// The node's database, for checkpoints.
    db: Arc<rocksdb::DB>,
    /// The leader's lease (the maximum election timeout): a leader no majority has
    /// answered for this long is not ready.
    leader_lease: Duration,
    /// See [`StateMachine::snapshot_bytes`].
    snapshot_bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// A handle to this node; cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Writes a consistent copy of this node's database into `dir` (a new directory),
    /// usable as a `--storage.path` (see [`crate::recovery`]).
    pub async fn checkpoint(&self, dir: PathBuf) -> Result<(), AdminError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || crate::recovery::checkpoint(&db, &dir))
            .await
            .map_err(|e| AdminError::Checkpoint(e.to_string()))?
            .map_err(AdminError::Checkpoint)
    }

    /// Opens the data directory, starts Raft, binds the peer listener if configured and
    /// bootstraps a fresh cluster (idempotently: a restarted node initializes nothing).
    pub async fn start(config: ClusterConfig) -> Result<Node, StartError> {
        let storage_err = |e: String| StartError::Storage(config.data_dir.clone(), e);
        if config.unsafe_skip_fsync {
            tracing::warn!("--debug.unsafe-skip-fsync: writes are not fsynced; a power loss loses them");
            crate::log_store::UNSAFE_SKIP_FSYNC.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|e| storage_err(e.to_string()))?;
        let db = open_db(&config.data_dir.join("db")).map_err(|e| storage_err(e.to_string()))?;
        let store = Arc::new(RwLock::new(GroupStore::new(config.own_families.clone())));
        let state_machine = StateMachine::open(db.clone(), store.clone()).map_err(|e| storage_err(e.to_string()))?;
        let log = LogStore::new(db.clone());
        let snapshot_bytes = state_machine.snapshot_bytes();

        let heartbeat = config.heartbeat.as_millis() as u64;
        let raft_config = openraft::Config {
            cluster_name: "pushgateway".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: config.election_timeout.0.as_millis() as u64,
            election_timeout_max: config.election_timeout.1.as_millis() as u64,
            install_snapshot_timeout: (heartbeat * 12).max(3000),
            max_payload_entries: 16,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_logs),
            max_in_snapshot_log_to_keep: config.snapshot_logs.min(200),
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let secret = config.peer_secret.clone().map(PeerSecret::new);
        let peers = PeerClient::new(secret.clone());
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            NetworkFactory { client: peers.clone() },
            log,
            state_machine,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        let (queue, pending) = mpsc::channel(4096);
        let node = Node {
            inner: Arc::new(Inner {
                id: config.node_id,
                raft,
                store,
                peers,
                queue,
                propose_timeout: config.propose_timeout,
                read_consistency: config.read_consistency,
                peer_server: std::sync::Mutex::new(None),
                stats: std::sync::Mutex::new(ProposalStats::default()),
                db,
                leader_lease: config.election_timeout.1,
                snapshot_bytes,
            }),
        };
        tokio::spawn(proposer(node.clone(), pending));

        let advertise = config.advertise.clone().or_else(|| config.listen.map(|a| a.to_string()));
        if let Some(listen) = config.listen {
            let listener =
                tokio::net::TcpListener::bind(listen).await.map_err(|e| StartError::Listen(listen, e.to_string()))?;
            let app = peer::peer_router(node.clone(), secret);
            // TCP_NODELAY on both ends of peer traffic (the client sets it too): an
            // append's answer must not wait for the delayed acknowledgement of the last.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "peer listener stopped");
                }
            });
            *node.inner.peer_server.lock().expect("peer server lock") = Some(server);
        }
        node.bootstrap(&config, advertise).await?;
        Ok(node)
    }

    async fn bootstrap(&self, config: &ClusterConfig, advertise: Option<String>) -> Result<(), StartError> {
        let raft = &self.inner.raft;
        let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
        if initialized {
            tracing::info!(node = self.inner.id, "restarting an initialized node: nothing to bootstrap");
        } else if !config.initial_members.is_empty() {
            if !config.initial_members.contains_key(&config.node_id) {
                return Err(StartError::Config(format!(
                    "--cluster.initial-members does not contain this node's id {}",
                    config.node_id
                )));
            }
            let lowest = *config.initial_members.keys().next().expect("not empty");
            if lowest == config.node_id {
                let members: BTreeMap<NodeId, PeerNode> =
                    config.initial_members.iter().map(|(id, addr)| (*id, PeerNode::new(addr.clone()))).collect();
                tracing::info!(?members, "initializing a fresh cluster");
                if let Err(e) = raft.initialize(members).await {
                    tracing::warn!(error = %e, "initialization refused (already initialized elsewhere?)");
                }
            }
        } else if let Some(join) = &config.join {
            let Some(addr) = advertise.clone() else {
                return Err(StartError::Config("--cluster.join needs --cluster.listen-address".into()));
            };
            tokio::spawn(join_cluster(self.clone(), join.clone(), addr));
        } else {
            let members = BTreeMap::from([(config.node_id, PeerNode::new(advertise.clone().unwrap_or_default()))]);
            raft.initialize(members).await.map_err(|e| StartError::Raft(e.to_string()))?;
        }
        // A one-voter cluster need not wait a whole election timeout for its leader.
        let metrics = raft.metrics().borrow().clone();
        let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        if voters == [self.inner.id] {
            let _ = raft.trigger().elect().await;
        }
        if let Some(addr) = advertise {
            tokio::spawn(update_own_address(self.clone(), addr));
        }
        Ok(())
    }

    /// The Raft instance (for the peer routes only).
    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Applies `command` through the replicated log; see the module docs for what the
    /// result means.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let started = Instant::now();
        let result = async {
            let command = EncodedCommand::encode(&command).map_err(|e| ProposeError::Storage(e.to_string()))?;
            let mut outcomes = self.enqueue(vec![command]).await?;
            outcomes.pop().ok_or_else(|| ProposeError::Storage("no outcome for the command".into()))
        }
        .await;
        if let Ok(mut stats) = self.inner.stats.lock() {
            stats.observe(started.elapsed().as_secs_f64(), result.as_ref().map(|_| ()));
        }
        result
    }

    /// What happened to the commands proposed through this node (see [`ProposalStats`]).
    pub fn proposal_stats(&self) -> ProposalStats {
        self.inner.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Queues commands for the proposer, which puts them together into one log entry
    /// (with whatever else is queued) and answers with their outcomes in order.
    async fn enqueue(&self, commands: Vec<EncodedCommand>) -> ProposeAnswer {
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Pending { commands, reply })
            .await
            .map_err(|_| ProposeError::Unavailable("node is shutting down".into()))?;
        answer.await.map_err(|_| ProposeError::Timeout("proposer stopped".into()))?
    }

    /// Runs `f` on a view that includes every command confirmed before the call (with
    /// linearizable consistency; with local consistency, whatever this node applied).
    /// `f` runs on the blocking pool: rendering a large store takes long enough to
    /// starve the async workers that carry pushes and heartbeats.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&GroupStore) -> R + Send + 'static,
    ) -> Result<R, ReadError> {
        if self.inner.read_consistency == ReadConsistency::Linearizable {
            self.read_barrier().await?;
        }
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            let store = store.read().map_err(|_| ReadError::Unavailable("store lock poisoned".into()))?;
            Ok(f(&store))
        })
        .await
        .map_err(|e| ReadError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Waits until this node has applied everything committed before the call. Retries
    /// until the propose timeout when the leader cannot confirm the read index (killed,
    /// or deposed): a read during a failover waits for the new leader.
    async fn read_barrier(&self) -> Result<(), ReadError> {
        let deadline = Instant::now() + self.inner.propose_timeout;
        let mut attempt = 0;
        let index = loop {
            if attempt > 0 && !self.pause_before_retry(attempt, deadline).await {
                return Err(ReadError::Unavailable("no leader confirmed a read index in time".into()));
            }
            attempt += 1;
            let (leader, addr) = self.wait_leader(deadline).await.map_err(ReadError::Unavailable)?;
            let found = if leader == self.inner.id {
                self.leader_read_index().await
            } else {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match self.inner.peers.call::<_, ReadIndexAnswer>(&addr, peer::PATH_READ_INDEX, &(), remaining).await {
                    Ok(answer) => answer,
                    Err(e) => Err(e.to_string()),
                }
            };
            match found {
                Ok(index) => break index,
                Err(e) => tracing::debug!(error = %e, "read index not confirmed; retrying"),
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.inner
            .raft
            .wait(Some(remaining))
            .applied_index_at_least(Some(index), "consistent read")
            .await
            .map_err(|e| ReadError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Waits before retry number `attempt`: 50 ms, doubling up to [`MAX_RETRY_PAUSE`],
    /// or less if this node's view of the cluster changes meanwhile (a new leader
    /// elected is the usual reason to retry at once). `false`, without waiting, if the
    /// pause would end past `deadline`.
    async fn pause_before_retry(&self, attempt: u32, deadline: Instant) -> bool {
        let pause = (Duration::from_millis(50) * 2u32.saturating_pow(attempt.min(8) - 1)).min(MAX_RETRY_PAUSE);
        if Instant::now() + pause >= deadline {
            return false;
        }
        let mut metrics = self.inner.raft.metrics();
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

    /// On the leader: the index a consistent read must have applied (confirms leadership
    /// with a quorum first).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, String> {
        let (read_log_id, _) = self.inner.raft.get_read_log_id().await.map_err(|e| e.to_string())?;
        Ok(read_log_id.map(|l| l.index).unwrap_or(0))
    }

    /// Waits for a known leader; returns its id and peer address.
    async fn wait_leader(&self, deadline: Instant) -> Result<(NodeId, String), String> {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let (leader, addr) = {
                let m = metrics.borrow();
                let leader = m.current_leader;
                let addr = leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
                (leader, addr)
            };
            if let (Some(l), Some(a)) = (leader, addr) {
                return Ok((l, a));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err("no leader elected".into());
            }
            let _ = tokio::time::timeout(remaining, metrics.changed()).await;
        }
    }

    /// Proposes a batch: locally on the leader, else forwarded to it. Retries, until the
    /// propose timeout, whenever the batch was certainly not applied: no leader yet, the
    /// leader unreachable (killed: the followers still name it until they elect another),
    /// or the node asked is no longer the leader. A push that meets a failover is delayed
    /// until the new leader takes it, not refused.
    async fn submit(&self, commands: Vec<EncodedCommand>) -> Result<Vec<Outcome>, ProposeError> {
        let deadline = Instant::now() + self.inner.propose_timeout;
        let mut last_error = String::from("no attempt made");
        for attempt in 0.. {
            if attempt > 0 && !self.pause_before_retry(attempt, deadline).await {
                break;
            }
            let (leader, addr) = match self.wait_leader(deadline).await {
                Ok(found) => found,
                Err(e) => {
                    last_error = e;
                    break;
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            if leader == self.inner.id {
                match self.propose_as_leader_within(commands.clone(), remaining).await {
                    Err(ProposeError::Unavailable(e)) => last_error = e,
                    other => return other,
                }
                continue;
            }
            if let Ok(mut stats) = self.inner.stats.lock() {
                stats.forwarded_batches += 1;
            }
            let answer: Result<ProposeAnswer, PeerError> =
                self.inner.peers.call(&addr, peer::PATH_PROPOSE, &commands, remaining).await;
            match answer {
                Ok(Ok(outcomes)) => return Ok(outcomes),
                Ok(Err(ProposeError::Unavailable(e))) => last_error = e,
                Ok(Err(e)) => return Err(e),
                Err(e @ PeerError::Unreachable(..)) => last_error = e.to_string(),
                Err(e) => return Err(ProposeError::Timeout(e.to_string())),
            }
        }
        Err(ProposeError::Unavailable(last_error))
    }

    /// On the leader, for a batch a follower forwarded: queued with the leader's own
    /// proposals, so that the pushes arriving at every node share one entry and one
    /// fsync (openraft 0.9 appends one entry after another, each waiting for its flush).
    /// Refused at once when this node is not the leader, so the follower retries.
    pub(crate) async fn propose_forwarded(&self, commands: Vec<EncodedCommand>) -> ProposeAnswer {
        let leader = self.inner.raft.metrics().borrow().current_leader;
        if leader != Some(self.inner.id) {
            return Err(ProposeError::Unavailable(format!("not the leader (leader: {leader:?})")));
        }
        self.enqueue(commands).await
    }

    async fn propose_as_leader_within(&self, commands: Vec<EncodedCommand>, within: Duration) -> ProposeAnswer {
        let write = self.inner.raft.client_write(Proposal { commands });
        match tokio::time::timeout(within, write).await {
            Err(_) => Err(ProposeError::Timeout(format!("not committed within {within:?}"))),
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ProposeError::Unavailable(format!("not the leader (leader: {:?})", f.leader_id)))
            }
            Ok(Err(RaftError::APIError(e))) => Err(ProposeError::Unavailable(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(ProposeError::Storage(e.to_string())),
        }
    }

    /// Status of this node, from its Raft metrics.
    pub fn status(&self) -> NodeStatus {
        let m = self.inner.raft.metrics().borrow().clone();
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
        NodeStatus {
            node_id: self.inner.id,
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            voters: voter_map,
            learners,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            storage_bytes: ["rocksdb.live-sst-files-size", "rocksdb.cur-size-all-mem-tables"]
                .iter()
                .filter_map(|p| self.inner.db.property_int_value(*p).ok().flatten())
                .sum(),
            snapshot_bytes: self.inner.snapshot_bytes.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Ready: a leader is known and this node has applied its log up to
    /// [`READY_MAX_LAG`] entries.
    pub fn ready(&self) -> Result<(), String> {
        let s = self.status();
        if s.leader.is_none() {
            return Err("no leader known".into());
        }
        // Openraft 0.9 keeps a leader that lost its majority a leader (it has no
        // check-quorum step-down): it would stay "ready" while every push it takes times
        // out. Such a leader is not ready once no majority has answered it for a lease.
        if s.leader == Some(self.inner.id) && s.voters.len() > 1 {
            let lease = self.inner.leader_lease.as_millis() as u64;
            match s.millis_since_quorum_ack {
                Some(ms) if ms <= lease => {}
                Some(ms) => return Err(format!("leader without a majority: none has answered for {ms} ms")),
                None => return Err("leader without a majority yet".into()),
            }
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
        let mut metrics = self.inner.raft.metrics();
        loop {
            let state = self.ready();
            if state.is_ok() || Instant::now() >= deadline {
                return state;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), metrics.changed()).await;
        }
    }

    /// Adds a node (as a learner, then as a voter unless `learner_only`); routed to the
    /// leader. Returns the members afterwards.
    pub async fn add_member(&self, id: NodeId, addr: String, learner_only: bool) -> AdminAnswer {
        self.admin(AdminRequest::Add { id, addr, learner_only }).await
    }

    /// Removes a node from the cluster; routed to the leader.
    pub async fn remove_member(&self, id: NodeId) -> AdminAnswer {
        self.admin(AdminRequest::Remove { id }).await
    }

    async fn admin(&self, request: AdminRequest) -> AdminAnswer {
        let deadline = Instant::now() + self.inner.propose_timeout * 6;
        let (leader, addr) = self.wait_leader(deadline).await.map_err(AdminError::Unavailable)?;
        if leader == self.inner.id {
            return self.admin_as_leader(request).await;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.inner
            .peers
            .call::<_, AdminAnswer>(&addr, peer::PATH_ADMIN, &request, remaining)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
    }

    /// On the leader: carries out a membership change. A change that meets another one
    /// still in progress (a joining node's learner request, say) waits and retries.
    pub(crate) async fn admin_as_leader(&self, request: AdminRequest) -> AdminAnswer {
        let deadline = Instant::now() + self.inner.propose_timeout * 6;
        loop {
            match self.admin_once(&request).await {
                Err(AdminChangeError::InProgress(e)) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "membership change in progress; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(AdminChangeError::InProgress(e)) => return Err(AdminError::Unavailable(e)),
                Err(AdminChangeError::Other(e)) => return Err(e),
                Ok(()) => break,
            }
        }
        let s = self.status();
        Ok(s.voters.into_iter().chain(s.learners).collect())
    }

    async fn admin_once(&self, request: &AdminRequest) -> Result<(), AdminChangeError> {
        let raft = &self.inner.raft;
        let refuse = |e: RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                AdminChangeError::Other(AdminError::NotLeader {
                    leader: f.leader_node.as_ref().map(|n| n.addr.clone()),
                })
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
                AdminChangeError::InProgress(p.to_string())
            }
            other => AdminChangeError::Other(AdminError::Rejected(other.to_string())),
        };
        match request {
            AdminRequest::Add { id, addr, learner_only } => {
                let status = self.status();
                if !status.voters.contains_key(id) && status.learners.get(id) != Some(addr) {
                    tracing::info!(id, %addr, "adding a learner");
                    raft.add_learner(*id, PeerNode::new(addr.clone()), true).await.map_err(refuse)?;
                }
                if !learner_only && !self.status().voters.contains_key(id) {
                    tracing::info!(id, "promoting the learner to voter");
                    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*id])), false)
                        .await
                        .map_err(refuse)?;
                }
            }
            AdminRequest::Remove { id } => {
                let status = self.status();
                let change = if status.voters.contains_key(id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
                } else if status.learners.contains_key(id) {
                    ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
                } else {
                    return Err(AdminChangeError::Other(AdminError::Rejected(format!("node {id} is not a member"))));
                };
                tracing::info!(id, "removing a member");
                raft.change_membership(change, false).await.map_err(refuse)?;
            }
        }
        Ok(())
    }

    /// Stops Raft and the peer listener.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Some(server) = self.inner.peer_server.lock().expect("peer server lock").take() {
            server.abort();
        }
    }
}

/// When this node leads and the membership records another peer address for it (a
/// single node started without a peer listener, restarted with one to grow the
/// cluster), records the advertised address, so that new members can reach it.
async fn update_own_address(node: Node, addr: String) {
    let id = node.inner.id;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = node.inner.raft.metrics();
    while Instant::now() < deadline {
        let (leading, recorded) = {
            let m = metrics.borrow();
            let recorded = m.membership_config.membership().get_node(&id).map(|n| n.addr.clone());
            (m.current_leader == Some(id), recorded)
        };
        if recorded.as_deref() == Some(addr.as_str()) {
            return;
        }
        if leading && recorded.is_some() {
            let change = ChangeMembers::SetNodes(BTreeMap::from([(id, PeerNode::new(addr.clone()))]));
            match node.inner.raft.change_membership(change, false).await {
                Ok(_) => tracing::info!(id, %addr, "recorded this node's new peer address"),
                Err(e) => tracing::warn!(error = %e, "cannot record this node's peer address"),
            }
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), metrics.changed()).await;
    }
}

/// Asks `via` (any member; hints lead to the leader) to add this node as a learner,
/// until it succeeds.
async fn join_cluster(node: Node, via: String, addr: String) {
    let mut target = via;
    let request = AdminRequest::Add { id: node.inner.id, addr, learner_only: true };
    loop {
        let answer: Result<AdminAnswer, PeerError> =
            node.inner.peers.call(&target, peer::PATH_ADMIN, &request, Duration::from_secs(60)).await;
        match answer {
            Ok(Ok(members)) => {
                tracing::info!(?members, "joined the cluster as a learner");
                return;
            }
            Ok(Err(AdminError::NotLeader { leader: Some(leader) })) => target = leader,
            Ok(Err(e)) => tracing::warn!(error = %e, "join refused; retrying"),
            Err(e) => tracing::warn!(error = %e, "join failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Collects queued proposals into batches: the pushes that arrive while a batch commits
/// share the next entry. openraft 0.9 flushes each entry before it looks at the next, so
/// fewer, larger entries are what makes throughput: the leader commits one batch at a
/// time (its peers' forwarded batches join its queue, see [`Node::propose_forwarded`]).
/// A follower only forwards, so it keeps up to [`BATCHES_IN_FLIGHT`] batches on their way
/// to the leader. Concurrent requests carry no order between them; one client's
/// requests stay ordered because each waits for its answer before the next.
async fn proposer(node: Node, mut pending: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let leader = node.inner.raft.metrics().borrow().current_leader == Some(node.inner.id);
        let permits = if leader { BATCHES_IN_FLIGHT as u32 } else { 1 };
        let Ok(permit) = in_flight.clone().acquire_many_owned(permits).await else { return };
        let Some(first) = pending.recv().await else { return };
        let mut commands = first.commands.len();
        let mut bytes = first.bytes();
        let mut batch = vec![first];
        while commands < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match pending.try_recv() {
                Ok(p) => {
                    commands += p.commands.len();
                    bytes += p.bytes();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let node = node.clone();
        tokio::spawn(async move {
            submit_batch(&node, batch).await;
            drop(permit);
        });
    }
}

/// Submits the proposals of a batch as one entry and answers each with its outcomes.
async fn submit_batch(node: &Node, batch: Vec<Pending>) {
    let mut commands = Vec::new();
    let mut replies = Vec::new();
    for p in batch {
        replies.push((p.commands.len(), p.reply));
        commands.extend(p.commands);
    }
    let count = commands.len();
    match node.submit(commands).await {
        Ok(outcomes) if outcomes.len() == count => {
            let mut outcomes = outcomes.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Ok(outcomes) => {
            let e = ProposeError::Storage(format!("{} outcomes for {count} commands", outcomes.len()));
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
