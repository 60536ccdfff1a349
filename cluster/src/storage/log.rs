//! The Raft log and vote in RocksDB; every write synced (see [`super`]).

// openraft's storage traits fix the error type (`StorageError`, large); boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};

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

/// The log store; cheap to clone (it is a handle to the shared database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    durability: Durability,
    /// With a state machine: how far its applied state is on disk. A purge waits for
    /// it to cover what is purged (see [`StateMachine::durable_applied`]).
    ///
    /// [`StateMachine::durable_applied`]: super::state_machine::StateMachine::durable_applied
    durable_applied: Option<tokio::sync::watch::Receiver<u64>>,
}

impl LogStore {
    pub fn new(db: Arc<DB>, durability: Durability) -> Self {
        LogStore { db, durability, durable_applied: None }
    }

    /// Purges only what the state machine has on disk: a purge of entries its state does
    /// not hold yet (a received snapshot still being installed) waits until it does.
    pub fn guarding_purges_with(mut self, durable_applied: tokio::sync::watch::Receiver<u64>) -> Self {
        self.durable_applied = Some(durable_applied);
        self
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let cf = self.db.cf_handle(CF_META).expect("raft_meta column family");
        let raw = self.db.get_cf(cf, key).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        raw.map(|b| codec::decode(&b).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))).transpose()
    }

    /// The last purged and the last log id (the last entry's, else the last purged);
    /// also read by [`crate::recovery`] on a stopped node.
    /// Whether this database holds any Raft state: a vote, or a log (even purged).
    pub(crate) fn has_state(&self) -> Result<bool, StorageError> {
        let vote: Option<Vote<NodeId>> = self.meta(KEY_VOTE)?;
        Ok(vote.is_some() || self.log_state()?.last_log_id.is_some())
    }

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

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.meta(KEY_VOTE)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.db.cf_handle(CF_LOG).expect("raft_log column family");
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            batch.put_cf(cf, index_key(entry.log_id.index), bytes);
        }
        let db = self.db.clone();
        let sync = self.durability.write_options();
        let result =
            blocking(move || db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e)))
                .await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        let sync = self.durability.write_options();
        blocking(move || {
            let cf = db.cf_handle(CF_LOG).expect("raft_log column family");
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(cf, index_key(log_id.index), index_key(u64::MAX));
            batch.delete_cf(cf, index_key(u64::MAX));
            db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
        })
        .await
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
        blocking(move || {
            let log = db.cf_handle(CF_LOG).expect("raft_log column family");
            let meta = db.cf_handle(CF_META).expect("raft_meta column family");
            let mut batch = WriteBatch::default();
            batch.put_cf(meta, KEY_LAST_PURGED, bytes);
            batch.delete_range_cf(log, index_key(0), index_key(log_id.index + 1));
            db.write_opt(batch, &sync).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
        })
        .await
    }
}
