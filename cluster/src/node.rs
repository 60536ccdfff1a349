//! The node: the handle the HTTP side holds, its start and its shutdown. What it can do
//! lives beside it, one idea per file: proposing ([`crate::proposer`]), reading
//! ([`crate::read`]), membership ([`crate::membership`]), status ([`crate::status`]);
//! the one retry policy all of them share is [`crate::retry`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::SnapshotPolicy;
use tokio::sync::mpsc;

use crate::config::{ClusterConfig, NodeId, ReadConsistency};
use crate::error::{ClusterError, StartError};
use crate::identity::{self, IdentityAnswer};
use crate::proposer::{self, Pending};
use crate::raft_types::{EncodedCommand, Raft, RaftError, TypeConfig};
use crate::status::ProposalStats;
use crate::storage::log::LogStore;
use crate::storage::state_machine::StateMachine;
use crate::storage::timings::{StorageTimings, Timings};
use crate::storage::{open_db, prime_wal, recovery, Durability};
use crate::transport::client::{NetworkFactory, PeerClient};
use crate::transport::server::{peer_router, resolving_router};
use crate::transport::{AdminAnswer, AdminRequest, PeerSecret, PeerService, ProposeAnswer, ReadIndexAnswer};
use model::GroupStore;

struct Inner {
    id: NodeId,
    raft: Raft,
    store: Arc<RwLock<GroupStore>>,
    peers: PeerClient,
    queue: mpsc::Sender<Pending>,
    propose_timeout: Duration,
    read_consistency: ReadConsistency,
    /// See [`ClusterConfig::stale_reads_after`].
    stale_reads_after: Option<Duration>,
    /// When a read last passed the read barrier (or the node started), and how many
    /// reads were served stale: see [`Node::consistent_reader`].
    freshness: Mutex<crate::read::Freshness>,
    peer_server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: Mutex<ProposalStats>,
    /// The node's database, for checkpoints and its size.
    db: Arc<rocksdb::DB>,
    /// A leader no majority has answered for this long is not ready: the maximum election
    /// timeout. Not the lease on votes (the minimum, after which the others may elect
    /// another): with the defaults that leaves 600 ms for a heartbeat round that may itself
    /// take two heartbeat intervals, and a slow fsync on a busy host would take a healthy
    /// leader out of the load balancer. The longer lease costs a cut-off leader's clients
    /// at most the difference (600 ms by default) of pushes that time out.
    leader_lease: Duration,
    /// See [`StateMachine::snapshot_bytes`].
    snapshot_bytes: Arc<AtomicU64>,
    /// The snapshot being received from the leader and how many of its bytes have come
    /// (see [`Node::check_snapshot_chunk`]).
    receiving: Mutex<Option<(String, u64)>>,
    /// Held on the leader while it raises the cluster version or adds a member (see
    /// [`crate::version`]).
    format_gate: tokio::sync::Mutex<()>,
    /// Whether the format version is settled (see [`Node::format_settled`]).
    format_settled: std::sync::atomic::AtomicBool,
    /// When this node started (see [`Node::format_settled`]).
    started: std::time::Instant,
    /// Whether this process initialized a fresh cluster (see [`Node::initialized_here`]).
    initialized_here: std::sync::atomic::AtomicBool,
    /// True while forwarded batches wait (see [`Node::hold_forwarded_while`]).
    forward_hold: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>>,
    /// Removals of several groups applied here (see [`crate::expiry`]).
    removals: crate::expiry::Removals,
    /// When this node last heard from a leader (see [`crate::election`]).
    gate: crate::election::Gate,
    /// How long its Raft waited for its storage (see [`Node::storage_timings`]).
    timings: Timings,
    /// The committed index and the last confirmed read, written as hints.
    hints: crate::storage::hints::Hints,
}

/// A handle to this node; cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Opens the data directory, starts Raft, serves the peer listener if one is given
    /// (already bound, so that its address, port 0 included, is known before the node
    /// starts) and bootstraps a fresh cluster (idempotently: a restarted node initializes
    /// nothing). Tasks are spawned on the current runtime.
    pub async fn start(
        config: ClusterConfig,
        peer_listener: Option<std::net::TcpListener>,
    ) -> Result<Node, StartError> {
        let storage_err = |e: String| StartError::Storage(config.data_dir.clone(), e);
        if config.node_id > identity::MAX_NODE_ID {
            return Err(StartError::Config(format!(
                "--cluster.node-id={} is above {}: the bits above are the node's incarnation",
                config.node_id,
                identity::MAX_NODE_ID
            )));
        }
        let durability = Durability::new(config.faults);
        std::fs::create_dir_all(&config.data_dir).map_err(|e| storage_err(e.to_string()))?;
        let db_dir = config.data_dir.join("db");
        let db = open_db(&db_dir).map_err(|e| storage_err(e.to_string()))?;
        if !prime_wal(&db, &db_dir).map_err(|e| storage_err(e.to_string()))? {
            tracing::warn!("RocksDB recycled no WAL file at start: log appends extend a new file until it does");
        }
        let store = Arc::new(RwLock::new(GroupStore::new()));
        let state_machine =
            StateMachine::open(db.clone(), store.clone(), durability).map_err(|e| storage_err(e.to_string()))?;
        let timings = Timings::default();
        let state_machine = state_machine.timed(timings.clone());
        let log = LogStore::new(db.clone(), durability)
            .timed(timings.clone())
            .guarding_purges_with(state_machine.durable_applied())
            .resuming_leadership(config.faults.resume_leadership);
        if config.faults.resume_leadership {
            tracing::warn!("--debug.unsafe-resume-leadership: a leader that restarts leads again without an election");
        }
        let has_state = log.has_state().map_err(|e| storage_err(e.to_string()))?;
        let snapshot_bytes = state_machine.snapshot_bytes();
        let removals = state_machine.removals();
        let confirmed_at = crate::storage::hints::read_confirmed(&db);
        let hints = crate::storage::hints::Hints::new(db.clone(), log.committed(), confirmed_at.clone());

        let heartbeat = config.heartbeat.as_millis() as u64;
        let lease = crate::election::vote_lease(config.election_timeout);
        let raft_config = openraft::Config {
            cluster_name: "pushgateway".into(),
            heartbeat_interval: heartbeat,
            // openraft's own election timer is off: the election gate stands (see
            // `crate::election`). Of these two openraft then uses only the maximum, as its
            // lease on votes: a voter that heard from the leader within it refuses to vote.
            // The minimum, as in Raft's pre-vote: a killed leader is replaced after the
            // gate's timeout, not after lease plus timeout.
            enable_elect: false,
            election_timeout_min: lease.as_millis() as u64 - 1,
            election_timeout_max: lease.as_millis() as u64,
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

        // Who this node is: its identity file, or its peers' word (see `identity`), while
        // the peer listener says only that this node holds no cluster yet.
        let peer_listener = match peer_listener {
            Some(listener) => Some(PeerListener::new(listener)?),
            None => None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let adopted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let resolving = match &peer_listener {
            Some(l) => {
                let app = resolving_router(config.node_id, secret.clone(), adopted.clone());
                Some(l.serve_until(app, config.peer_limits, async move {
                    let _ = stopped.await;
                })?)
            }
            None => None,
        };
        let start = identity::resolve(&config, &peers, has_state, &adopted).await;
        let _ = stop.send(());
        if let Some(server) = resolving {
            let _ = server.await;
        }
        let start = start?;
        let raft_id = identity::raft_id(config.node_id, start.incarnation());

        let gate = crate::election::Gate::new(config.election_timeout);
        let network = NetworkFactory { client: peers.clone(), peer_logs: gate.peer_logs() };
        let raft = Raft::new(raft_id, Arc::new(raft_config), network, log, state_machine)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let (queue, pending) = mpsc::channel(proposer::QUEUE_DEPTH);
        let node = Node {
            inner: Arc::new(Inner {
                id: raft_id,
                raft,
                store,
                peers,
                queue,
                propose_timeout: config.propose_timeout,
                read_consistency: config.read_consistency,
                stale_reads_after: config.stale_reads_after,
                freshness: Mutex::new(crate::read::Freshness::new(confirmed_at)),
                peer_server: Mutex::new(None),
                stats: Mutex::new(ProposalStats::default()),
                db,
                leader_lease: config.election_timeout.1,
                snapshot_bytes,
                receiving: Mutex::new(None),
                format_gate: tokio::sync::Mutex::new(()),
                format_settled: std::sync::atomic::AtomicBool::new(false),
                started: std::time::Instant::now(),
                initialized_here: std::sync::atomic::AtomicBool::new(false),
                forward_hold: std::sync::OnceLock::new(),
                removals,
                gate,
                timings,
                hints: hints.clone(),
            }),
        };
        tokio::spawn(proposer::run(node.clone(), pending));
        tokio::spawn(crate::version::keep(node.clone()));
        tokio::spawn(crate::expiry::keep(node.clone(), config.default_ttl));
        tokio::spawn(crate::election::keep(node.clone()));
        tokio::spawn(hints.keep());
        tokio::spawn(crate::status::log_leaders(node.clone()));

        let mut advertise = config.advertise.clone();
        if let Some(listener) = peer_listener {
            advertise = advertise.or_else(|| Some(listener.local.to_string()));
            // Served until the node shuts down (which aborts this task).
            let server =
                listener.serve_until(peer_router(node.clone(), secret), config.peer_limits, std::future::pending())?;
            *node.inner.peer_server.lock().expect("peer server lock") = Some(server);
        }
        node.bootstrap(&config, advertise, start).await?;
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Writes a consistent copy of this node's database into `dir` (a new directory),
    /// usable as a `--storage.path` (see [`crate::force_new_cluster`]).
    pub async fn checkpoint(&self, dir: PathBuf) -> Result<(), ClusterError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || recovery::checkpoint(&db, &dir))
            .await
            .map_err(|e| ClusterError::Internal(e.to_string()))?
            .map_err(ClusterError::Internal)
    }

    /// Stops Raft, the peer listener and the database's background work, and writes the
    /// last committed index and confirmed read ([`crate::storage::hints`]) once Raft stopped.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.hints.write().await {
            tracing::warn!(error = %e, "could not write the committed index and the last confirmed read");
        }
        if let Some(server) = self.inner.peer_server.lock().expect("peer server lock").take() {
            server.abort();
        }
        // RocksDB's flushes and compactions run on its own threads: stopped and waited
        // for here, so that a process that exits next does not tear down the mutexes they
        // hold (an abort, "pthread lock: Invalid argument", seen on SIGTERM).
        let db = self.inner.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.cancel_all_background_work(true)).await;
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub(crate) fn peers(&self) -> &PeerClient {
        &self.inner.peers
    }

    pub(crate) fn queue(&self) -> &mpsc::Sender<Pending> {
        &self.inner.queue
    }

    pub(crate) fn store(&self) -> Arc<RwLock<GroupStore>> {
        self.inner.store.clone()
    }

    pub(crate) fn inner_store(&self) -> &RwLock<GroupStore> {
        &self.inner.store
    }

    pub(crate) fn format_gate(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.format_gate
    }

    pub(crate) fn format_settled_flag(&self) -> &std::sync::atomic::AtomicBool {
        &self.inner.format_settled
    }

    /// How long ago this node started.
    pub(crate) fn age(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    pub(crate) fn stats(&self) -> &Mutex<ProposalStats> {
        &self.inner.stats
    }

    pub(crate) fn propose_timeout(&self) -> Duration {
        self.inner.propose_timeout
    }

    /// Whether this process initialized a fresh cluster: the first start of a single node,
    /// or of the lowest of `--cluster.initial-members` on an empty data directory. Then
    /// every group the store holds was pushed since this start (for a one-time import of
    /// older data, which must not replace them). False after any restart, on a node that
    /// joined or rejoined, and on a member that another one initialized.
    pub fn initialized_here(&self) -> bool {
        self.inner.initialized_here.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// While `pending` is true, a batch another node forwards to this one as leader is
    /// refused as unavailable (certainly not applied), and the forwarding node retries
    /// until its propose timeout: set once, by a start-up import that must come before
    /// every push, whichever node accepted it (`--persistence.file`). The first leader of
    /// a fresh cluster is the node that initialized it, the one that imports. Refused at
    /// once rather than held: a held batch could outlast the forwarding node's wait, which
    /// then could not tell whether it was applied.
    pub fn hold_forwarded_while(&self, pending: tokio::sync::watch::Receiver<bool>) {
        let _ = self.inner.forward_hold.set(pending);
    }

    /// See [`Node::hold_forwarded_while`].
    pub(crate) fn forwarded_held(&self) -> bool {
        self.inner.forward_hold.get().is_some_and(|p| *p.borrow())
    }

    pub(crate) fn mark_initialized_here(&self) {
        self.inner.initialized_here.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn read_consistency(&self) -> ReadConsistency {
        self.inner.read_consistency
    }

    pub(crate) fn stale_reads_after(&self) -> Option<Duration> {
        self.inner.stale_reads_after
    }

    pub(crate) fn freshness(&self) -> std::sync::MutexGuard<'_, crate::read::Freshness> {
        self.inner.freshness.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn leader_lease(&self) -> Duration {
        self.inner.leader_lease
    }

    /// RocksDB's live SST files plus its memtables (in-memory properties).
    pub(crate) fn storage_bytes(&self) -> u64 {
        ["rocksdb.live-sst-files-size", "rocksdb.cur-size-all-mem-tables"]
            .iter()
            .filter_map(|p| self.inner.db.property_int_value(*p).ok().flatten())
            .sum()
    }

    pub(crate) fn gate(&self) -> &crate::election::Gate {
        &self.inner.gate
    }

    /// How long this node's Raft waited for its log appends and apply batches since it
    /// started (see [`crate::storage::timings`]).
    pub fn storage_timings(&self) -> StorageTimings {
        self.inner.timings.read()
    }

    pub(crate) fn removals_shared(&self) -> &crate::expiry::Removals {
        &self.inner.removals
    }

    pub(crate) fn snapshot_bytes(&self) -> u64 {
        self.inner.snapshot_bytes.load(Ordering::Relaxed)
    }
}

/// The peer listener, bound before the node starts (so its address, port 0 included, is
/// known): served first while the node finds out its identity, then by the node.
struct PeerListener {
    listener: std::net::TcpListener,
    local: std::net::SocketAddr,
}

impl PeerListener {
    fn new(listener: std::net::TcpListener) -> Result<Self, StartError> {
        let local = listener.local_addr().map_err(|e| StartError::Listen(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| StartError::Listen(e.to_string()))?;
        Ok(PeerListener { listener, local })
    }

    /// Serves `app` on (a handle to) the listener until `shutdown` completes; the task
    /// ends once the open connections finished their requests.
    fn serve_until(
        &self,
        app: axum::Router,
        limits: serve::Limits,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<tokio::task::JoinHandle<()>, StartError> {
        let listen = |e: std::io::Error| StartError::Listen(e.to_string());
        let listener = tokio::net::TcpListener::from_std(self.listener.try_clone().map_err(listen)?).map_err(listen)?;
        // TCP_NODELAY on both ends of peer traffic (the client sets it too): an append's
        // answer must not wait for the delayed acknowledgement of the last.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        Ok(tokio::spawn(serve::serve(listener, app, limits, shutdown)))
    }
}

impl Node {
    /// A snapshot chunk must start where the snapshot begins or within what has come of
    /// it: openraft writes a chunk at its offset into a buffer in memory, so an offset of
    /// 2^60 would be an allocation of that size. Anything else is answered as openraft
    /// answers a chunk of another snapshot (a mismatch, from which the leader restarts
    /// the transfer at the offset given).
    fn check_snapshot_chunk(
        &self,
        request: &InstallSnapshotRequest<TypeConfig>,
    ) -> Result<(), openraft::error::SnapshotMismatch> {
        let id = &request.meta.snapshot_id;
        let mut receiving = self.inner.receiving.lock().unwrap_or_else(|e| e.into_inner());
        let received = match receiving.as_ref() {
            Some((current, received)) if current == id => *received,
            _ => 0,
        };
        match chunk_fits(received, request.offset, request.data.len()) {
            Ok(now) => *receiving = Some((id.clone(), now)),
            Err(expected) => {
                let segment = |offset| openraft::SnapshotSegmentId { id: id.clone(), offset };
                return Err(openraft::error::SnapshotMismatch {
                    expect: segment(expected),
                    got: segment(request.offset),
                });
            }
        }
        Ok(())
    }
}

/// Whether a chunk of `len` bytes at `offset` may be written when `received` bytes of
/// the snapshot have come: it must start at 0 (a new or restarted transfer) or within
/// what came. Ok: the bytes received after it; Err: the offset the sender must use.
fn chunk_fits(received: u64, offset: u64, len: usize) -> Result<u64, u64> {
    if offset > received {
        return Err(received);
    }
    let end = offset.saturating_add(len as u64);
    Ok(if offset == 0 { end } else { end.max(received) })
}

impl PeerService for Node {
    async fn append_entries(
        &self,
        request: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftError> {
        let response = self.raft().append_entries(request).await;
        if matches!(response, Ok(ref r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            self.gate().heard();
        }
        response
    }

    async fn vote(&self, request: VoteRequest<NodeId>) -> Result<VoteResponse<NodeId>, RaftError> {
        self.gate().vote_requested(&request);
        let response = self.raft().vote(request).await;
        if matches!(response, Ok(ref r) if r.vote_granted) {
            self.gate().heard();
        }
        response
    }

    fn pre_vote(&self, request: crate::election::PreVoteRequest) -> crate::election::PreVoteAnswer {
        self.pre_vote_answer(&request)
    }

    async fn install_snapshot(
        &self,
        request: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftError<InstallSnapshotError>> {
        self.check_snapshot_chunk(&request)
            .map_err(|mismatch| RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch)))?;
        let response = self.raft().install_snapshot(request).await;
        if response.is_ok() {
            self.gate().heard();
        }
        response
    }

    async fn propose_forwarded(&self, commands: Vec<EncodedCommand>) -> ProposeAnswer {
        Node::propose_forwarded(self, commands).await
    }

    async fn read_index(&self) -> ReadIndexAnswer {
        self.leader_read_index().await
    }

    async fn change_membership(&self, request: AdminRequest) -> AdminAnswer {
        self.change_membership_as_leader(&request).await.map_err(Into::into)
    }

    fn supported_format(&self) -> model::FormatVersion {
        model::version::SUPPORTED
    }

    fn raft_id(&self) -> NodeId {
        self.id()
    }

    fn node_status(&self) -> crate::NodeStatus {
        self.status()
    }

    async fn identity(&self) -> IdentityAnswer {
        let initialized = self.raft().is_initialized().await.unwrap_or(false);
        let status = self.status();
        IdentityAnswer {
            raft_id: self.id(),
            initialized,
            members: status.voters.into_iter().chain(status.learners).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_fits;

    #[test]
    fn snapshot_chunks_start_at_zero_or_within_what_came() {
        assert_eq!(chunk_fits(0, 0, 100), Ok(100));
        assert_eq!(chunk_fits(100, 100, 50), Ok(150), "the next chunk");
        assert_eq!(chunk_fits(150, 100, 50), Ok(150), "a chunk sent again");
        assert_eq!(chunk_fits(150, 0, 10), Ok(10), "a restarted transfer");
        assert_eq!(chunk_fits(150, 151, 10), Err(150), "a gap");
        assert_eq!(chunk_fits(0, 1 << 60, 1), Err(0), "the allocation of 2^60 bytes");
    }
}
