//! The replicated state machine: the [`GroupStore`] in memory, mirrored in RocksDB.
//!
//! Each `apply` call applies its entries to the in-memory store (the view every read
//! uses) and notes the groups they changed. The noted groups, `last_applied` and the
//! membership are written in one `WriteBatch` (not fsynced: the log is, see `apply`) at a
//! checkpoint: by the first apply batch at least [`CHECKPOINT_EVERY`] after the first
//! change noted or with [`CHECKPOINT_GROUPS`] groups changed, at once for a membership or
//! version change, and before openraft builds a
//! snapshot to purge its log (changes applied just before the applies stop stay in the
//! log alone until the next apply batch or snapshot).
//! A restart finds the state of some applied prefix of the log, and openraft applies the
//! rest again (docs/decisions/0020).
//! A snapshot sent to a peer captures the groups by reference on the state-machine task,
//! which never runs concurrently with `apply`, so it is a consistent view; snapshots are
//! not persisted, and the ones openraft builds to purge its log carry only their meta
//! (see [`SnapshotBuilder`]).

// openraft's storage traits fix the error type (`StorageError`, large); boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use rocksdb::{IteratorMode, WriteBatch, DB};

use super::{blocking, io_error, Durability};
use crate::codec;
use crate::raft_types::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use model::store::Changed;
use model::version::{self, FormatVersion};
use model::{Command, Group, GroupStore, GroupingKey, Outcome, Ttl};

pub(crate) const CF_GROUPS: &str = "sm_groups";
pub(crate) const CF_SM_META: &str = "sm_meta";
const KEY_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
/// The replicated-format version in force (`model::version`); absent means version 1.
const KEY_VERSION: &[u8] = b"format_version";
/// Where earlier versions persisted their last snapshot; deleted on open.
const KEY_SNAPSHOT: &[u8] = b"snapshot";
/// Upper bound of all group keys (canonical keys start with UTF-8, never 0xFF).
const GROUPS_END: &[u8] = &[0xFF];

/// Longest a change applied in memory waits for its checkpoint ([`Pending`]), when the
/// applies go on; what a restart applies again from the log is at most this much (or
/// the entries since the last snapshot, whichever is less). A group pushed over and over
/// is encoded and written once per checkpoint instead of once per push.
pub(crate) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Most groups a checkpoint waits for: with this many changed, it is due at once. Bounds
/// the write batch (which holds every changed group encoded) and the pause of a
/// checkpoint: a checkpoint of the 10,000 groups of a million-series fill built a batch of
/// about 50 MB, which left each node holding 30-50 MB more once written. Coalescing is
/// kept where it pays, a few groups pushed over and over.
pub(crate) const CHECKPOINT_GROUPS: usize = 1024;

/// What the applies since the last checkpoint changed, still to be written.
#[derive(Clone, Default)]
struct Pending {
    /// When the first of them was applied; none when nothing is pending.
    since: Option<std::time::Instant>,
    /// Every stored group was removed first (a wipe): the checkpoint clears the column.
    all: bool,
    /// Groups changed (each written as the store holds it then, or deleted).
    groups: BTreeSet<GroupingKey>,
    version: bool,
    membership: bool,
}

impl Pending {
    fn note(&mut self, now: std::time::Instant) {
        self.since.get_or_insert(now);
    }

    /// Whether the checkpoint is due after an apply batch at `now`.
    fn due(&self, now: std::time::Instant) -> bool {
        self.version
            || self.membership
            || self.groups.len() >= CHECKPOINT_GROUPS
            || self.since.is_some_and(|since| now - since >= CHECKPOINT_EVERY)
    }
}

/// The state machine; clones share the same store and database.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<DB>,
    store: Arc<RwLock<GroupStore>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Bytes of the last snapshot serialized for a peer (see [`StateMachine::snapshot_bytes`]).
    snapshot_bytes: Arc<AtomicU64>,
    durability: Durability,
    /// The index of the last applied entry whose state is written (see
    /// [`StateMachine::durable_applied`]).
    durable: tokio::sync::watch::Sender<u64>,
    /// Removals of several groups applied (see [`crate::expiry`]).
    removals: crate::expiry::Removals,
    /// Where the time of each apply batch is counted.
    timings: super::timings::Timings,
    /// Applied, not yet written.
    pending: Pending,
    /// Why a checkpoint could not be written, once one could not: its changes are no
    /// longer pending, so no later checkpoint may write a `last_applied` past them.
    failed: Option<String>,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::StateMachine, verb, e)
}

/// The last applied log id written to `db`, if any.
pub(crate) fn read_applied(db: &DB) -> Result<Option<LogId>, StorageError> {
    let meta = db.cf_handle(CF_SM_META).expect("sm_meta column family");
    let raw = db.get_cf(meta, KEY_APPLIED).map_err(|e| sm_err(ErrorVerb::Read, e))?;
    let applied = raw.map(|b| codec::decode::<Option<LogId>>(&b)).transpose();
    Ok(applied.map_err(|e| sm_err(ErrorVerb::Read, e))?.flatten())
}

/// A snapshot's data: the groups, followed from format version 2 on by the version in
/// force, and from version 5 on by the TTLs of the groups that have one (their positions
/// among the groups, ascending, and the TTLs). Builds before the cluster version send and
/// expect the groups alone; a version is only in force once every member understands it,
/// so none of them is ever sent a longer form than it knows.
fn encode_snapshot(groups: &[&Group], version: FormatVersion) -> Result<Vec<u8>, codec::CodecError> {
    let mut data = codec::encode(&groups)?;
    if version > version::V1 {
        data.extend(codec::encode(&version)?);
    }
    if version >= version::V5 {
        let ttls: Vec<(u64, Ttl)> =
            groups.iter().enumerate().filter_map(|(i, g)| g.ttl.map(|ttl| (i as u64, ttl))).collect();
        data.extend(codec::encode(&ttls)?);
    }
    Ok(data)
}

/// The groups and the version of a snapshot's data (see [`encode_snapshot`]).
fn decode_snapshot(data: &[u8]) -> Result<(Vec<Group>, FormatVersion), codec::CodecError> {
    let (mut groups, read) = codec::decode_prefix::<Vec<Group>>(data)?;
    let rest = &data[read..];
    if rest.is_empty() {
        return Ok((groups, version::V1));
    }
    let (version, read) = codec::decode_prefix::<FormatVersion>(rest)?;
    let rest = &rest[read..];
    if version >= version::V5 {
        let ttls: Vec<(u64, Ttl)> = codec::decode(rest)?;
        let count = groups.len();
        for (i, ttl) in ttls {
            let group = usize::try_from(i).ok().and_then(|i| groups.get_mut(i));
            group.ok_or_else(|| codec::CodecError(format!("a TTL for group {i} of {count}")))?.ttl = Some(ttl);
        }
    } else if !rest.is_empty() {
        return Err(codec::CodecError(format!("{} trailing bytes", rest.len())));
    }
    Ok((groups, version))
}

/// A group as stored in [`CF_GROUPS`]: its serde form, followed by its TTL if it has one
/// (which only groups of version 5 have, so earlier builds never meet the longer form).
fn encode_group(group: &Group) -> Result<Vec<u8>, codec::CodecError> {
    let mut bytes = codec::encode(group)?;
    if let Some(ttl) = group.ttl {
        bytes.extend(codec::encode(&ttl)?);
    }
    Ok(bytes)
}

/// A group stored by [`encode_group`].
fn decode_group(bytes: &[u8]) -> Result<Group, codec::CodecError> {
    let (mut group, read) = codec::decode_prefix::<Group>(bytes)?;
    if read < bytes.len() {
        group.ttl = Some(codec::decode::<Ttl>(&bytes[read..])?);
    }
    Ok(group)
}

/// The version stored in `db`'s state-machine meta, refused if this build does not
/// understand it.
fn read_version(db: &DB) -> Result<FormatVersion, StorageError> {
    let meta = db.cf_handle(CF_SM_META).expect("sm_meta column family");
    let raw = db.get_cf(meta, KEY_VERSION).map_err(|e| sm_err(ErrorVerb::Read, e))?;
    let version =
        raw.map(|b| codec::decode::<FormatVersion>(&b)).transpose().map_err(|e| sm_err(ErrorVerb::Read, e))?;
    let version = version.unwrap_or(version::V1);
    match version::unsupported(version) {
        Some(why) => Err(sm_err(ErrorVerb::Read, format!("this data directory was written by a newer build: {why}"))),
        None => Ok(version),
    }
}

impl StateMachine {
    /// Loads the state last written to `db` into `store`.
    pub fn open(db: Arc<DB>, store: Arc<RwLock<GroupStore>>, durability: Durability) -> Result<Self, StorageError> {
        let groups_cf = db.cf_handle(CF_GROUPS).expect("sm_groups column family");
        let mut groups = Vec::new();
        for item in db.iterator_cf(groups_cf, IteratorMode::Start) {
            let (_, value) = item.map_err(|e| sm_err(ErrorVerb::Read, e))?;
            groups.push(decode_group(&value).map_err(|e| sm_err(ErrorVerb::Read, e))?);
        }
        let version = read_version(&db)?;
        store.write().map_err(|e| sm_err(ErrorVerb::Read, e))?.replace_all(groups, version);
        let meta = db.cf_handle(CF_SM_META).expect("sm_meta column family");
        let read = |key: &[u8]| -> Result<Option<Vec<u8>>, StorageError> {
            db.get_cf(meta, key).map_err(|e| sm_err(ErrorVerb::Read, e))
        };
        let applied = read_applied(&db)?;
        let membership =
            read(KEY_MEMBERSHIP)?.map(|b| codec::decode(&b)).transpose().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        // Unconditionally, without reading the (possibly large) value first; not synced:
        // if the deletion is lost, the next start deletes it again.
        db.delete_cf(meta, KEY_SNAPSHOT).map_err(|e| sm_err(ErrorVerb::Delete, e))?;
        Ok(StateMachine {
            db: db.clone(),
            store,
            applied,
            membership: membership.unwrap_or_default(),
            snapshot_bytes: Arc::default(),
            durability,
            durable: tokio::sync::watch::Sender::new(applied.map_or(0, |id| id.index)),
            removals: Default::default(),
            timings: Default::default(),
            pending: Pending::default(),
            failed: None,
        })
    }

    /// Counts the time of each apply batch in `timings` (shared with the node's status).
    pub fn timed(mut self, timings: super::timings::Timings) -> Self {
        self.timings = timings;
        self
    }

    /// The index up to which applied state is written to the database, as it advances: a
    /// checkpoint or an installed snapshot (synced) moves it. The log store waits for it
    /// before it purges (openraft 0.9 purges the log a received snapshot covers without
    /// waiting for the snapshot to be installed; a crash in between would lose both), and
    /// openraft purges only after building a snapshot, which writes a checkpoint first
    /// (`get_snapshot_builder`). A checkpoint is not synced by itself, but the purge is a
    /// synced write after it in the same write-ahead log, which makes it durable: the
    /// state on disk never falls behind the purged log.
    pub fn durable_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Where this state machine records removals of several groups; shared.
    pub(crate) fn removals(&self) -> crate::expiry::Removals {
        self.removals.clone()
    }

    /// Size of the last snapshot this node serialized (for a peer behind the purged log),
    /// 0 if none yet; shared, so it can be read after the state machine went to Raft.
    pub fn snapshot_bytes(&self) -> Arc<AtomicU64> {
        self.snapshot_bytes.clone()
    }

    /// The meta of a snapshot at the current applied log id.
    fn snapshot_meta(&self) -> SnapshotMeta {
        let snapshot_id = match self.applied {
            Some(id) => format!("{}-{}", id.leader_id, id.index),
            None => "empty".to_string(),
        };
        SnapshotMeta { last_log_id: self.applied, last_membership: self.membership.clone(), snapshot_id }
    }

    /// Writes what the applies since the last checkpoint changed, with `last_applied`, in
    /// one batch (not fsynced, see below), and moves [`StateMachine::durable_applied`].
    /// Once a checkpoint failed, every later one fails too (the error stops Raft on this
    /// node, as any storage error does): its changes are lost from memory's pending set,
    /// and a later batch would claim them written.
    /// Nothing applies meanwhile (this runs on the state-machine task), so the changed
    /// groups, encoded under the store's read lock, are the state at `last_applied`; the
    /// write goes through the blocking pool. Nothing to do when nothing changed since.
    async fn checkpoint(&mut self) -> Result<(), StorageError> {
        if let Some(why) = &self.failed {
            return Err(sm_err(ErrorVerb::Write, format!("an earlier checkpoint failed: {why}")));
        }
        if self.pending.since.is_none() {
            return Ok(());
        }
        let written = self.write_pending().await;
        if let Err(e) = &written {
            self.failed = Some(e.to_string());
        }
        written
    }

    /// [`StateMachine::checkpoint`]'s write; what was pending is no longer, even if it fails.
    async fn write_pending(&mut self) -> Result<(), StorageError> {
        let pending = std::mem::take(&mut self.pending);
        let write_err = |e: &dyn std::fmt::Display| sm_err(ErrorVerb::Write, e);
        let groups_cf = self.db.cf_handle(CF_GROUPS).expect("sm_groups column family");
        let meta_cf = self.db.cf_handle(CF_SM_META).expect("sm_meta column family");
        let mut batch = WriteBatch::default();
        {
            // Encoded here, on the state-machine task: nothing applies meanwhile, and the read
            // lock keeps out no reader.
            let store = self.store.read().map_err(|e| write_err(&e))?;
            if pending.all {
                batch.delete_range_cf(groups_cf, Vec::<u8>::new(), GROUPS_END.to_vec());
            }
            for key in &pending.groups {
                match store.group(key) {
                    Some(group) => {
                        batch.put_cf(groups_cf, key.canonical_bytes(), encode_group(group).map_err(|e| write_err(&e))?)
                    }
                    None => batch.delete_cf(groups_cf, key.canonical_bytes()),
                }
            }
            if pending.version {
                batch.put_cf(meta_cf, KEY_VERSION, codec::encode(&store.version()).map_err(|e| write_err(&e))?);
            }
        }
        if pending.membership {
            batch.put_cf(meta_cf, KEY_MEMBERSHIP, codec::encode(&self.membership).map_err(|e| write_err(&e))?);
        }
        let applied = self.applied;
        batch.put_cf(meta_cf, KEY_APPLIED, codec::encode(&applied).map_err(|e| write_err(&e))?);
        let db = self.db.clone();
        // Not fsynced (docs/decisions/0018, 0020): the entries applied are in the synced log,
        // and this write shares the log's write-ahead log, so after a crash or a power loss
        // the state on disk is the state of an earlier applied prefix, and openraft applies
        // the rest again from the log. The next synced write of any kind (the next append,
        // a purge) makes this one durable too: RocksDB syncs every live WAL file, and
        // recovers a prefix of the writes. What made this unsafe once, a leader that resumed
        // after a power loss with a read index behind what it had acknowledged, is ruled
        // out in `LogStore::read_vote`.
        let unsynced = self.durability.apply_options();
        blocking(move || db.write_opt(batch, &unsynced).map_err(|e| sm_err(ErrorVerb::Write, e))).await?;
        // Written, not yet synced: a purge up to here is a synced write after this one.
        self.durable.send_replace(applied.map_or(0, |id| id.index));
        Ok(())
    }

    /// A snapshot of the current state: the groups are captured by reference on the
    /// state-machine task (no apply can interleave, so they match the meta), then
    /// serialized off the async workers (at a million series this takes a while).
    async fn current_snapshot(&self) -> Result<Snapshot, StorageError> {
        let (groups, version) = {
            let store = self.store.read().map_err(|e| sm_err(ErrorVerb::Read, e))?;
            (store.shared_groups(), store.version())
        };
        let meta = self.snapshot_meta();
        let data = blocking(move || {
            let groups: Vec<&Group> = groups.iter().map(Arc::as_ref).collect();
            encode_snapshot(&groups, version).map_err(|e| sm_err(ErrorVerb::Read, e))
        })
        .await?;
        self.snapshot_bytes.store(data.len() as u64, Ordering::Relaxed);
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

/// The command of an entry, if this build can apply it. An entry it cannot decode (a
/// command of a newer build) or one that switches to a version it does not know stops
/// applying, with the reason: skipping it, or judging it by older rules, would make this
/// node's state differ from the others' for good. Raft stops on this node, which no
/// longer reports ready; the others go on.
fn applicable(encoded: &crate::raft_types::EncodedCommand, index: u64) -> Result<Command, StorageError> {
    judged(encoded).map_err(|why| {
        tracing::error!(index, "cannot apply entry {index}: {why}");
        sm_err(ErrorVerb::Read, format!("entry {index}: {why}"))
    })
}

/// The command of an entry, or why this build cannot apply it (see [`applicable`]); also
/// asked at start, before the log is applied up to the recorded committed index.
pub(super) fn judged(encoded: &crate::raft_types::EncodedCommand) -> Result<Command, String> {
    match encoded.decode() {
        Ok(Command::SetVersion { version }) => match version::unsupported(version) {
            Some(why) => Err(why),
            None => Ok(Command::SetVersion { version }),
        },
        Ok(command) => Ok(command),
        Err(e) => Err(format!(
            "this build cannot decode a command ({e}): a newer build proposed it, which should only happen once \
             every member reported a build that understands it; it stops applying rather than skip it: run the \
             cluster's newer build on this node"
        )),
    }
}

/// What openraft 0.9 builds every `--cluster.snapshot-logs` entries so that it may purge
/// the log: a snapshot at the applied log id that carries **only its meta**, with empty
/// data.
///
/// Openraft keeps nothing of a built snapshot but its meta (`core/sm/worker.rs` sends
/// `snap.meta` to the core and drops the data), and the state machine is durable by
/// itself up to any purged index (see [`StateMachine::durable_applied`]), so nothing needs
/// the data. What a peer behind
/// the purged log is sent comes from `get_current_snapshot`, which captures and
/// serializes the state at that moment. Serializing the whole store here cost a full
/// encoding of it (50 MB at a million series) every few thousand entries, for nothing,
/// and the pushes that met it were the slow tail of the latency figures.
pub struct SnapshotBuilder {
    meta: SnapshotMeta,
    /// Why the checkpoint before it could not be written, if it could not.
    failed: Option<String>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        if let Some(why) = &self.failed {
            return Err(sm_err(ErrorVerb::Write, why));
        }
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Outcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let started = std::time::Instant::now();
        let mut responses = Vec::new();
        {
            let mut store = self.store.write().map_err(|e| sm_err(ErrorVerb::Write, e))?;
            for entry in entries {
                self.applied = Some(entry.log_id);
                self.pending.note(started);
                let mut outcomes = Vec::new();
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Membership(m) => {
                        self.membership = StoredMembership::new(Some(entry.log_id), m);
                        self.pending.membership = true;
                    }
                    EntryPayload::Normal(proposal) => {
                        for encoded in &proposal.commands {
                            let command = applicable(encoded, entry.log_id.index)?;
                            let (outcome, changed) = store.apply_noting(command);
                            if let Outcome::Expired { groups } | Outcome::DeletedMatching { groups } = outcome {
                                let what = if matches!(outcome, Outcome::Expired { .. }) {
                                    "expired"
                                } else {
                                    "deleted by match"
                                };
                                tracing::info!(index = entry.log_id.index, groups, "{what}");
                                self.removals.record(entry.log_id.index, &outcome);
                            }
                            outcomes.push(outcome);
                            match changed {
                                Changed::Groups(keys) => self.pending.groups.extend(keys),
                                Changed::All => {
                                    self.pending.all = true;
                                    self.pending.groups.clear();
                                }
                                Changed::Version => {
                                    self.pending.version = true;
                                    tracing::info!(version = store.version(), "replicated format version in force");
                                }
                            }
                        }
                    }
                }
                responses.push(outcomes);
            }
        }
        if self.pending.due(std::time::Instant::now()) {
            self.checkpoint().await?;
        }
        self.timings.applied(responses.len(), started.elapsed());
        Ok(responses)
    }

    /// Writes a checkpoint first: openraft purges its log up to (near) the snapshot's
    /// index once it is built, and the purge waits for the state on disk to cover it
    /// ([`StateMachine::durable_applied`]). A failed write fails the build.
    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let failed = self.checkpoint().await.err().map(|e| {
            tracing::error!(error = %e, "could not write the applied state before a snapshot");
            e.to_string()
        });
        SnapshotBuilder { meta: self.snapshot_meta(), failed }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let (groups, version) = decode_snapshot(&data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        if let Some(why) = version::unsupported(version) {
            tracing::error!("{why}");
            return Err(sm_err(ErrorVerb::Read, why));
        }
        let groups_cf = self.db.cf_handle(CF_GROUPS).expect("sm_groups column family");
        let meta_cf = self.db.cf_handle(CF_SM_META).expect("sm_meta column family");
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(groups_cf, Vec::<u8>::new(), GROUPS_END.to_vec());
        for group in &groups {
            let bytes = encode_group(group).map_err(|e| sm_err(ErrorVerb::Write, e))?;
            batch.put_cf(groups_cf, group.key.canonical_bytes(), bytes);
        }
        let applied = codec::encode(&meta.last_log_id).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        batch.put_cf(meta_cf, KEY_APPLIED, applied);
        let membership = codec::encode(&meta.last_membership).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, membership);
        batch.put_cf(meta_cf, KEY_VERSION, codec::encode(&version).map_err(|e| sm_err(ErrorVerb::Write, e))?);
        let db = self.db.clone();
        let sync = self.durability.write_options();
        blocking(move || db.write_opt(batch, &sync).map_err(|e| sm_err(ErrorVerb::Write, e))).await?;
        self.durable.send_replace(meta.last_log_id.map_or(0, |id| id.index));
        tracing::info!(snapshot = %meta.snapshot_id, groups = groups.len(), "installed a snapshot");
        self.store.write().map_err(|e| sm_err(ErrorVerb::Write, e))?.replace_all(groups, version);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        // Everything is written: what was pending is replaced.
        self.pending = Pending::default();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        // The current state is the most useful snapshot there is (see `SnapshotBuilder`);
        // none before anything was applied.
        if self.applied.is_none() {
            return Ok(None);
        }
        Ok(Some(self.current_snapshot().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_types::EncodedCommand;
    use model::GroupingKey;

    fn group(job: &str) -> Group {
        let key = GroupingKey::new([("job".to_string(), job.to_string())].into_iter().collect());
        Group::new(key, model::UnixNanos(1))
    }

    /// Entry `index` of term 1 holding `command`.
    fn entry(index: u64, command: &Command) -> Entry {
        let commands = vec![EncodedCommand::encode(command).unwrap()];
        let log_id = LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        Entry { log_id, payload: EntryPayload::Normal(crate::raft_types::Proposal { commands }) }
    }

    fn push(job: &str, index: u64) -> Entry {
        let key = group(job).key;
        entry(
            index,
            &Command::Push {
                key,
                families: Default::default(),
                replace: true,
                time: model::UnixNanos(1),
                defect: None,
            },
        )
    }

    /// What a restart would load from `db`: the last applied index and the groups' jobs.
    fn on_disk(db: &Arc<DB>) -> (u64, Vec<String>) {
        let store = Arc::new(RwLock::new(GroupStore::new()));
        let sm = StateMachine::open(db.clone(), store.clone(), super::super::Durability::SYNCED).unwrap();
        let jobs = store.read().unwrap().groups().map(|g| g.key.job().to_string()).collect();
        (sm.applied.map_or(0, |id| id.index), jobs)
    }

    /// Applied changes are written at checkpoints, not with every apply batch: a restart in
    /// between finds the state of the last checkpoint with its index (an applied prefix;
    /// openraft applies the rest again from the log). A checkpoint is due once the first
    /// pending change is [`CHECKPOINT_EVERY`] old, and is written before a snapshot is
    /// built (openraft purges its log after one); each moves the purge guard.
    #[tokio::test]
    async fn applied_state_is_written_at_checkpoints() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = super::super::open_db(dir.path()).unwrap();
        let store = Arc::new(RwLock::new(GroupStore::new()));
        let mut sm = StateMachine::open(db.clone(), store.clone(), super::super::Durability::SYNCED).unwrap();
        let durable = sm.durable_applied();
        sm.apply([push("a", 1), push("b", 2)]).await.unwrap();
        assert_eq!(store.read().unwrap().len(), 2, "applied in memory at once");
        assert_eq!(on_disk(&db), (0, vec![]), "nothing written before the checkpoint is due");
        assert_eq!(*durable.borrow(), 0);

        sm.pending.since = sm.pending.since.map(|since| since - CHECKPOINT_EVERY);
        sm.apply([push("c", 3)]).await.unwrap();
        assert_eq!(on_disk(&db), (3, vec!["a".into(), "b".into(), "c".into()]), "the checkpoint was due");
        assert_eq!(*durable.borrow(), 3);

        // As many changed groups as a checkpoint waits for make it due at once.
        let many: Vec<Entry> = (0..CHECKPOINT_GROUPS as u64).map(|i| push(&format!("m{i}"), 4 + i)).collect();
        let last = 3 + CHECKPOINT_GROUPS as u64;
        sm.apply(many[..CHECKPOINT_GROUPS - 1].to_vec()).await.unwrap();
        assert_eq!(on_disk(&db).0, 3, "one group short of the bound");
        sm.apply(many[CHECKPOINT_GROUPS - 1..].to_vec()).await.unwrap();
        assert_eq!((on_disk(&db).0, on_disk(&db).1.len()), (last, 3 + CHECKPOINT_GROUPS), "due at the bound");

        sm.apply([entry(last + 1, &Command::Wipe), push("d", last + 2)]).await.unwrap();
        assert_eq!(on_disk(&db).0, last, "a new change waits for its own checkpoint");
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(
            on_disk(&db),
            (last + 2, vec!["d".into()]),
            "written before the snapshot; the wipe cleared the rest"
        );
        assert_eq!(*durable.borrow(), last + 2);
    }

    /// A checkpoint RocksDB refuses fails the apply batch it was due in (which stops Raft
    /// on this node, as any storage error does), and every later checkpoint and snapshot
    /// build fails too, even once the disk would take writes again: the refused changes
    /// have left the pending set, so a later checkpoint would record a `last_applied` past
    /// changes never written. The disk keeps the last checkpoint and the purge guard stays.
    #[tokio::test]
    async fn a_failed_checkpoint_fails_every_later_one() {
        use super::super::Durability;
        let dir = tempfile::TempDir::new().unwrap();
        let db = super::super::open_db(dir.path()).unwrap();
        let store = Arc::new(RwLock::new(GroupStore::new()));
        let mut sm = StateMachine::open(db.clone(), store, Durability::SYNCED).unwrap();
        let durable = sm.durable_applied();
        let make_due = |sm: &mut StateMachine| sm.pending.since = Some(std::time::Instant::now() - CHECKPOINT_EVERY);
        sm.apply([push("a", 1)]).await.unwrap();
        make_due(&mut sm);
        sm.apply([push("b", 2)]).await.unwrap();
        assert_eq!(on_disk(&db), (2, vec!["a".into(), "b".into()]));

        sm.durability = Durability::REFUSING_CHECKPOINTS;
        make_due(&mut sm);
        let refused = sm.apply([push("c", 3)]).await.unwrap_err().to_string();
        assert!(refused.contains("disableWAL option is not supported"), "RocksDB's own error: {refused}");

        sm.durability = Durability::SYNCED;
        sm.apply([push("d", 4)]).await.unwrap();
        make_due(&mut sm);
        let later = sm.apply([push("e", 5)]).await.unwrap_err().to_string();
        assert!(later.contains("an earlier checkpoint failed") && later.contains("WAL"), "{later}");
        let build = sm.get_snapshot_builder().await.build_snapshot().await;
        assert!(build.is_err(), "no snapshot (and so no purge) after a failed checkpoint");
        assert_eq!(on_disk(&db), (2, vec!["a".into(), "b".into()]), "nothing past the refused changes");
        assert_eq!(*durable.borrow(), 2);
    }

    /// Version 1 snapshots are the groups alone, as builds before the cluster version
    /// send and read them; later versions append the version, and both read back.
    #[test]
    fn snapshots_carry_the_version_from_version_2_on() {
        let groups = [group("a"), group("b")];
        let refs: Vec<&Group> = groups.iter().collect();
        let v1 = encode_snapshot(&refs, version::V1).unwrap();
        assert_eq!(v1, codec::encode(&refs).unwrap(), "the earlier format, byte for byte");
        assert_eq!(decode_snapshot(&v1).unwrap(), (groups.to_vec(), version::V1));
        let v2 = encode_snapshot(&refs, version::V2).unwrap();
        assert_eq!(decode_snapshot(&v2).unwrap(), (groups.to_vec(), version::V2));
        assert!(decode_snapshot(&[&v1[..], &[0xfd][..]].concat()).is_err(), "a truncated version is refused");
    }

    /// An entry this build cannot decode, or one switching to a version it does not know,
    /// stops applying with a reason; everything else is applied.
    #[test]
    fn entries_of_a_newer_build_stop_applying_with_the_reason() {
        let encoded = |c: &Command| EncodedCommand::encode(c).unwrap();
        assert!(applicable(&encoded(&Command::Wipe), 5).is_ok());
        assert!(applicable(&encoded(&Command::SetVersion { version: version::SUPPORTED }), 5).is_ok());
        let unknown_version = applicable(&encoded(&Command::SetVersion { version: version::SUPPORTED + 1 }), 7);
        let message = unknown_version.unwrap_err().to_string();
        assert!(message.contains("entry 7") && message.contains("stops applying"), "{message}");
        // A command variant after the last one this build knows.
        let unknown_command = applicable(&EncodedCommand(vec![200, 1]), 8);
        let message = unknown_command.unwrap_err().to_string();
        assert!(message.contains("entry 8") && message.contains("cannot decode"), "{message}");
    }
}
