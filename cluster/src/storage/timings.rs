//! How long this node's Raft waits for its storage: each successful log append (the
//! synced write, as openraft awaits it) and each successful apply batch (judging, waiting
//! for the store's write lock, the in-memory change, and the unsynced checkpoint when one
//! was due at its end; not the checkpoint written before a snapshot). Counted since
//! the node started; the JSON API shows them, and the benchmark divides their growth during
//! its 32-client load by the appends and batches it caused, to split an entry's time into
//! its parts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// The counters, shared by the log store and the state machine of one node.
#[derive(Clone, Default)]
pub struct Timings(Arc<Counters>);

#[derive(Default)]
struct Counters {
    log_appends: AtomicU64,
    log_append_nanos: AtomicU64,
    apply_batches: AtomicU64,
    applied_entries: AtomicU64,
    apply_nanos: AtomicU64,
}

/// What [`Timings`] counted so far.
/// Serialized into `/api/v1/cluster` as `storage`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StorageTimings {
    /// Appends to the log (each one synced write of one or more entries), and the time
    /// Raft waited for them.
    pub log_appends: u64,
    pub log_append_seconds: f64,
    /// Apply batches, the entries in them, and the time Raft waited for them.
    pub apply_batches: u64,
    pub applied_entries: u64,
    pub apply_seconds: f64,
}

fn nanos(took: Duration) -> u64 {
    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
}

impl Timings {
    pub(crate) fn log_appended(&self, took: Duration) {
        self.0.log_appends.fetch_add(1, Ordering::Relaxed);
        self.0.log_append_nanos.fetch_add(nanos(took), Ordering::Relaxed);
    }

    pub(crate) fn applied(&self, entries: usize, took: Duration) {
        self.0.apply_batches.fetch_add(1, Ordering::Relaxed);
        self.0.applied_entries.fetch_add(entries as u64, Ordering::Relaxed);
        self.0.apply_nanos.fetch_add(nanos(took), Ordering::Relaxed);
    }

    pub fn read(&self) -> StorageTimings {
        let seconds = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / 1e9;
        StorageTimings {
            log_appends: self.0.log_appends.load(Ordering::Relaxed),
            log_append_seconds: seconds(&self.0.log_append_nanos),
            apply_batches: self.0.apply_batches.load(Ordering::Relaxed),
            applied_entries: self.0.applied_entries.load(Ordering::Relaxed),
            apply_seconds: seconds(&self.0.apply_nanos),
        }
    }
}
