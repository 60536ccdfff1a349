//! Importing upstream's persistence file: `POST /api/v1/admin/import` (the file as the
//! body, `pushgateway import FILE`), and once at start-up from `--persistence.file`.
//! Every group of the file becomes the pushes that rebuild it ([`crate::import`]), and
//! all of them are proposed as one log entry: every node gets the whole file, or none of
//! it. A group in the file replaces the stored group with the same grouping key (it is
//! deleted first); other groups are kept.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::Response;
use serde::Serialize;

use model::{Command, Outcome};

use super::answers::json;
use super::push::push_command;
use super::AppState;
use crate::error::HttpError;
use crate::import::{read_file, ImportError};

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    /// Groups of the file now stored.
    pub groups: usize,
    /// Commands the groups became (a delete and pushes per group; one log entry).
    pub commands: usize,
    /// Groups `apply` refused, with its reason (as it would refuse the same push).
    pub refused: Vec<RefusedGroup>,
}

#[derive(Debug, Serialize)]
pub struct RefusedGroup {
    pub labels: std::collections::BTreeMap<String, String>,
    pub reason: String,
}

/// Imports the groups of `file` (upstream's persistence file).
pub async fn import(state: &AppState, file: Bytes) -> Result<ImportSummary, HttpError> {
    let limits = state.config.push_limits();
    let decoded = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let mut groups = Vec::new();
        for group in read_file(&file)? {
            let pushes = group.pushes(&limits)?;
            groups.push((group.labels, pushes));
        }
        Ok(groups)
    })
    .await
    .map_err(|e| HttpError::NotReady(format!("shutting down: {e}")))?
    .map_err(|e| HttpError::BadRequest(e.to_string()))?;

    let time = super::now();
    let mut commands = Vec::new();
    let mut owners = Vec::new();
    for (index, (_, pushes)) in decoded.iter().enumerate() {
        let names = crate::import::FileGroup::names(pushes);
        // The stored group with the same key goes first: the group is then exactly the
        // file's, its creation time included (a push to a stored group keeps that).
        if let Some(first) = pushes.first() {
            commands.push(Command::Delete { key: first.key.clone() });
            owners.push(index);
        }
        for p in pushes {
            let (key, families, replace, defect) = (p.key.clone(), p.families.clone(), p.replace, p.defect.clone());
            // A time from the future would make the group look pushed later than now.
            let at = p.time.min(time);
            commands.push(push_command(state, names, key, families, replace, at, defect).await?);
            owners.push(index);
        }
    }
    let outcomes = state.node.propose_together(&commands).await.map_err(HttpError::Propose)?;
    let mut summary = ImportSummary { commands: commands.len(), ..Default::default() };
    let mut refused = vec![None; decoded.len()];
    for ((outcome, command), owner) in outcomes.iter().zip(&commands).zip(&owners) {
        let recorded_failure = match command {
            Command::Push { defect, .. } | Command::PushUtf8 { defect, .. } => defect.is_some(),
            _ => false,
        };
        if let Outcome::Rejected { reason } = outcome {
            if !recorded_failure && refused[*owner].is_none() {
                refused[*owner] = Some(reason.clone());
            }
        }
    }
    for ((labels, _), reason) in decoded.into_iter().zip(refused) {
        match reason {
            Some(reason) => summary.refused.push(RefusedGroup { labels, reason }),
            None => summary.groups += 1,
        }
    }
    Ok(summary)
}

/// `POST /api/v1/admin/import`.
pub(super) async fn import_request(state: &AppState, body: Bytes) -> Result<Response<Body>, HttpError> {
    let summary = import(state, body).await?;
    let answer = serde_json::json!({ "status": "success", "data": summary });
    Ok(json(serde_json::to_vec(&answer).unwrap_or_default()))
}

/// The file in the data directory that says the start-up import was done (or decided
/// against), so that it happens once even if the node stops half-way through its start.
fn marker(storage: &Path) -> PathBuf {
    storage.join("persistence-file-imported")
}

/// At start-up: imports `--persistence.file` once, on the node that initializes the
/// cluster (or a single node), into a store that holds no group yet. Logs what it did;
/// a file that cannot be read is logged as an error and the node goes on without it,
/// as upstream goes on when its file cannot be loaded.
pub async fn import_at_start(state: AppState) {
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
    let done = |what: &str| {
        if let Err(e) = std::fs::write(marker(&storage), what) {
            tracing::warn!(error = %e, "cannot record that --persistence.file was imported");
        }
    };
    let bytes = match std::fs::metadata(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %file, "no persistence file to import");
            return done("no file\n");
        }
        Ok(m) if m.len() > crate::import::MAX_FILE_BYTES as u64 => {
            tracing::error!(file = %file, bytes = m.len(), "persistence file not imported: larger than {} bytes", crate::import::MAX_FILE_BYTES);
            return;
        }
        _ => match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(file = %file, error = %e, "could not read the persistence file to import");
                return;
            }
        },
    };
    let started = std::time::Instant::now();
    loop {
        if state.node.wait_ready(std::time::Duration::from_secs(60)).await.is_err() {
            tracing::info!("waiting for the cluster to be ready before importing --persistence.file");
            continue;
        }
        let empty = match super::scrape::render_view(&state, |view| view.is_empty()).await {
            Ok(empty) => empty,
            Err(_) => continue,
        };
        if !empty {
            tracing::warn!(file = %file, "--persistence.file not imported: the store already holds groups (import it with `pushgateway import`)");
            return done("skipped: the store held groups\n");
        }
        match import(&state, Bytes::from(bytes.clone())).await {
            Ok(summary) => {
                tracing::info!(
                    file = %file,
                    groups = summary.groups,
                    refused = summary.refused.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "imported upstream's persistence file"
                );
                for r in &summary.refused {
                    tracing::error!(labels = ?r.labels, reason = %r.reason, "a group of the persistence file was refused");
                }
                return done("imported\n");
            }
            Err(HttpError::BadRequest(e)) => {
                tracing::error!(file = %file, error = %e, "could not import the persistence file");
                return done(&format!("failed: {e}\n"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "importing --persistence.file failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
