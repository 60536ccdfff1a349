//! openraft's own storage test suite against the RocksDB log store and state machine.

use std::sync::{Arc, RwLock};

use cluster::log_store::LogStore;
use cluster::raft_types::{NodeId, TypeConfig};
use cluster::state_machine::{open_db, StateMachine};
use cluster::GroupStore;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temp dir");
        let db = open_db(dir.path()).expect("open RocksDB");
        let store = Arc::new(RwLock::new(GroupStore::new(Vec::new())));
        let sm = StateMachine::open(db.clone(), store)?;
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(RocksBuilder) {
        panic!("storage suite failed: {e}");
    }
}
