//! The admin API: wipe (`--web.enable-admin-api`, as upstream), membership changes and
//! checkpoints (this server's additions, behind the same flag).

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Response, StatusCode};

use model::selector::Selector;
use model::{Command, Outcome};

use super::answers::{empty, json};
use super::push::{propose, wait_format};
use super::scrape::render_view;
use super::AppState;
use crate::error::HttpError;

/// `PUT /api/v1/admin/delete?match[]=<selector>…`: removes every group whose grouping
/// labels match any of the selectors (Prometheus's `{name op "value", …}`), in one log
/// entry, and answers how many it removed. With `dry_run=true`, removes nothing and lists
/// the groups it would remove (read consistently, as every read).
pub(super) async fn delete_matching(state: &AppState, query: Option<&str>) -> Result<Response<Body>, HttpError> {
    let (selectors, dry_run) = delete_query(query.unwrap_or(""))?;
    model::selector::compile(&selectors, model::selector::PROPOSE_REGEX_BYTES).map_err(HttpError::BadRequest)?;
    if dry_run {
        let listed = render_view(state, move |view| {
            let compiled = model::selector::compile(&selectors, model::selector::PROPOSE_REGEX_BYTES);
            let chosen: Vec<_> = match &compiled {
                Ok(c) => view.groups().filter(|g| c.matches(&g.key)).map(|g| g.key.labels().clone()).collect(),
                Err(_) => Vec::new(),
            };
            crate::api::success(serde_json::json!({ "dry_run": true, "groups": chosen.len(), "matched": chosen }))
        })
        .await?;
        return Ok(json(listed));
    }
    wait_format(state, model::version::V5, model::store::NEEDS_V5).await?;
    match propose(state, Command::DeleteMatching { selectors }).await? {
        Outcome::DeletedMatching { groups } => {
            Ok(json(crate::api::success(serde_json::json!({ "dry_run": false, "groups": groups }))))
        }
        Outcome::Rejected { reason } => Err(HttpError::BadRequest(reason)),
        other => Err(HttpError::Propose(cluster::ClusterError::Internal(format!("unexpected outcome {other:?}")))),
    }
}

/// The `match[]` selectors (at least one) and `dry_run` of a delete's query string.
fn delete_query(query: &str) -> Result<(Vec<Selector>, bool), HttpError> {
    let mut selectors = Vec::new();
    let mut dry_run = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| HttpError::BadRequest(format!("{s:?} is not UTF-8 once decoded")))
        };
        match decode(name)?.as_str() {
            "match[]" => selectors.push(model::selector::parse(&decode(value)?).map_err(HttpError::BadRequest)?),
            "dry_run" => {
                dry_run = match decode(value)?.as_str() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    other => return Err(HttpError::BadRequest(format!("dry_run={other:?}: give true or false"))),
                }
            }
            other => {
                return Err(HttpError::BadRequest(format!("unknown parameter {other:?}: give match[] and dry_run")))
            }
        }
    }
    if selectors.is_empty() {
        return Err(HttpError::BadRequest("give at least one match[] selector, e.g. match[]={job=\"a\"}".into()));
    }
    Ok((selectors, dry_run))
}

/// Body of `POST /api/v1/admin/cluster/add`.
#[derive(serde::Deserialize)]
struct AddMember {
    id: u64,
    address: String,
    #[serde(default)]
    learner_only: bool,
}

/// Body of `POST /api/v1/admin/cluster/remove`.
#[derive(serde::Deserialize)]
struct RemoveMember {
    id: u64,
}

/// Body of `POST /api/v1/admin/cluster/checkpoint`.
#[derive(serde::Deserialize)]
struct CheckpointRequest {
    path: String,
}

fn members_json(members: std::collections::BTreeMap<u64, String>) -> Response<Body> {
    json(crate::api::success(serde_json::json!({ "members": members })))
}

pub(super) async fn cluster_add(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: AddMember = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok(members_json(state.node.add_member(req.id, req.address, req.learner_only).await.map_err(HttpError::Admin)?))
}

pub(super) async fn cluster_remove(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: RemoveMember = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok(members_json(state.node.remove_member(req.id).await.map_err(HttpError::Admin)?))
}

pub(super) async fn cluster_checkpoint(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: CheckpointRequest = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let path = confined(&state.config.storage_checkpoint_dir, &req.path)?;
    state.node.checkpoint(path.clone()).await.map_err(HttpError::Admin)?;
    Ok(json(crate::api::success(serde_json::json!({ "path": path.display().to_string() }))))
}

/// The directory a checkpoint may be written to: `requested` (relative to `dir`, or
/// absolute) must name a new entry of `dir` or of a directory below it, symbolic links
/// resolved, and contain no `..`. An admin call can then never write the database over
/// a path the operator did not set aside (`--storage.checkpoint-dir`; empty: no
/// checkpoints).
fn confined(dir: &str, requested: &str) -> Result<PathBuf, HttpError> {
    use std::path::{Component, Path};
    let refuse = |why: String| Err(HttpError::BadRequest(format!("checkpoint path {requested:?}: {why}")));
    if dir.is_empty() {
        return refuse("checkpoints are off: start the node with --storage.checkpoint-dir=<directory>".into());
    }
    let wanted = Path::new(requested);
    if requested.is_empty() || wanted.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return refuse("must be a plain path without '.' or '..'".into());
    }
    let root = std::fs::canonicalize(dir)
        .map_err(|e| HttpError::BadRequest(format!("--storage.checkpoint-dir {dir:?}: {e}")))?;
    let target = if wanted.is_absolute() { wanted.to_path_buf() } else { Path::new(dir).join(wanted) };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return refuse("names no directory".into());
    };
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) => return refuse(format!("{}: {e}", parent.display())),
    };
    if !parent.starts_with(&root) {
        return refuse(format!("outside --storage.checkpoint-dir ({})", root.display()));
    }
    Ok(parent.join(name))
}

/// `PUT /api/v1/admin/wipe`: every group deleted, answered once applied.
pub(super) async fn wipe(state: &AppState) -> Result<Response<Body>, HttpError> {
    propose(state, Command::Wipe).await.map(|_| empty(StatusCode::ACCEPTED))
}
