//! Two hints a node writes besides its log and its applied state, unsynced and coalesced:
//!
//! - the last committed log id it knows (openraft's `save_committed`): at start openraft
//!   applies every entry of the log up to it before the node serves anything
//!   (`get_initial_state`), so a node that restarts where no leader is reachable serves all
//!   it knew committed, not only its last checkpoint (docs/decisions/0020), which after a
//!   burst followed by quiet could lag by the whole burst;
//! - when a read on this node last passed the read barrier ([`ConfirmedAt`]): such a node
//!   marks its reads stale with their age counted from then, not from its start.
//!
//! Both are written after what they describe: a committed entry was appended with a synced
//! write before openraft could know it committed (0.9 awaits each append's flush), and the
//! read's barrier had been passed, so the state at the committed index holds what it needed.
//! RocksDB recovers a prefix of its write-ahead log, so a hint on disk never refers to an
//! entry that is not. Losing the latest hints (a power loss, before the next synced write)
//! costs only what they add.

use std::sync::Arc;
use std::time::Duration;

use rocksdb::{WriteBatch, DB};
use tokio::sync::watch;

use super::blocking;
use super::log::CF_META;
use crate::codec;
use crate::raft_types::LogId;
use crate::read::ConfirmedAt;

/// In the log's meta column family: the last committed log id known.
const KEY_COMMITTED: &[u8] = b"committed";
/// In the log's meta column family: [`ConfirmedAt`], 8 bytes, big-endian Unix milliseconds.
const KEY_READ_CONFIRMED: &[u8] = b"read_confirmed_at";

/// How long a change of either hint waits before it is written, so that one write carries
/// every change meanwhile (a busy node commits hundreds of entries a second).
const WRITE_AFTER: Duration = Duration::from_millis(100);

/// How long a failed write of the hints waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The last committed log id this node knows, set by openraft (`save_committed`) and
/// written by [`Hints::keep`]. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committed(Arc<watch::Sender<Option<LogId>>>);

impl Default for Committed {
    fn default() -> Self {
        Committed(Arc::new(watch::Sender::new(None)))
    }
}

impl Committed {
    pub(crate) fn set(&self, committed: Option<LogId>) {
        self.0.send_replace(committed);
    }

    fn get(&self) -> Option<LogId> {
        *self.0.borrow()
    }
}

/// The committed log id stored in `db`, if any (a hint: one that cannot be read is none).
pub(crate) fn read_committed(db: &DB) -> Option<LogId> {
    let cf = db.cf_handle(CF_META).expect("raft_meta column family");
    let raw = db.get_cf(cf, KEY_COMMITTED).ok().flatten()?;
    codec::decode::<Option<LogId>>(&raw).ok().flatten()
}

/// The last confirmed read stored in `db` (none: 0).
pub(crate) fn read_confirmed(db: &DB) -> ConfirmedAt {
    let cf = db.cf_handle(CF_META).expect("raft_meta column family");
    let raw = db.get_cf(cf, KEY_READ_CONFIRMED).ok().flatten();
    let millis = raw.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map_or(0, u64::from_be_bytes);
    ConfirmedAt::from_unix_millis(millis)
}

/// What [`Hints::write`] last wrote.
#[derive(Clone, Copy, Default, PartialEq)]
struct Written {
    committed: Option<LogId>,
    confirmed: u64,
}

/// Both hints of a node and its database. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Hints {
    db: Arc<DB>,
    committed: Committed,
    confirmed: ConfirmedAt,
    written: Arc<tokio::sync::Mutex<Written>>,
}

impl Hints {
    pub(crate) fn new(db: Arc<DB>, committed: Committed, confirmed: ConfirmedAt) -> Self {
        let written = Written { committed: read_committed(&db), confirmed: confirmed.unix_millis() };
        Hints { db, committed, confirmed, written: Arc::new(tokio::sync::Mutex::new(written)) }
    }

    /// Writes both hints whenever one changes, [`WRITE_AFTER`] later (a failed write again
    /// every [`RETRY_AFTER`]); for the node's life.
    pub(crate) async fn keep(self) {
        // Each receiver sees every change made after it was taken, several at once as one;
        // one taken as changed also covers a change made before this task started.
        let mut committed = self.committed.0.subscribe();
        committed.mark_changed();
        let mut confirmed = self.confirmed.subscribe();
        loop {
            tokio::select! {
                _ = committed.changed() => {}
                _ = confirmed.changed() => {}
            }
            tokio::time::sleep(WRITE_AFTER).await;
            // A failed write is tried again until one succeeds: after a burst and then
            // quiet, no later change would bring the next attempt.
            while let Err(e) = self.write().await {
                tracing::warn!(error = %e, "could not write the committed index and the last confirmed read; retrying in 1 s");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }

    /// Writes what changed since the last write (unsynced; the next synced write of the
    /// log makes it durable). The read's time is taken before the committed id: the
    /// barrier it passed had that entry applied, so the committed id taken after covers it.
    pub(crate) async fn write(&self) -> Result<(), String> {
        let mut written = self.written.lock().await;
        let confirmed = self.confirmed.unix_millis();
        // Never back: a value below the one written (none before openraft read it at
        // start) would make a restart apply less.
        let committed = match (self.committed.get(), written.committed) {
            (Some(latest), Some(w)) if latest.index < w.index => Some(w),
            (None, w) => w,
            (latest, _) => latest,
        };
        let now = Written { confirmed, committed };
        if now == *written {
            return Ok(());
        }
        let cf = self.db.cf_handle(CF_META).expect("raft_meta column family");
        let mut batch = WriteBatch::default();
        if now.committed != written.committed {
            batch.put_cf(cf, KEY_COMMITTED, codec::encode(&now.committed).map_err(|e| e.to_string())?);
        }
        if now.confirmed != written.confirmed {
            batch.put_cf(cf, KEY_READ_CONFIRMED, now.confirmed.to_be_bytes());
        }
        let db = self.db.clone();
        blocking(move || {
            db.write(batch).map_err(|e| super::io_error(openraft::ErrorSubject::Store, openraft::ErrorVerb::Write, e))
        })
        .await
        .map_err(|e| e.to_string())?;
        *written = now;
        Ok(())
    }
}
