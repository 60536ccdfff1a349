//! The Raft log and vote in RocksDB; every write synced (see [`super`]).

// openraft's storage traits fix the error type (`StorageError`, large); boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};

use super::timings::Timings;
use super::{blocking, io_error, Durability};
use crate::codec;
use crate::config::NodeId;
use crate::raft_types::{Entry, LogId, StorageError, TypeConfig};

pub(crate) const CF_LOG: &str = "raft_log";
pub(crate) const CF_META: &str = "raft_meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The most entries, and bytes of their commands, [`Recent`] keeps: openraft reads back
/// entries a moment after their append (at most 16 per replication request, and the apply
/// batches), so a small window answers nearly every read; a follower far behind reads the
/// disk. The byte bound is what it adds to each node's memory at worst.
const RECENT_ENTRIES: usize = 1024;
const RECENT_BYTES: usize = 16 << 20;

/// The last entries appended, in memory, so that replicating and applying what was just
/// appended reads no RocksDB, decodes nothing and needs no blocking thread (in openraft
/// 0.9 the leader's replication and every node's apply read back each entry they were
/// given a moment before).
///
/// Contract: the entries held are consecutive and end at the log's last entry; an append
/// adds only after its synced write succeeded, a truncation or a purge removes what it
/// removes from disk first, and anything that would break the contract empties it (the
/// disk stays the whole truth; this only ever answers what the disk would).
#[derive(Default)]
struct Recent {
    entries: VecDeque<Entry>,
    bytes: usize,
}

fn entry_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        openraft::EntryPayload::Normal(p) => p.commands.iter().map(|c| c.0.len()).sum(),
        _ => 0,
    }
}

impl Recent {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    fn push(&mut self, appended: Vec<Entry>) {
        for entry in appended {
            let follows = self.entries.back().is_none_or(|last| last.log_id.index + 1 == entry.log_id.index);
            if !follows {
                self.clear();
            }
            self.bytes += entry_bytes(&entry);
            self.entries.push_back(entry);
        }
        while self.entries.len() > RECENT_ENTRIES || (self.bytes > RECENT_BYTES && self.entries.len() > 1) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= entry_bytes(&e);
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Removes the entries from `index` on.
    fn truncate(&mut self, index: u64) {
        while self.entries.back().is_some_and(|e| e.log_id.index >= index) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    /// Removes the entries up to `index`.
    fn purge(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    /// The entries of `range` if every one of them is held (an empty range past the last
    /// entry included); `None` if the disk must answer.
    fn get(&self, start: u64, end: Bound<u64>) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        if start < first {
            return None;
        }
        let skip = (start - first) as usize;
        let within = |e: &&Entry| match end {
            Bound::Included(i) => e.log_id.index <= i,
            Bound::Excluded(i) => e.log_id.index < i,
            Bound::Unbounded => true,
        };
        Some(self.entries.iter().skip(skip).take_while(within).cloned().collect())
    }
}

/// The log store; cheap to clone (it is a handle to the shared database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    durability: Durability,
    /// With a state machine: how far its applied state is written. A purge (a synced
    /// write after it, which makes it durable) waits for it to cover what is purged
    /// (see [`StateMachine::durable_applied`]).
    ///
    /// [`StateMachine::durable_applied`]: super::state_machine::StateMachine::durable_applied
    durable_applied: Option<tokio::sync::watch::Receiver<u64>>,
    /// Shared by the store and its readers.
    recent: Arc<Mutex<Recent>>,
    /// The test-only fault [`crate::config::Faults::resume_leadership`]: the stored vote is
    /// read as it was written (see [`LogStore::read_vote`]).
    resume_leadership: bool,
    /// Where the time of each append is counted.
    timings: Timings,
    /// The last committed log id openraft told this store (written as a hint).
    committed: super::hints::Committed,
}

impl LogStore {
    pub fn new(db: Arc<DB>, durability: Durability) -> Self {
        LogStore {
            db,
            durability,
            durable_applied: None,
            recent: Arc::default(),
            resume_leadership: false,
            timings: Timings::default(),
            committed: Default::default(),
        }
    }

    /// The last committed log id openraft saved through this store, shared (see
    /// [`super::hints`]).
    pub(crate) fn committed(&self) -> super::hints::Committed {
        self.committed.clone()
    }

    /// Counts the time of each append in `timings` (shared with the node's status).
    pub fn timed(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// With the test-only fault on, a node that led before it stopped leads again at start
    /// without an election (openraft 0.9's own behaviour; see [`LogStore::read_vote`]).
    pub fn resuming_leadership(mut self, on: bool) -> Self {
        self.resume_leadership = on;
        self
    }

    /// Purges only what the state machine holds: a purge of entries its state does
    /// not hold yet (a received snapshot still being installed) waits until it does.
    pub fn guarding_purges_with(mut self, durable_applied: tokio::sync::watch::Receiver<u64>) -> Self {
        self.durable_applied = Some(durable_applied);
        self
    }

    /// How far a start may apply the log towards the recorded committed id `hint`: from
    /// the applied state on disk, every entry up to it must be in the log, the last with
    /// the hint's very id, or the hint is not about this log (a fault outside Raft's model,
    /// such as a log restored from a backup) and is ignored (none: openraft starts from the
    /// applied state). And this build must be able to apply each: after a rollback to an
    /// older build, an entry a newer build proposed may be among them; the start then stops
    /// before it, and the node stops applying when its leader commits that entry again, as
    /// a running node does, rather than fail to start. Reads at most the entries since the
    /// last checkpoint (about a second's worth; docs/decisions/0020).
    async fn usable_committed(&mut self, hint: LogId) -> Result<Option<LogId>, StorageError> {
        let state = self.log_state()?;
        let purged = state.last_purged_log_id.map_or(0, |id| id.index);
        let applied = self.durable_applied.as_ref().map_or(purged, |d| *d.borrow()).max(purged);
        if hint.index <= applied {
            return Ok(Some(hint));
        }
        let entries = self.try_get_log_entries(applied + 1..=hint.index).await?;
        // Entries come in index order, one per index of the range: as many as the range
        // has means all of it.
        let whole = entries.len() as u64 == hint.index - applied && entries.last().map(|e| e.log_id) == Some(hint);
        if !whole {
            tracing::warn!(
                %hint,
                last_log_id = ?state.last_log_id,
                "the recorded committed index does not match the log; starting from the applied state"
            );
            return Ok(None);
        }
        let mut usable = None;
        for entry in &entries {
            if let openraft::EntryPayload::Normal(proposal) = &entry.payload {
                if let Some(why) = proposal.commands.iter().find_map(|c| super::state_machine::judged(c).err()) {
                    tracing::warn!(
                        index = entry.log_id.index,
                        "applying at start stops before entry {}: {why}",
                        entry.log_id.index
                    );
                    return Ok(usable);
                }
            }
            usable = Some(entry.log_id);
        }
        Ok(usable)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let cf = self.db.cf_handle(CF_META).expect("raft_meta column family");
        let raw = self.db.get_cf(cf, key).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        raw.map(|b| codec::decode(&b).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))).transpose()
    }

    /// Whether this database holds any Raft state: a vote, or a log (even purged).
    pub(crate) fn has_state(&self) -> Result<bool, StorageError> {
        let vote: Option<Vote<NodeId>> = self.meta(KEY_VOTE)?;
        Ok(vote.is_some() || self.log_state()?.last_log_id.is_some())
    }

    /// Appends `entries` in one synced write, then keeps them in memory (see [`Recent`]).
    ///
    /// The write runs here, on the calling task's thread, not on the blocking pool: openraft
    /// 0.9's core awaits the end of every append before it does anything else
    /// (docs/decisions/0006), so the hop to a pool thread and back only added two thread
    /// wake-ups to every entry's path (docs/decisions/0024: a fifth more pushes per second
    /// on one node). While the write syncs, the other tasks of the cluster's thread (the
    /// peer listener, replication, the apply) wait for it.
    fn write_entries(&self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let cf = self.db.cf_handle(CF_LOG).expect("raft_log column family");
        for entry in &entries {
            let bytes = codec::encode(entry).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            batch.put_cf(cf, index_key(entry.log_id.index), bytes);
        }
        let sync = self.durability.write_options();
        let started = std::time::Instant::now();
        let result = self.db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e));
        // After a failed write the disk may hold the entries or not: only the disk answers.
        match result {
            Ok(()) => {
                self.timings.log_appended(started.elapsed());
                self.recent().push(entries)
            }
            Err(_) => self.recent().clear(),
        }
        result
    }

    /// The last purged and the last log id (the last entry's, else the last purged);
    /// also read by [`crate::recovery`] on a stopped node.
    pub(crate) fn log_state(&self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.meta(KEY_LAST_PURGED)?;
        let cf = self.db.cf_handle(CF_LOG).expect("raft_log column family");
        let last = match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, value) = item.map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let entry: Entry =
                    codec::decode(&value).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                Some(entry.log_id)
            }
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end: Bound<u64> = range.end_bound().cloned();
        if let Some(entries) = self.recent().get(start, end) {
            return Ok(entries);
        }
        let range = (Bound::Included(start), end);
        let db = self.db.clone();
        blocking(move || {
            let cf = db.cf_handle(CF_LOG).expect("raft_log column family");
            let mut out = Vec::new();
            for item in db.iterator_cf(cf, IteratorMode::From(&index_key(start), Direction::Forward)) {
                let (key, value) = item.map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let index = u64::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
                if !range.contains(&index) {
                    break;
                }
                let entry: Entry =
                    codec::decode(&value).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                out.push(entry);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = codec::encode(vote).map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        let db = self.db.clone();
        let sync = self.durability.write_options();
        blocking(move || {
            let cf = db.cf_handle(CF_META).expect("raft_meta column family");
            db.put_cf_opt(cf, KEY_VOTE, bytes, &sync).map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
        })
        .await
    }

    /// The stored vote, never as committed: every node starts as a follower.
    ///
    /// openraft 0.9 starts a node whose stored vote is its own committed one as the leader
    /// of that term at once, without an election (`Engine::startup`). Such a leader's read
    /// index is the larger of the first entry of its term and its commit index, and the
    /// commit index it starts with is its last applied entry as found on disk, or the
    /// committed index it recorded if larger. Both are written unsynced (docs/decisions/0018,
    /// 0020): after every node lost power at once (or a crash within about 100 ms of a
    /// commit), that is behind pushes the cluster acknowledged, and reads served at it went
    /// back in time.
    /// Read as not committed, the vote keeps the term and whom this node voted for (so it
    /// votes for no one else in that term), and the node waits for an election like any
    /// other; the new leader's first entry, which every read index then covers, comes after
    /// every entry acknowledged before the restart. The same as etcd's Raft, which always
    /// restarts as a follower.
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        let vote: Option<Vote<NodeId>> = self.meta(KEY_VOTE)?;
        Ok(vote.map(|mut vote| {
            if !self.resume_leadership {
                vote.committed = false;
            }
            vote
        }))
    }

    /// Kept in memory at once and written soon after, unsynced ([`super::hints`]): openraft
    /// 0.9 awaits this before it applies the entries, on every commit.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed.set(committed);
        Ok(())
    }

    /// openraft applies the log up to it at start, before the node serves anything (an
    /// error in that apply fails the start): the recorded hint as far as
    /// [`LogStore::usable_committed`] allows. Also the value in memory from then on:
    /// openraft saves none until its next commit, and the hint written meanwhile must not
    /// go back.
    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed = match super::hints::read_committed(&self.db) {
            Some(hint) => self.usable_committed(hint).await?,
            None => None,
        };
        self.committed.set(committed);
        Ok(committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.write_entries(entries.into_iter().collect());
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        let sync = self.durability.write_options();
        let result = blocking(move || {
            let cf = db.cf_handle(CF_LOG).expect("raft_log column family");
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(cf, index_key(log_id.index), index_key(u64::MAX));
            batch.delete_cf(cf, index_key(u64::MAX));
            db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
        })
        .await;
        match result {
            Ok(()) => self.recent().truncate(log_id.index),
            Err(_) => self.recent().clear(),
        }
        result
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        if let Some(durable) = self.durable_applied.as_mut() {
            let covered = durable.wait_for(|index| *index >= log_id.index);
            if tokio::time::timeout(std::time::Duration::from_secs(5), covered).await.is_err() {
                tracing::warn!(upto = %log_id, "purge waits for the state machine to persist what it covers");
                let _ = durable.wait_for(|index| *index >= log_id.index).await;
            }
        }
        let bytes = codec::encode(&log_id).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let db = self.db.clone();
        let sync = self.durability.write_options();
        let result = blocking(move || {
            let log = db.cf_handle(CF_LOG).expect("raft_log column family");
            let meta = db.cf_handle(CF_META).expect("raft_meta column family");
            let mut batch = WriteBatch::default();
            batch.put_cf(meta, KEY_LAST_PURGED, bytes);
            batch.delete_range_cf(log, index_key(0), index_key(log_id.index + 1));
            db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
        })
        .await;
        match result {
            Ok(()) => self.recent().purge(log_id.index),
            Err(_) => self.recent().clear(),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_types::{EncodedCommand, Proposal};
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        let command = EncodedCommand(format!("{term}-{index}").into_bytes());
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Proposal { commands: vec![command] }),
        }
    }

    /// What the disk answers, read by a store that shares nothing in memory.
    async fn from_disk(db: &Arc<DB>, start: u64, end: u64) -> Vec<Entry> {
        LogStore::new(db.clone(), Durability::SYNCED).try_get_log_entries(start..end).await.expect("read")
    }

    async fn append(log: &mut LogStore, entries: Vec<Entry>) {
        log.write_entries(entries).expect("append");
    }

    /// Through appends, a truncation, appends of another term and a purge, every range
    /// the memory answers is what the disk answers.
    #[tokio::test]
    async fn recent_entries_answer_what_the_disk_answers() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = super::super::open_db(dir.path()).expect("open RocksDB");
        let mut log = LogStore::new(db.clone(), Durability::SYNCED);
        let check = |log: LogStore, db: Arc<DB>| async move {
            let mut log = log;
            for start in 0..14 {
                for end in start..15 {
                    let memory = log.try_get_log_entries(start..end).await.expect("read");
                    assert_eq!(memory, from_disk(&db, start, end).await, "entries {start}..{end}");
                }
            }
        };
        append(&mut log, (1..=6).map(|i| entry(1, i)).collect()).await;
        assert_eq!(log.recent().first_index(), Some(1));
        check(log.clone(), db.clone()).await;
        log.truncate(LogId::new(CommittedLeaderId::new(1, 1), 4)).await.expect("truncate");
        append(&mut log, (4..=9).map(|i| entry(2, i)).collect()).await;
        check(log.clone(), db.clone()).await;
        assert_eq!(log.try_get_log_entries(5..6).await.unwrap()[0], entry(2, 5), "the new term's entry");
        log.purge(LogId::new(CommittedLeaderId::new(2, 1), 5)).await.expect("purge");
        assert_eq!(log.recent().first_index(), Some(6));
        check(log.clone(), db.clone()).await;
        // A store started on a database with entries holds none in memory; reads go to disk.
        let mut reopened = LogStore::new(db.clone(), Durability::SYNCED);
        assert_eq!(reopened.try_get_log_entries(6..10).await.unwrap(), from_disk(&db, 6, 10).await);
        append(&mut reopened, vec![entry(2, 10)]).await;
        check(reopened, db.clone()).await;
    }

    /// A committed vote (this node led in that term) is read back as not committed, so
    /// that openraft starts the node as a follower; term and candidate are kept. The
    /// test-only fault reads it as written.
    #[tokio::test]
    async fn a_committed_vote_is_read_back_as_not_committed() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = super::super::open_db(dir.path()).expect("open RocksDB");
        let mut log = LogStore::new(db.clone(), Durability::SYNCED);
        let mut led = Vote::new(7, 2);
        led.commit();
        log.save_vote(&led).await.expect("save");
        let read = LogStore::new(db.clone(), Durability::SYNCED).read_vote().await.expect("read").expect("a vote");
        assert_eq!(read, Vote::new(7, 2), "the same term and candidate, not committed");
        let resumed = LogStore::new(db.clone(), Durability::SYNCED).resuming_leadership(true).read_vote().await;
        assert_eq!(resumed.expect("read"), Some(led), "the fault reads it as written");
        // A vote that was never committed reads as it was written.
        log.save_vote(&Vote::new(8, 3)).await.expect("save");
        assert_eq!(log.read_vote().await.expect("read"), Some(Vote::new(8, 3)));
    }

    /// Writes `id` as the recorded committed index, as a running node does.
    async fn record_committed(db: &Arc<DB>, id: LogId) {
        let committed = crate::storage::hints::Committed::default();
        let hints = crate::storage::hints::Hints::new(
            db.clone(),
            committed.clone(),
            crate::read::ConfirmedAt::from_unix_millis(0),
        );
        committed.set(Some(id));
        hints.write().await.expect("write the hint");
    }

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn applicable_entry(term: u64, index: u64) -> Entry {
        let command = EncodedCommand::encode(&model::Command::Wipe).expect("encode");
        Entry { log_id: id(term, index), payload: EntryPayload::Normal(Proposal { commands: vec![command] }) }
    }

    /// At start the recorded committed index is used only as far as the log holds the
    /// very entries it names and this build can apply them: a hint the log does not match
    /// is ignored (the start would fail reading entries that are not there, or apply
    /// others), and one past an entry this build cannot apply (a newer build's, after a
    /// rollback) stops before it (the apply at start would fail the start).
    #[tokio::test]
    async fn the_recorded_committed_index_is_used_as_far_as_the_log_allows() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = super::super::open_db(dir.path()).expect("open RocksDB");
        append(&mut LogStore::new(db.clone(), Durability::SYNCED), (1..=6).map(|i| applicable_entry(1, i)).collect())
            .await;
        let read = |db: &Arc<DB>| {
            let mut log = LogStore::new(db.clone(), Durability::SYNCED);
            async move { log.read_committed().await.expect("read") }
        };
        assert_eq!(read(&db).await, None, "nothing recorded");
        record_committed(&db, id(1, 4)).await;
        assert_eq!(read(&db).await, Some(id(1, 4)), "the log holds it");
        record_committed(&db, id(2, 5)).await;
        assert_eq!(read(&db).await, None, "another term's entry at that index");
        record_committed(&db, id(1, 9)).await;
        assert_eq!(read(&db).await, None, "past the log's end");

        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = super::super::open_db(dir.path()).expect("open RocksDB");
        let newer = EncodedCommand(vec![0xff; 9]);
        assert!(super::super::state_machine::judged(&newer).is_err(), "a command this build cannot apply");
        let mut entries: Vec<Entry> = (1..=5).map(|i| applicable_entry(1, i)).collect();
        entries[2].payload = EntryPayload::Normal(Proposal { commands: vec![newer] });
        append(&mut LogStore::new(db.clone(), Durability::SYNCED), entries).await;
        record_committed(&db, id(1, 5)).await;
        assert_eq!(read(&db).await, Some(id(1, 2)), "up to the entry before the one it cannot apply");
        let (_applied, at_3) = tokio::sync::watch::channel(3u64);
        let mut log = LogStore::new(db.clone(), Durability::SYNCED).guarding_purges_with(at_3);
        assert_eq!(log.read_committed().await.expect("read"), Some(id(1, 5)), "that entry is in the state on disk");
    }
}
