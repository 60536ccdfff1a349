//! Disaster recovery on a stopped node's data directory: make it the only voter of a new
//! cluster, keeping everything in its log and state. Used after losing a majority for good
//! (the survivors cannot elect a leader), and to start from a checkpoint (a backup).
//!
//! The node's log gets one more entry: a membership of this node alone, after everything
//! it holds. Openraft takes the last membership in the log as the effective one, so on the
//! next start the node elects itself, commits every entry of its log (including any it
//! had received but not yet applied: none of the acknowledged pushes it holds is dropped)
//! and applies them. Then grow it again as usual.
//!
//! Whatever the lost nodes held and this one did not is lost; that is what losing a
//! majority means. The lost nodes must never come back with their old data: wipe them,
//! and rotate `--cluster.secret-file` if they might.

// openraft's storage error type is large; boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::{EntryPayload, LogId as RaftLogId, Membership};
use rocksdb::{checkpoint::Checkpoint, WriteBatch, DB};

use super::log::{LogStore, CF_LOG};
use super::state_machine::read_applied;
use super::{open_db, Durability};
use crate::codec;
use crate::config::NodeId;
use crate::raft_types::{Entry, PeerNode};

/// What [`force_new_cluster`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The entry that now holds the one-member membership.
    pub membership_index: u64,
    /// The last entry the node had applied (what was durable in its state).
    pub applied_index: u64,
    /// Entries in its log after that: applied once it elects itself.
    pub unapplied_entries: u64,
}

/// Rewrites the database under `data_dir` (the node must be stopped) so that the node
/// starts as the only voter, node `id` (under the incarnation its data directory records)
/// at peer address `addr`, of a new cluster.
pub fn force_new_cluster(data_dir: &Path, id: NodeId, addr: &str) -> Result<Recovered, String> {
    let id = crate::identity::raft_id_in(data_dir, id)?;
    let path = data_dir.join("db");
    if !path.join("CURRENT").exists() {
        return Err(format!("{}: no database here (is this a node's --storage.path?)", data_dir.display()));
    }
    let db = open_db(&path).map_err(|e| format!("{}: {e} (is the node still running?)", path.display()))?;
    let applied = read_applied(&db).map_err(|e| e.to_string())?;
    let log = LogStore::new(db.clone(), Durability::SYNCED).log_state().map_err(|e| e.to_string())?;
    let Some(last) = [log.last_log_id, applied].into_iter().flatten().max_by_key(|l| l.index) else {
        return Err("the node has neither log nor state: start it as a new cluster instead".into());
    };
    let membership =
        Membership::new(vec![BTreeSet::from([id])], BTreeMap::from([(id, PeerNode { addr: addr.into() })]));
    let entry =
        Entry { log_id: RaftLogId::new(last.leader_id, last.index + 1), payload: EntryPayload::Membership(membership) };
    let bytes = codec::encode(&entry).map_err(|e| e.to_string())?;
    let mut batch = WriteBatch::default();
    batch.put_cf(db.cf_handle(CF_LOG).expect("raft_log column family"), entry.log_id.index.to_be_bytes(), bytes);
    db.write_opt(batch, &Durability::SYNCED.write_options()).map_err(|e| e.to_string())?;
    let applied_index = applied.map_or(0, |a| a.index);
    Ok(Recovered {
        membership_index: entry.log_id.index,
        applied_index,
        unapplied_entries: last.index.saturating_sub(applied_index),
    })
}

/// A consistent copy of a running node's database in `target` (which must not exist):
/// RocksDB's checkpoint, hard links to the immutable files where `target` is on the same
/// file system. It holds the log, the vote and the state at one moment; a node started on
/// it after [`force_new_cluster`] serves that state.
pub fn checkpoint(db: &DB, target: &Path) -> Result<(), String> {
    if target.exists() {
        return Err(format!("{} exists; a checkpoint goes into a new directory", target.display()));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let db_dir = target.join("db");
    std::fs::create_dir_all(target).map_err(|e| format!("{}: {e}", target.display()))?;
    Checkpoint::new(db).and_then(|c| c.create_checkpoint(&db_dir)).map_err(|e| format!("checkpoint: {e}"))
}
