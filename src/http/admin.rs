//! The admin API: wipe (`--web.enable-admin-api`, as upstream), membership changes and
//! checkpoints (this server's additions, behind the same flag).

use axum::body::Body;
use axum::http::{Response, StatusCode};

use model::Command;

use super::answers::{empty, json, with_cors};
use super::push::propose;
use super::AppState;
use crate::error::HttpError;

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
    json(
        serde_json::to_vec(&serde_json::json!({ "status": "success", "data": { "members": members } }))
            .unwrap_or_default(),
    )
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
    state.node.checkpoint(req.path.clone().into()).await.map_err(HttpError::Admin)?;
    let answer = serde_json::json!({ "status": "success", "data": { "path": req.path } });
    Ok(json(serde_json::to_vec(&answer).unwrap_or_default()))
}

/// `PUT /api/v1/admin/wipe`: every group deleted, answered once applied.
pub(super) async fn wipe(state: &AppState) -> Result<Response<Body>, HttpError> {
    propose(state, Command::Wipe).await.map(|_| with_cors(empty(StatusCode::ACCEPTED)))
}
