//! The JSON API's handlers (`/api/v1/status`, `/api/v1/metrics`, `/api/v1/cluster`) and
//! the readiness check; the documents themselves are built in [`crate::api`].

use axum::body::Body;
use axum::http::{Response, StatusCode};

use super::answers::{json, plain};
use super::scrape::{mark_stale, render_view_marked};
use super::AppState;
use crate::error::HttpError;

/// This node's status, with the removals of several groups it applied (`removals`: the
/// last expiry and delete by match, at which log index; the same on every node) and how
/// long its Raft waited for its storage since it started (`storage`: log appends and
/// apply batches, their number and seconds).
fn cluster_json(state: &AppState) -> serde_json::Value {
    let mut status = serde_json::to_value(state.node.status()).unwrap_or_default();
    if let Some(o) = status.as_object_mut() {
        o.insert("removals".into(), serde_json::to_value(state.node.removals()).unwrap_or_default());
        o.insert("storage".into(), serde_json::to_value(state.node.storage_timings()).unwrap_or_default());
    }
    status
}

/// 200 once a leader is known and this node has applied its log (see `Node::ready`), and
/// its start-up import of `--persistence.file`, if any, is decided.
pub(super) async fn ready(state: &AppState) -> Result<Response<Body>, HttpError> {
    state.node.ready().map_err(HttpError::NotReady)?;
    state.import_hold.check()?;
    Ok(plain(StatusCode::OK, "OK"))
}

/// `GET /api/v1/status`.
pub(super) fn status(state: &AppState) -> Response<Body> {
    json(crate::api::status_document(&state.config.flag_map(), state.started, cluster_json(state)))
}

/// `GET /api/v1/metrics`.
pub(super) async fn metrics(state: &AppState) -> Result<Response<Body>, HttpError> {
    let default_ttl = state.config.default_ttl();
    let (document, stale) = render_view_marked(state, move |v| crate::api::metrics_document(v, default_ttl)).await?;
    let mut r = json(document);
    mark_stale(&mut r, stale);
    Ok(r)
}

/// `GET /api/v1/cluster`.
pub(super) fn cluster(state: &AppState) -> Response<Body> {
    json(serde_json::to_vec(&cluster_json(state)).unwrap_or_default())
}

/// `GET /api/v1/cluster/members`: every member with what it says about itself (asked
/// over the peer channel), or why it did not answer.
pub(super) async fn cluster_members(state: &AppState) -> Response<Body> {
    let members = state.node.members().await;
    json(crate::api::success(members))
}
