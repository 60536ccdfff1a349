//! Reads: the one read path. A caller first passes the read barrier
//! ([`Node::consistent_reader`]), then takes a [`StoreView`] from the [`StoreReader`]
//! and renders from it. Taking the view holds the store's lock only while one `Arc` per
//! group is cloned; the render holds no lock at all, so `apply` (on the Raft worker, with
//! the heartbeats) never waits for a page of a million series to be written.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::config::ReadConsistency;
use crate::error::ClusterError;
use crate::node::Node;
use crate::retry::{Attempt, Leader};
use crate::transport::{ReadIndexAnswer, PATH_READ_INDEX};
use model::{GroupStore, GroupingKey, PushedFamilies, QuotaExceeded, StoreQuotas, StoreView};

/// Takes views of the store once the read barrier is passed. Cheap to clone; it exposes
/// only [`StoreReader::view`], so no caller can hold the store's lock.
#[derive(Clone)]
pub struct StoreReader {
    store: Arc<RwLock<GroupStore>>,
    stale: Option<Duration>,
}

/// How up to date this node's reads have been.
#[derive(Debug)]
pub(crate) struct Freshness {
    /// When a read last passed the read barrier (at first, when the node started).
    confirmed: Instant,
    /// Until a read passes the barrier after a start: how long before the start a read
    /// last passed it, as recorded ([`ConfirmedAt`]); zero if unknown.
    behind_at_start: Duration,
    /// The same moment as wall-clock time, written as a hint.
    at: ConfirmedAt,
    /// Reads served stale so far.
    stale_reads: u64,
}

impl Freshness {
    /// At a start: the last confirmed read `at` recorded, if any, is the age of what it
    /// serves; else it counts from now.
    pub(crate) fn new(at: ConfirmedAt) -> Self {
        let behind_at_start = at.age().unwrap_or_default();
        Freshness { confirmed: Instant::now(), behind_at_start, at, stale_reads: 0 }
    }

    fn age(&self) -> Duration {
        self.confirmed.elapsed() + self.behind_at_start
    }

    fn confirm(&mut self) {
        self.confirmed = Instant::now();
        self.behind_at_start = Duration::ZERO;
        self.at.set_now();
    }
}

/// When a read on this node last passed the read barrier, as Unix milliseconds (0: none
/// known), shared by the read path and the hint writer ([`crate::storage::hints`]), which
/// writes it: a node that restarts and cannot confirm its reads counts their age from it,
/// not from its start, which would understate how far behind the data may be. Wall-clock
/// time, because it outlives the process; advisory (a clock step moves it), never an input
/// of `apply`. Set and read under the watch's lock: whoever sees a time sees the committed
/// index the node knew when that read passed.
#[derive(Clone, Debug)]
pub struct ConfirmedAt(Arc<watch::Sender<u64>>);

impl Default for ConfirmedAt {
    fn default() -> Self {
        ConfirmedAt::from_unix_millis(0)
    }
}

impl ConfirmedAt {
    pub(crate) fn from_unix_millis(millis: u64) -> Self {
        ConfirmedAt(Arc::new(watch::Sender::new(millis)))
    }

    pub(crate) fn unix_millis(&self) -> u64 {
        *self.0.borrow()
    }

    /// A receiver told of every time set after it was taken.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    fn set_now(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.0.send_replace(now.as_millis() as u64);
    }

    /// How long ago it was, if known (zero if the clock is now behind it).
    fn age(&self) -> Option<Duration> {
        let millis = self.unix_millis();
        let at = UNIX_EPOCH + Duration::from_millis(millis);
        (millis != 0).then(|| SystemTime::now().duration_since(at).unwrap_or_default())
    }
}

/// What [`Node::read_freshness`] reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadFreshness {
    /// Seconds since a read on this node last passed the read barrier.
    pub seconds_since_confirmed: f64,
    /// Reads this node served stale (without the barrier) since it started.
    pub stale_reads: u64,
}

impl StoreReader {
    /// The groups as they are now (including everything applied when the barrier
    /// passed). Blocks while an apply is changing the store in memory: call it off the
    /// async workers, where the render runs.
    pub fn view(&self) -> StoreView {
        self.store.read().unwrap_or_else(|poisoned| poisoned.into_inner()).view()
    }

    /// `Some(age)` when the read could not pass the read barrier in time and serves what
    /// this node had applied: `age` is the time since a read on this node last passed it
    /// (the most the data can lag behind what was acknowledged then).
    pub fn stale(&self) -> Option<Duration> {
        self.stale
    }
}

impl Node {
    /// Judges a push against the store's quotas as this node has applied it so far
    /// ([`GroupStore::judge_quota`]), before the push is proposed. Holds the store's read
    /// lock for time linear in the push; blocks while an apply changes the store.
    pub fn judge_quota(
        &self,
        key: &GroupingKey,
        families: &PushedFamilies,
        replace: bool,
        quotas: &StoreQuotas,
    ) -> Result<(), QuotaExceeded> {
        self.read_store().judge_quota(key, families, replace, quotas)
    }

    /// [`GroupStore::judge_quota_all`] on this node's store, as it is now.
    pub fn judge_quota_all<'a>(
        &self,
        pushes: impl IntoIterator<Item = (&'a GroupingKey, &'a PushedFamilies, bool)>,
        quotas: &StoreQuotas,
    ) -> Result<(), QuotaExceeded> {
        self.read_store().judge_quota_all(pushes, quotas)
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, GroupStore> {
        self.inner_store().read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Passes the read barrier: with linearizable consistency, the views taken from the
    /// reader include every command whose `propose` returned before this call, on any
    /// node (a follower asks the leader for its read index and waits until it has applied
    /// that far); with local consistency, whatever this node applied.
    ///
    /// With [`crate::ClusterConfig::stale_reads_after`], a linearizable read that cannot
    /// pass the barrier that soon (an election, a partition, a lost majority) is served
    /// from what this node has applied instead, and says so ([`StoreReader::stale`]).
    pub async fn consistent_reader(&self) -> Result<StoreReader, ClusterError> {
        let mut stale = None;
        if self.read_consistency() == ReadConsistency::Linearizable {
            let passed = match self.stale_reads_after() {
                None => self.read_barrier().await.map(|_| true)?,
                Some(after) => matches!(tokio::time::timeout(after, self.read_barrier()).await, Ok(Ok(()))),
            };
            let mut freshness = self.freshness();
            if passed {
                freshness.confirm();
            } else {
                freshness.stale_reads += 1;
                stale = Some(freshness.age());
            }
        }
        Ok(StoreReader { store: self.store(), stale })
    }

    /// A reader without the read barrier, for what describes this node itself (its own
    /// metrics: the store's usage as this node has applied it), never for pushed groups.
    pub fn local_reader(&self) -> StoreReader {
        StoreReader { store: self.store(), stale: None }
    }

    /// How up to date this node's reads have been (for its own metrics).
    pub fn read_freshness(&self) -> ReadFreshness {
        let freshness = self.freshness();
        ReadFreshness { seconds_since_confirmed: freshness.age().as_secs_f64(), stale_reads: freshness.stale_reads }
    }

    /// Waits until this node has applied everything committed before the call. Retries
    /// until the propose timeout when the leader cannot confirm the read index (killed,
    /// or deposed): a read during a failover waits for the new leader.
    async fn read_barrier(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.propose_timeout();
        let index = self
            .with_leader(deadline, |leader: Leader| async move {
                let found = if leader.local {
                    self.leader_read_index().await
                } else {
                    match self
                        .peers()
                        .call::<_, ReadIndexAnswer>(&leader.addr, PATH_READ_INDEX, &(), leader.remaining)
                        .await
                    {
                        Ok(answer) => answer,
                        Err(e) => Err(e.to_string()),
                    }
                };
                match found {
                    Ok(index) => Attempt::Done(Ok(index)),
                    Err(e) => Attempt::Retry(format!("read index not confirmed: {e}")),
                }
            })
            .await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft().wait(Some(remaining)).applied_index_at_least(Some(index), "consistent read").await.map_err(
            |e| {
                tracing::debug!(error = %e, "a consistent read timed out waiting for the apply");
                ClusterError::Timeout
            },
        )?;
        Ok(())
    }

    /// On the leader: the index a consistent read must have applied (confirms leadership
    /// with a quorum first).
    pub(crate) async fn leader_read_index(&self) -> ReadIndexAnswer {
        let (read_log_id, _) = self.raft().get_read_log_id().await.map_err(|e| e.to_string())?;
        Ok(read_log_id.map(|l| l.index).unwrap_or(0))
    }
}
