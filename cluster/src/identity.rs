//! Who this node is across disk losses: its incarnation.
//!
//! A voter that comes back with an empty data directory under its old id has forgotten
//! its vote and its log: it could vote twice in a term, or help elect a leader that lacks
//! an entry only it and the old leader held (docs/decisions/0011). So the Raft id of a
//! node is its `--cluster.node-id` plus its incarnation times 2^32 ([`raft_id`]), and the
//! data directory keeps the incarnation in an `identity` file, written (and fsynced)
//! before the node answers any peer. Incarnation 0 is the id itself: directories from
//! before this file keep their ids.
//!
//! A node that starts without any Raft state (no vote, no log) asks its peers
//! ([`resolve`]) before it does anything else:
//! - if the cluster they hold lists an incarnation of its node id, that incarnation lost
//!   its disk: this node takes the next incarnation, joins as a learner and, once caught
//!   up, replaces the lost one in the same membership change ([`crate::transport::AdminRequest::Rejoin`]).
//!   Requests addressed to the lost incarnation are refused (each Raft RPC names its
//!   target), so it never votes or acknowledges an entry as the member it was;
//! - if every peer it was told about answers and none holds a cluster, it is new
//!   (incarnation 0), and the lowest initial member may initialize;
//! - otherwise it waits, saying whom it waits for: it cannot tell the two apart.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ClusterConfig, NodeId};
use crate::error::StartError;
use crate::transport::client::PeerClient;
use crate::transport::{PATH_ADOPT, PATH_IDENTITY};

/// The bits of a Raft id below the incarnation: the configured node id.
const NODE_BITS: u32 = 32;

/// The Raft id of incarnation `incarnation` of node `node`.
pub fn raft_id(node: NodeId, incarnation: u32) -> NodeId {
    node | (u64::from(incarnation) << NODE_BITS)
}

/// The configured node id of a Raft id.
pub fn node_of(raft_id: NodeId) -> NodeId {
    raft_id & ((1 << NODE_BITS) - 1)
}

/// The incarnation of a Raft id.
pub fn incarnation_of(raft_id: NodeId) -> u32 {
    (raft_id >> NODE_BITS) as u32
}

/// The largest configured node id (the rest of a Raft id is the incarnation).
pub const MAX_NODE_ID: NodeId = (1 << NODE_BITS) - 1;

const FILE: &str = "identity";

/// What a member says of itself and of the cluster it holds, on `/raft/identity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAnswer {
    /// Its Raft id.
    pub raft_id: NodeId,
    /// Whether it holds a cluster (Raft is initialized).
    pub initialized: bool,
    /// The members (voters and learners) of that cluster, by Raft id, with their peer addresses.
    pub members: BTreeMap<NodeId, String>,
}

/// How this node starts, as [`resolve`] found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// It has Raft state, or no peers to ask: as before, under `incarnation`.
    Known { incarnation: u32 },
    /// Its directory is empty and none of its peers holds a cluster: a new cluster.
    New,
    /// Its directory is empty and the cluster that the members at `via` (the one that
    /// answered first, then the members it listed) hold does not list its node id: it
    /// asks to join as a learner (never initializes).
    Join { via: Vec<String> },
    /// Its directory is empty but the cluster of the members at `via` lists these
    /// incarnations of its node id: it rejoins as `incarnation` and replaces them.
    Lost { incarnation: u32, replaces: Vec<NodeId>, via: Vec<String> },
}

impl Start {
    pub fn incarnation(&self) -> u32 {
        match self {
            Start::Known { incarnation } | Start::Lost { incarnation, .. } => *incarnation,
            Start::New | Start::Join { .. } => 0,
        }
    }
}

/// The incarnation written in `data_dir`, if any.
fn read(data_dir: &Path, node: NodeId) -> Result<Option<u32>, String> {
    let path = data_dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut fields = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("{}: bad line {line:?}", path.display()))?;
        fields.insert(k.trim(), v.trim());
    }
    let number = |k: &str| -> Result<u64, String> {
        fields.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{}: no {k}", path.display()))
    };
    let written_for = number("node_id")?;
    if written_for != node {
        return Err(format!(
            "{} belongs to node {written_for}, and this node is --cluster.node-id={node}: give each node its own \
             --storage.path",
            data_dir.display()
        ));
    }
    let incarnation = number("incarnation")?;
    u32::try_from(incarnation).map(Some).map_err(|_| format!("{}: incarnation {incarnation}", path.display()))
}

/// The Raft id that node `node` runs under in `data_dir` (its written incarnation, 0 if none).
pub(crate) fn raft_id_in(data_dir: &Path, node: NodeId) -> Result<NodeId, String> {
    Ok(raft_id(node, read(data_dir, node)?.unwrap_or(0)))
}

/// Writes the identity file durably: a temporary file, fsynced, renamed, the directory fsynced.
fn write(data_dir: &Path, node: NodeId, incarnation: u32) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", data_dir.display());
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    writeln!(file, "node_id={node}\nincarnation={incarnation}").map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, data_dir.join(FILE)).map_err(io)?;
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).map_err(io)
}

/// How often an undecided node asks its peers again.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// Finds out how this node starts (see the module docs) and writes its identity file
/// before it returns. `has_state`: the data directory holds Raft state (a vote or log).
pub(crate) async fn resolve(
    config: &ClusterConfig,
    peers: &PeerClient,
    has_state: bool,
    adopted: &AtomicBool,
) -> Result<Start, StartError> {
    let node = config.node_id;
    let written = read(&config.data_dir, node).map_err(StartError::Config)?;
    let asked: Vec<String> = config
        .initial_members
        .iter()
        .filter(|(id, _)| **id != node)
        .map(|(_, addr)| addr.clone())
        .chain(config.join.clone())
        .collect();
    // Only Raft state proves what this node did: without any (a lost disk, or a start
    // that never got as far as a vote or an entry) the peers decide. Rejoining under a
    // new incarnation is safe even for a node that never acknowledged anything.
    let start = if has_state || asked.is_empty() {
        Start::Known { incarnation: written.unwrap_or(0) }
    } else {
        let lowest = config.initial_members.keys().next() == Some(&node);
        // A node the initial members do not list (one added by scaling up) is never new in
        // a cluster that is not initialized yet: it waits to join it.
        let member = config.initial_members.contains_key(&node) || config.join.is_some();
        ask(node, &asked, lowest, member, peers, adopted).await
    };
    if written == Some(start.incarnation()) {
        return Ok(start);
    }
    write(&config.data_dir, node, start.incarnation()).map_err(|e| StartError::Storage(config.data_dir.clone(), e))?;
    tracing::info!(node, incarnation = start.incarnation(), ?start, "identity of this data directory");
    Ok(start)
}

/// Asks `peers` until it can tell whether this node is new or lost its data.
/// A node that is not a `member` of the initial set waits for an initialized cluster to join.
///
/// When none holds a cluster, the lowest initial member (`lowest`) asks each of the others
/// to adopt incarnation 0 in the cluster it is about to initialize, and is new once all
/// did; the others are new once it asked them (`adopted`, set by the peer listener). So a
/// member that is still finding out when the cluster is initialized does not take itself
/// for a lost one.
async fn ask(
    node: NodeId,
    addrs: &[String],
    lowest: bool,
    member: bool,
    peers: &PeerClient,
    adopted: &AtomicBool,
) -> Start {
    let mut said = false;
    let call = |addr: &str, path: &'static str| {
        let addr = addr.to_string();
        async move { peers.call::<(), IdentityAnswer>(&addr, path, &(), Duration::from_secs(2)).await }
    };
    loop {
        if adopted.load(Ordering::SeqCst) {
            return Start::New;
        }
        let mut missing = Vec::new();
        let mut uninitialized = 0;
        for addr in addrs {
            match call(addr, PATH_IDENTITY).await {
                // Adopted by the lowest member before it initialized: this cluster is the one
                // this node was new in.
                Ok(answer) if answer.initialized && adopted.load(Ordering::SeqCst) => return Start::New,
                Ok(answer) if answer.initialized => return judge(node, &answer, addr),
                Ok(_) => uninitialized += 1,
                Err(e) => missing.push(format!("{addr} ({e})")),
            }
        }
        if missing.is_empty() && uninitialized > 0 && !member {
            missing.push("no cluster initialized yet; this node is not an initial member and waits to join".into());
        } else if missing.is_empty() && uninitialized > 0 {
            if !lowest {
                return Start::New;
            }
            let mut refused = Vec::new();
            for addr in addrs {
                match call(addr, PATH_ADOPT).await {
                    Ok(answer) if !answer.initialized => {}
                    Ok(_) => refused.push(format!("{addr} (holds a cluster)")),
                    Err(e) => refused.push(format!("{addr} ({e})")),
                }
            }
            if refused.is_empty() {
                return Start::New;
            }
            missing = refused;
        }
        if !said {
            tracing::warn!(
                ?missing,
                "this node's data directory is empty: waiting for its peers to say whether it is new or lost its \
                 data (it neither votes nor initializes until then)"
            );
            said = true;
        }
        tokio::time::sleep(ASK_AGAIN).await;
    }
}

/// What the cluster of the member at `via` says of `node`: lost if it lists an
/// incarnation of it, else a node to join.
fn judge(node: NodeId, answer: &IdentityAnswer, via: &str) -> Start {
    let replaces: Vec<NodeId> = answer.members.keys().copied().filter(|id| node_of(*id) == node).collect();
    let mut members: Vec<String> = vec![via.to_string()];
    for (id, addr) in &answer.members {
        if node_of(*id) != node && !members.contains(addr) {
            members.push(addr.clone());
        }
    }
    let via = members;
    match replaces.iter().map(|id| incarnation_of(*id)).max() {
        None => Start::Join { via },
        Some(last) => Start::Lost { incarnation: last + 1, replaces, via },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_keep_the_node_id_and_the_incarnation() {
        assert_eq!(raft_id(3, 0), 3, "incarnation 0 is the id of directories from before");
        assert_eq!(raft_id(3, 2), 3 + 2 * (1 << 32));
        assert_eq!((node_of(raft_id(7, 5)), incarnation_of(raft_id(7, 5))), (7, 5));
        assert_eq!(node_of(raft_id(MAX_NODE_ID, 1)), MAX_NODE_ID);
    }

    #[test]
    fn a_cluster_listing_the_node_makes_it_the_next_incarnation() {
        let members = |ids: &[NodeId]| ids.iter().map(|id| (*id, format!("h{id}:9092"))).collect();
        let answer = |ids: &[NodeId]| IdentityAnswer { raft_id: 1, initialized: true, members: members(ids) };
        let via = vec!["h1:9092".to_string(), "h2:9092".to_string()];
        let lost = |incarnation, replaces| Start::Lost { incarnation, replaces, via: via.clone() };
        assert_eq!(judge(3, &answer(&[1, 2, 3]), &via[0]), lost(1, vec![3]));
        let twice = raft_id(3, 2);
        assert_eq!(judge(3, &answer(&[1, 2, twice]), &via[0]), lost(3, vec![twice]));
        let mut all = via.clone();
        all.push("h3:9092".to_string());
        assert_eq!(judge(4, &answer(&[1, 2, 3]), &via[0]), Start::Join { via: all });
    }

    #[test]
    fn the_identity_file_is_the_nodes_own() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), 2), Ok(None));
        write(dir.path(), 2, 5).unwrap();
        assert_eq!(read(dir.path(), 2), Ok(Some(5)));
        let other = read(dir.path(), 3).unwrap_err();
        assert!(other.contains("belongs to node 2"), "{other}");
    }
}
