//! A node's storage: one RocksDB database with four column families.
//!
//! - [`log`]: the Raft log and vote (`raft_log`, `raft_meta`);
//! - [`state_machine`]: the groups and what was applied (`sm_groups`, `sm_meta`);
//! - [`recovery`]: checkpoints and force-new-cluster, on a node's database.
//!
//! Durability contract (the rule Raft systems most often break): the vote, appended
//! entries, truncation, purge and an installed snapshot are written with `sync = true`
//! and only then reported done to openraft. An apply is not synced: the log it comes
//! from is, and the next synced write makes it durable (docs/decisions/0018). RocksDB calls block, so they run on the blocking
//! thread pool, off the async workers that send heartbeats.

// openraft's storage traits fix the error type (`StorageError`, large); boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};
use rocksdb::{WriteOptions, DB};

use crate::config::{Faults, NodeId};
use crate::raft_types::StorageError;

pub(crate) mod hints;
pub mod log;
pub mod recovery;
pub mod state_machine;
pub mod timings;

/// How writes that must survive power loss are made: fsynced, unless the test-only fault
/// [`Faults::skip_fsync`] is on. A value handed to each store, never a global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    sync: bool,
    /// Tests only: checkpoints are written with options RocksDB refuses, the one way a
    /// test can make a real write fail on demand.
    #[cfg(test)]
    refuse_checkpoints: bool,
}

impl Durability {
    /// Every write fsynced (the only production setting).
    pub const SYNCED: Durability = Durability {
        sync: true,
        #[cfg(test)]
        refuse_checkpoints: false,
    };

    /// Tests only: as [`Durability::SYNCED`], but RocksDB refuses every checkpoint write
    /// (made without the WAL, which RocksDB refuses while it recycles WAL files).
    #[cfg(test)]
    pub(crate) const REFUSING_CHECKPOINTS: Durability = Durability { sync: true, refuse_checkpoints: true };

    pub fn new(faults: Faults) -> Self {
        if faults.skip_fsync {
            tracing::warn!("--debug.unsafe-skip-fsync: writes are not fsynced; a power loss loses them");
        }
        Durability {
            sync: !faults.skip_fsync,
            #[cfg(test)]
            refuse_checkpoints: false,
        }
    }

    /// Options of every write that must survive power loss: the WAL is fsynced before
    /// the write returns.
    pub fn write_options(self) -> WriteOptions {
        let mut o = WriteOptions::default();
        o.set_sync(self.sync);
        o
    }

    /// Options of a checkpoint of the applied state: never fsynced. It shares the
    /// write-ahead log of the synced log it was applied from, and the next synced write
    /// makes it durable (docs/decisions/0018, 0020).
    pub fn apply_options(self) -> WriteOptions {
        #[allow(unused_mut)]
        let mut options = WriteOptions::default();
        #[cfg(test)]
        if self.refuse_checkpoints {
            options.disable_wal(true);
        }
        options
    }
}

pub(crate) fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageError::IO { source: StorageIOError::new(subject, verb, AnyError::error(e.to_string())) }
}

/// Runs a blocking RocksDB operation off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(io_error(ErrorSubject::Store, ErrorVerb::Write, e)))
}

/// Size of one memtable of each column family (see [`open_db`]).
const MEMTABLE_BYTES: usize = 8 << 20;

/// Total size of the live WAL files past which the column families holding the oldest are
/// flushed (see [`open_db`]): four memtables' worth.
const WAL_BYTES_MAX: u64 = 4 * MEMTABLE_BYTES as u64;

/// Obsolete WAL files kept to be written over by the next ones (see [`open_db`]): at most
/// this many more files of about a memtable each on disk.
const WAL_FILES_RECYCLED: usize = 4;

/// Opens (creating if needed) the node's database with its four column families.
pub fn open_db(path: &std::path::Path) -> Result<Arc<DB>, rocksdb::Error> {
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // A WAL file can be deleted only once every column family with writes in it has
    // flushed them. The metadata families take a small write with nearly
    // every entry and would fill their memtables only after hours, so by default the WAL
    // grew until its total reached four times all memtables (256 MiB here) before RocksDB
    // flushed them: disk held for nothing, and all of it replayed at start-up. Past this
    // total RocksDB flushes the families holding the oldest WAL (a few bytes each).
    options.set_max_total_wal_size(WAL_BYTES_MAX);
    // Every entry's path waits for an fdatasync of the WAL. Appending to a new file, or
    // into space RocksDB preallocated, changes the file's size or extents, so ext4 must
    // write its inode (or commit its journal) too; writing over a recycled file's blocks
    // needs the data alone, and every start primes such files ([`prime_wal`])
    // (bench/results/ab-wal-recycling: the synced append a quarter shorter). RocksDB marks
    // recycled records with their file's number, so old records left behind read as the
    // end of the log at recovery (its default point-in-time mode), and refuses writes
    // without the WAL from then on; this store makes none.
    options.set_recycle_log_file_num(WAL_FILES_RECYCLED);
    // Every CF's memtables are memory the node holds on top of its in-memory store:
    // RocksDB's default (64 MiB, up to two per CF) made them most of a node's growth
    // while it filled to a million series. The log is purged soon after it is written
    // and the groups are read back only at start-up, so small memtables cost little.
    let cf_options = || {
        let mut o = rocksdb::Options::default();
        o.set_write_buffer_size(MEMTABLE_BYTES);
        o
    };
    let cfs = [log::CF_LOG, log::CF_META, state_machine::CF_GROUPS, state_machine::CF_SM_META]
        .into_iter()
        .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, cf_options()));
    Ok(Arc::new(DB::open_cf_descriptors(&options, path, cfs)?))
}

/// Bytes written into each WAL file made at start-up by [`prime_wal`]: a memtable's worth,
/// about what a WAL holds when a full memtable rotates it.
const WAL_PRIMER_BYTES: usize = MEMTABLE_BYTES;

/// A key of the `raft_meta` family no one else writes: [`prime_wal`] deletes it, the
/// smallest write that gives a flush a memtable to switch.
const WAL_PRIMER_KEY: &[u8] = b"wal_primer";

/// Leaves the database writing its WAL over a recycled file of [`WAL_PRIMER_BYTES`] from
/// the first write on, and returns whether it does.
///
/// RocksDB recycles only WAL files of its own run, and a WAL rotates after a memtable of
/// writes: a node that pushes a few kilobytes a minute would append to a new file for
/// hours after each start, and each append's `fdatasync` would then write the file's
/// size too (docs/decisions/0026). So, before anything else is written: twice, a
/// primer's worth of WAL-only data (RocksDB's log data, which no memtable holds, and
/// recovery skips) with a delete of [`WAL_PRIMER_KEY`], then a flush of `raft_meta`,
/// which switches to a new WAL and leaves the old one obsolete, to be written over. A
/// RocksDB that recycles later than expected gets up to two more rounds. Nothing here is
/// synced or read back: the primer carries no state.
pub fn prime_wal(db: &DB, dir: &std::path::Path) -> Result<bool, rocksdb::Error> {
    let meta = db.cf_handle(log::CF_META).expect("raft_meta column family");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..4 {
        let mut batch = rocksdb::WriteBatch::default();
        for _ in 0..WAL_PRIMER_BYTES / chunk.len() {
            batch.put_log_data(&chunk);
        }
        batch.delete_cf(&meta, WAL_PRIMER_KEY);
        db.write(batch)?;
        db.flush_cf(&meta)?;
        if live_wal_bytes(dir) >= WAL_PRIMER_BYTES as u64 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The length of the newest WAL file in the database directory `dir` (RocksDB names them
/// by increasing number; the newest is the one written), 0 if none. A recycled file keeps
/// its old length, so a live WAL longer than what was written to it is a recycled one.
pub fn live_wal_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let number: u64 = name.to_str()?.strip_suffix(".log")?.parse().ok()?;
            Some((number, e.metadata().ok()?.len()))
        })
        .max_by_key(|&(number, _)| number)
        .map_or(0, |(_, len)| len)
}

#[cfg(test)]
mod suite {
    use std::sync::RwLock;

    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    use super::log::LogStore;
    use super::state_machine::StateMachine;
    use super::*;
    use crate::raft_types::TypeConfig;
    use model::GroupStore;

    struct RocksBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
            let dir = TempDir::new().expect("temp dir");
            let db = open_db(dir.path()).expect("open RocksDB");
            let store = Arc::new(RwLock::new(GroupStore::new()));
            let sm = StateMachine::open(db.clone(), store, Durability::SYNCED)?;
            Ok((dir, LogStore::new(db, Durability::SYNCED), sm))
        }
    }

    /// A purge of entries the state machine does not hold on disk yet (a received
    /// snapshot still being installed) waits until it does, then purges.
    #[tokio::test]
    async fn a_purge_waits_until_the_state_it_drops_is_on_disk() {
        use openraft::storage::RaftLogStorage;
        let dir = TempDir::new().expect("temp dir");
        let db = open_db(dir.path()).expect("open RocksDB");
        let (durable, durable_applied) = tokio::sync::watch::channel(0u64);
        let mut log = LogStore::new(db, Durability::SYNCED).guarding_purges_with(durable_applied);
        let upto = crate::raft_types::LogId::new(openraft::CommittedLeaderId::new(1, 1), 5);
        let purge = tokio::spawn(async move { log.purge(upto).await.map(|()| log) });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!purge.is_finished(), "purged before anything was on disk");
        durable.send_replace(4);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!purge.is_finished(), "purged past what was on disk");
        durable.send_replace(5);
        let log = tokio::time::timeout(std::time::Duration::from_secs(10), purge)
            .await
            .expect("the purge ends once the state is on disk")
            .expect("task")
            .expect("purge");
        assert_eq!(log.log_state().expect("log state").last_purged_log_id, Some(upto));
    }

    /// The WAL stays bounded while the log is written heavily and the metadata families
    /// take one small write per entry (they never fill a memtable themselves): RocksDB
    /// flushes them once the live WAL passes its limit, and the old files go (or wait,
    /// [`WAL_FILES_RECYCLED`] at most, to be written over: counted here too).
    #[test]
    fn the_wal_stays_bounded_under_small_metadata_writes() {
        let dir = TempDir::new().expect("temp dir");
        let db = open_db(dir.path()).expect("open RocksDB");
        let log_cf = db.cf_handle(log::CF_LOG).expect("log");
        let meta_cf = db.cf_handle(state_machine::CF_SM_META).expect("meta");
        let payload = vec![7u8; 64 << 10];
        let wal_bytes = || -> u64 {
            std::fs::read_dir(dir.path())
                .expect("list")
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        };
        // 3 × the limit in log entries, each with its small metadata write.
        let entries = 3 * WAL_BYTES_MAX / payload.len() as u64;
        for i in 0..entries {
            db.put_cf(&log_cf, i.to_be_bytes(), &payload).expect("put log");
            db.put_cf(&meta_cf, b"applied", i.to_be_bytes()).expect("put meta");
        }
        let bound = WAL_BYTES_MAX + 2 * MEMTABLE_BYTES as u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while wal_bytes() > bound && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(wal_bytes() <= bound, "{} WAL bytes live after writing {} MiB", wal_bytes(), entries / 16);
    }

    /// After [`prime_wal`] the first synced write goes into a recycled WAL file (RocksDB's
    /// own LOG says it reused one, and the newest WAL keeps its primed length), and the
    /// write is read back after a reopen: the primer's records are no state.
    #[test]
    fn a_primed_database_writes_its_first_entry_over_a_recycled_wal_file() {
        let dir = TempDir::new().expect("temp dir");
        let db = open_db(dir.path()).expect("open RocksDB");
        assert!(live_wal_bytes(dir.path()) < WAL_PRIMER_BYTES as u64, "a fresh database's WAL is new");
        assert!(prime_wal(&db, dir.path()).expect("prime"), "no recycled WAL after priming");
        let log_cf = db.cf_handle(log::CF_LOG).expect("log");
        db.put_cf_opt(&log_cf, b"entry", b"synced", &Durability::SYNCED.write_options()).expect("put");
        assert!(live_wal_bytes(dir.path()) >= WAL_PRIMER_BYTES as u64, "the write went to a new WAL file");
        let info = std::fs::read_to_string(dir.path().join("LOG")).expect("RocksDB LOG");
        assert!(info.contains("reusing log"), "RocksDB's LOG shows no recycled WAL");
        drop(db);
        let db = open_db(dir.path()).expect("reopen RocksDB");
        let log_cf = db.cf_handle(log::CF_LOG).expect("log");
        assert_eq!(db.get_cf(&log_cf, b"entry").expect("get").as_deref(), Some(&b"synced"[..]));
        assert_eq!(db.get_cf(&db.cf_handle(log::CF_META).expect("meta"), WAL_PRIMER_KEY).expect("get"), None);
    }

    /// openraft's own storage test suite against the RocksDB log store and state machine.
    #[test]
    fn openraft_storage_suite() {
        if let Err(e) = Suite::test_all(RocksBuilder) {
            panic!("storage suite failed: {e}");
        }
    }
}
