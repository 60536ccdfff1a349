//! Importing upstream's persistence file: `POST /api/v1/admin/import` (the file as the
//! body, `pushgateway import FILE`), and once at start-up from `--persistence.file`.
//! Every group of the file becomes the pushes that rebuild it ([`crate::import`]), and
//! all of them are proposed as one log entry: every node gets the whole file, or none of
//! it. A group in the file replaces the stored group with the same grouping key (it is
//! deleted first); other groups are kept. A group `apply` refuses is deleted again in a
//! second entry, so that nothing of it stays half-built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::Response;
use serde::Serialize;
use tokio::sync::watch;

use model::{Command, GroupingKey, Outcome, PushLimits};

use super::answers::json;
use super::push::push_command;
use super::AppState;
use crate::error::HttpError;
use crate::import::{read_file, FileGroup, ImportError, ImportPush};

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    /// Groups of the file now stored.
    pub groups: usize,
    /// Commands the stored groups became (a delete and pushes per group; one log entry).
    pub commands: usize,
    /// Groups not imported, with the reason (as a push of them would be refused).
    pub refused: Vec<RefusedGroup>,
}

#[derive(Debug, Serialize)]
pub struct RefusedGroup {
    pub labels: BTreeMap<String, String>,
    pub reason: String,
}

/// One group of a file: its labels, and its pushes or why it cannot be imported.
type DecodedGroup = (BTreeMap<String, String>, Result<Vec<ImportPush>, String>);

/// A file read and turned into pushes.
pub struct Decoded(Vec<DecodedGroup>);

impl Decoded {
    /// These groups but those whose key is in `stored`, and the labels of those.
    fn without(&self, stored: &BTreeSet<GroupingKey>) -> (Decoded, Vec<BTreeMap<String, String>>) {
        let (mut kept, mut left) = (Vec::new(), Vec::new());
        for (labels, pushes) in &self.0 {
            match pushes {
                Ok(p) if p.first().is_some_and(|p| stored.contains(&p.key)) => left.push(labels.clone()),
                _ => kept.push((labels.clone(), pushes.clone())),
            }
        }
        (Decoded(kept), left)
    }
}

/// Reads `file` and derives each group's pushes (CPU work: run it off the async workers).
/// Only a file that is not upstream's fails as a whole.
pub fn decode(file: &[u8], limits: &PushLimits) -> Result<Decoded, ImportError> {
    let groups = read_file(file)?;
    Ok(Decoded(groups.into_iter().map(|g| (g.labels.clone(), g.pushes(limits).map_err(|e| e.to_string()))).collect()))
}

/// Imports the groups of `file` (upstream's persistence file).
pub async fn import(state: &AppState, file: Bytes) -> Result<ImportSummary, HttpError> {
    let limits = state.config.push_limits();
    let decoded = tokio::task::spawn_blocking(move || decode(&file, &limits))
        .await
        .map_err(|e| HttpError::NotReady(format!("shutting down: {e}")))?
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    import_decoded(state, &decoded).await
}

/// Proposes what [`decode`] derived: one entry with every importable group, then one
/// deleting the groups `apply` refused.
pub async fn import_decoded(state: &AppState, decoded: &Decoded) -> Result<ImportSummary, HttpError> {
    let time = super::now();
    let mut summary = ImportSummary::default();
    let mut commands = Vec::new();
    // Per command, the index of its group and whether it only records a failure (which
    // `apply` answers as a refusal by design).
    let mut owners: Vec<(usize, bool)> = Vec::new();
    for (index, (labels, pushes)) in decoded.0.iter().enumerate() {
        let pushes = match pushes {
            Ok(pushes) if !pushes.is_empty() => pushes,
            Ok(_) => continue,
            Err(reason) => {
                summary.refused.push(RefusedGroup { labels: labels.clone(), reason: reason.clone() });
                continue;
            }
        };
        let names = FileGroup::names(pushes);
        commands.push(Command::Delete { key: pushes[0].key.clone() });
        owners.push((index, false));
        for p in pushes {
            let (key, families, defect) = (p.key.clone(), p.families.clone(), p.defect.clone());
            let records_failure = defect.is_some();
            // A time from the future would make the group look pushed later than now.
            let at = p.time.min(time);
            let utf8_names = names == model::check::Names::Utf8;
            let push = model::Push { key, families, replace: p.replace, time: at, defect, utf8_names, ttl: None };
            commands.push(push_command(state, push).await?);
            owners.push((index, records_failure));
        }
    }
    if commands.is_empty() {
        return Ok(summary);
    }
    let outcomes = state.node.propose_together(&commands).await.map_err(HttpError::Propose)?;
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    for (outcome, (owner, records_failure)) in outcomes.iter().zip(&owners) {
        if let Outcome::Rejected { reason } = outcome {
            if !records_failure {
                refused.entry(*owner).or_insert_with(|| reason.clone());
            }
        }
    }
    let stored: std::collections::BTreeSet<usize> = owners.iter().map(|(o, _)| *o).collect();
    summary.groups = stored.len() - refused.len();
    summary.commands = commands.len();
    let mut undo = Vec::new();
    for (owner, reason) in refused {
        let (labels, pushes) = &decoded.0[owner];
        if let Ok(pushes) = pushes {
            undo.push(Command::Delete { key: pushes[0].key.clone() });
        }
        summary.refused.push(RefusedGroup { labels: labels.clone(), reason });
    }
    if !undo.is_empty() {
        state.node.propose_together(&undo).await.map_err(HttpError::Propose)?;
    }
    Ok(summary)
}

/// `POST /api/v1/admin/import`.
pub(super) async fn import_request(state: &AppState, body: Bytes) -> Result<Response<Body>, HttpError> {
    let summary = import(state, body).await?;
    Ok(json(crate::api::success(summary)))
}

/// The file in the data directory that says the start-up import was done (or decided
/// against), so that it happens once even if the node stops half-way through its start.
fn marker(storage: &Path) -> PathBuf {
    storage.join("persistence-file-imported")
}

/// Whether this node's start-up import of `--persistence.file` is still undecided. Until
/// it is, the node is not ready and holds the commands its clients send (pushes, deletes,
/// wipes; [`super::push::propose`]) for up to the propose timeout each: upstream loads its
/// file before it serves, so a push sent at start-up acts on the file's groups, and must
/// neither make the import skip the file nor be replaced by the file's older copy.
/// Released when the import task ends, whatever its end ([`ImportRelease`]).
#[derive(Clone, Debug)]
pub struct ImportHold(Option<watch::Receiver<bool>>);

/// Ends an [`ImportHold`] when dropped.
pub struct ImportRelease(watch::Sender<bool>);

impl Drop for ImportRelease {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

const HELD: &str = "importing --persistence.file (upstream's groups are loaded before any push)";

impl ImportHold {
    /// No import: nothing is held.
    pub fn none() -> Self {
        ImportHold(None)
    }

    /// A hold, and what ends it.
    pub fn new() -> (Self, ImportRelease) {
        let (tx, rx) = watch::channel(true);
        (ImportHold(Some(rx)), ImportRelease(tx))
    }

    fn pending(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Not ready while the import is undecided.
    pub fn check(&self) -> Result<(), HttpError> {
        if self.pending() {
            return Err(HttpError::NotReady(HELD.into()));
        }
        Ok(())
    }

    /// Waits up to `within` for the import to be decided; then not ready (503, nothing was
    /// proposed: retrying is safe).
    pub async fn wait(&self, within: std::time::Duration) -> Result<(), HttpError> {
        let Some(rx) = self.0.as_ref().filter(|_| self.pending()) else { return Ok(()) };
        let mut rx = rx.clone();
        // A closed channel was released first (`ImportRelease::drop`).
        let decided = tokio::time::timeout(within, async { rx.wait_for(|pending| !pending).await.is_ok() }).await;
        decided.map(|_| ()).map_err(|_| HttpError::NotReady(HELD.into()))
    }
}

/// At start-up, on the node that initializes the cluster (or a single node) and only once
/// per data directory: imports `--persistence.file` ([`import_at_start`]), holding this
/// node's client commands and readiness until it is decided ([`ImportHold`], set in `state`).
pub fn spawn_import_at_start(state: &mut AppState) {
    let config = state.config.clone();
    let file = config.persistence_file.clone();
    let storage = PathBuf::from(config.effective_storage_path());
    if file.is_empty() || marker(&storage).exists() {
        return;
    }
    let initializer = match config.initial_members() {
        Ok(members) if members.is_empty() => config.cluster_join.is_empty(),
        Ok(members) => members.keys().next() == Some(&config.cluster_node_id),
        Err(_) => false,
    };
    if !initializer {
        tracing::info!(file = %file, "--persistence.file is imported by the node that initializes the cluster (the lowest id of --cluster.initial-members), not by this one");
        return;
    }
    let (hold, release) = ImportHold::new();
    if let Some(pending) = &hold.0 {
        state.node.hold_forwarded_while(pending.clone());
    }
    state.import_hold = hold;
    tokio::spawn(import_at_start(state.clone(), release));
}

/// Imports `--persistence.file` (see [`spawn_import_at_start`]). This node holds its own
/// clients' commands meanwhile, and as leader (which the node that initialized a cluster
/// is at first) the batches other nodes forward ([`cluster::Node::hold_forwarded_while`]).
/// On a cluster this process initialized, a group already stored was pushed since
/// (through another node that led): it is newer than the file's copy, so it is kept and
/// the file's copy left out (logged), and the file's other groups are imported. After an
/// attempt that failed (it may have been applied all the same), or on any other start (a restart before the import was recorded, a node that lost its data and
/// rejoined) a store that holds groups is not the fresh one the file belongs in: nothing
/// is imported. The file is read and decoded before the store is
/// looked at, so that between that look and the import's commit only the proposal
/// passes. Logs what it did; a file that cannot be read is logged as an error and the
/// node goes on without it, as upstream goes on when its file cannot be loaded.
async fn import_at_start(state: AppState, release: ImportRelease) {
    let mut release = Some(release);
    // Whether an import was proposed and failed: it may have been applied all the same.
    let mut tried = false;
    let config = state.config.clone();
    let file = config.persistence_file.clone();
    let storage = PathBuf::from(config.effective_storage_path());
    let done = |what: &str| {
        if let Err(e) = std::fs::write(marker(&storage), what) {
            tracing::warn!(error = %e, "cannot record that --persistence.file was imported");
        }
    };
    let limits = config.push_limits();
    let path = file.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Option<Decoded>, String> {
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Ok(m) if m.len() > crate::import::MAX_FILE_BYTES as u64 => {
                return Err(format!("{} bytes, more than the {} imported", m.len(), crate::import::MAX_FILE_BYTES))
            }
            _ => {}
        }
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        decode(&bytes, &limits).map(Some).map_err(|e| e.to_string())
    })
    .await;
    let decoded = match read {
        Ok(Ok(Some(decoded))) => decoded,
        Ok(Ok(None)) => {
            tracing::info!(file = %file, "no persistence file to import");
            return done("no file\n");
        }
        Ok(Err(e)) => {
            tracing::error!(file = %file, error = %e, "could not import the persistence file");
            return done(&format!("failed: {e}\n"));
        }
        Err(e) => return tracing::warn!(error = %e, "reading the persistence file stopped"),
    };
    let started = std::time::Instant::now();
    let mut attempts = 0u32;
    loop {
        if attempts > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        attempts += 1;
        if state.node.wait_ready(std::time::Duration::from_secs(60)).await.is_err() {
            tracing::info!("waiting for the cluster to be ready before importing --persistence.file");
            continue;
        }
        let stored = |view: &model::StoreView| view.groups().map(|g| g.key.clone()).collect::<BTreeSet<GroupingKey>>();
        let Ok(stored) = super::scrape::render_view(&state, stored).await else { continue };
        if !stored.is_empty() && (tried || !state.node.initialized_here()) {
            tracing::warn!(file = %file, attempts, "--persistence.file not imported: the store holds groups (an attempt that timed out may have imported it; `pushgateway import` imports it again)");
            return done("skipped: the store held groups\n");
        }
        let (importing, kept) = decoded.without(&stored);
        for labels in &kept {
            tracing::warn!(labels = ?labels, "a group of the persistence file was not imported: it was pushed since this cluster started, which is newer");
        }
        match import_decoded(&state, &importing).await {
            Ok(summary) => {
                tracing::info!(
                    file = %file,
                    groups = summary.groups,
                    refused = summary.refused.len(),
                    pushed_since = kept.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "imported upstream's persistence file"
                );
                for r in &summary.refused {
                    tracing::error!(labels = ?r.labels, reason = %r.reason, "a group of the persistence file was not imported");
                }
                return done("imported\n");
            }
            Err(e) => {
                // Clients are held no longer: the retries keep what they push meanwhile.
                release.take();
                tried = true;
                tracing::warn!(error = %e, "importing --persistence.file failed; retrying")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_already_stored_are_left_out_of_the_file_by_their_key() {
        let file = include_bytes!("../import/testdata/upstream-1.5.1.gob");
        let decoded = decode(file, &PushLimits::CEILING).unwrap();
        let keys: Vec<GroupingKey> =
            decoded.0.iter().filter_map(|(_, p)| p.as_ref().ok()?.first().map(|p| p.key.clone())).collect();
        assert_eq!(keys.len(), 5);
        let job = |labels: &BTreeMap<String, String>| labels["job"].clone();

        let (all, none) = decoded.without(&BTreeSet::new());
        assert_eq!(all.0.len(), 5);
        assert!(none.is_empty());

        let stored: BTreeSet<GroupingKey> = keys.iter().filter(|k| k.job() == "batch").cloned().collect();
        let (rest, left) = decoded.without(&stored);
        assert_eq!(left.iter().map(job).collect::<Vec<_>>(), ["batch"]);
        assert_eq!(rest.0.len(), 4);
        assert!(rest.0.iter().all(|(labels, _)| job(labels) != "batch"));
    }
}
