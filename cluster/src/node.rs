//! The facade the HTTP side uses: propose a command, read a consistent view, status.
//!
//! It is the only door into the store for `src/`, so the store behind it can change
//! (a single in-process store today, a replicated state machine next) without the HTTP
//! layer noticing. Callers may rely on:
//! - `propose` returns the [`Outcome`] of the command once it has been applied; an
//!   `Err` says whether the command was certainly not applied
//!   ([`ProposeError::Unavailable`]) or may still be ([`ProposeError::Timeout`]);
//! - `read` sees every command whose `propose` has returned before `read` was called.

use std::sync::{Arc, RwLock};

use crate::command::{Command, Outcome};
use crate::store::{GroupStore, OwnFamily};

/// Why a command could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Certainly not applied (no leader, no quorum): retrying is safe.
    #[error("no quorum available: {0}")]
    Unavailable(String),
    /// Proposed but not confirmed in time: it may still be applied.
    #[error("not confirmed in time: {0}")]
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

/// Role and progress of this node, as status pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    pub role: String,
    pub leader: Option<u64>,
    pub applied_index: u64,
    pub members: Vec<u64>,
}

/// A handle to the group store; cheap to clone.
#[derive(Clone)]
pub struct Node {
    store: Arc<RwLock<GroupStore>>,
    applied: Arc<std::sync::atomic::AtomicU64>,
}

impl Node {
    /// A single node holding the store in memory.
    pub fn single(own: Vec<OwnFamily>) -> Self {
        Node { store: Arc::new(RwLock::new(GroupStore::new(own))), applied: Arc::default() }
    }

    /// Applies `command` and returns its outcome.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let mut store = self.store.write().map_err(|_| ProposeError::Storage("store lock poisoned".into()))?;
        let outcome = store.apply(command);
        self.applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(outcome)
    }

    /// Runs `f` on a view that includes every command confirmed before the call.
    pub async fn read<R>(&self, f: impl FnOnce(&GroupStore) -> R) -> Result<R, ReadError> {
        let store = self.store.read().map_err(|_| ReadError::Unavailable("store lock poisoned".into()))?;
        Ok(f(&store))
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            node_id: 1,
            role: "leader".into(),
            leader: Some(1),
            applied_index: self.applied.load(std::sync::atomic::Ordering::SeqCst),
            members: vec![1],
        }
    }
}
