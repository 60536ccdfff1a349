//! The peer listener: its routes call a [`PeerService`]. With a [`PeerSecret`], every
//! request must carry it, and the listener refuses (401, before decoding anything) a
//! request without it: a process that is not a member cannot append entries, vote,
//! install a snapshot, forward proposals or ask to join. The secret authenticates; it
//! does not encrypt: keep peer traffic on a private network.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AdminRequest, PeerSecret, PeerService, HEADER_TARGET, PATH_ADMIN, PATH_ADOPT, PATH_APPEND, PATH_IDENTITY,
    PATH_PRE_VOTE, PATH_PROPOSE, PATH_READ_INDEX, PATH_SNAPSHOT, PATH_STATUS, PATH_VERSION, PATH_VOTE,
};
use crate::codec;
use crate::config::NodeId;
use crate::identity::IdentityAnswer;
use crate::raft_types::{EncodedCommand, TypeConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn reply<T: Serialize>(value: &T) -> (StatusCode, Bytes) {
    match codec::encode(value) {
        Ok(b) => (StatusCode::OK, Bytes::from(b)),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::from(e.to_string())),
    }
}

fn request<T: DeserializeOwned>(body: &Bytes) -> Result<T, (StatusCode, Bytes)> {
    codec::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, Bytes::from(e.to_string())))
}

/// Decodes a request, runs `handle`, encodes its answer.
async fn serve<Req, Resp, Fut>(body: &Bytes, handle: impl FnOnce(Req) -> Fut) -> (StatusCode, Bytes)
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Fut: std::future::Future<Output = Resp>,
{
    match request::<Req>(body) {
        Ok(req) => reply(&handle(req).await),
        Err(e) => e,
    }
}

/// Refuses (409) a Raft RPC meant for another Raft id (see [`HEADER_TARGET`]) before it
/// is read; one without the header (an earlier build's) is taken.
async fn meant_for_me<S: PeerService>(State(node): State<S>, request: Request, next: Next) -> Response {
    let me = node.raft_id();
    let target = request.headers().get(HEADER_TARGET).map(|v| v.to_str().ok().and_then(|v| v.parse::<NodeId>().ok()));
    match target {
        None => next.run(request).await,
        Some(Some(target)) if target == me => next.run(request).await,
        Some(target) => {
            tracing::debug!(?target, me, "a Raft request meant for another incarnation refused");
            let message = format!("this node is {me}, not {target:?}: an earlier incarnation that lost its data\n");
            (StatusCode::CONFLICT, message).into_response()
        }
    }
}

async fn append<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: AppendEntriesRequest<TypeConfig>| async move { node.append_entries(req).await }).await
}

async fn vote<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: VoteRequest<NodeId>| async move { node.vote(req).await }).await
}

async fn pre_vote<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |request| async move { node.pre_vote(request) }).await
}

async fn snapshot<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: InstallSnapshotRequest<TypeConfig>| async move { node.install_snapshot(req).await }).await
}

async fn identity<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |(): ()| async move { node.identity().await }).await
}

async fn propose<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |commands: Vec<EncodedCommand>| async move { node.propose_forwarded(commands).await }).await
}

async fn read_index<S: PeerService>(State(node): State<S>) -> (StatusCode, Bytes) {
    reply(&node.read_index().await)
}

async fn admin<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: AdminRequest| async move { node.change_membership(req).await }).await
}

async fn version<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |(): ()| async move { node.supported_format() }).await
}

async fn node_status<S: PeerService>(State(node): State<S>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |(): ()| async move { node.node_status() }).await
}

/// Refuses a request without the secret before anything of it is read.
async fn authenticate(State(secret): State<Option<PeerSecret>>, request: Request, next: Next) -> Response {
    match secret {
        Some(secret) if !secret.admits(request.headers().get(header::AUTHORIZATION)) => {
            tracing::warn!(path = %request.uri().path(), "peer request without the cluster secret refused");
            (StatusCode::UNAUTHORIZED, "peer request without the cluster secret\n").into_response()
        }
        _ => next.run(request).await,
    }
}

/// The largest body of the routes that carry entries, snapshot chunks or forwarded
/// commands (a batch of pushes, each up to the push body limit, encoded).
pub const MAX_BULK_BODY: usize = 1024 * 1024 * 1024;
/// The largest body of the routes that carry a few numbers (votes, read index,
/// membership changes).
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// The peer listener's routes; with a secret, only requests that carry it reach them.
/// Every body is capped per route (413 beyond) and decoded with what it may claim bounded
/// by its size (`codec::decode`): a few bytes announcing a huge length are a 400.
pub fn peer_router<S: PeerService>(node: S, secret: Option<PeerSecret>) -> Router {
    let small = || DefaultBodyLimit::max(MAX_SMALL_BODY);
    Router::new()
        .route(PATH_APPEND, post(append::<S>))
        .route(PATH_VOTE, post(vote::<S>).layer(small()))
        .route(PATH_PRE_VOTE, post(pre_vote::<S>).layer(small()))
        .route(PATH_SNAPSHOT, post(snapshot::<S>))
        // Only the Raft RPCs above name their target.
        .route_layer(axum::middleware::from_fn_with_state(node.clone(), meant_for_me::<S>))
        .route(PATH_PROPOSE, post(propose::<S>))
        .route(PATH_READ_INDEX, post(read_index::<S>).layer(small()))
        .route(PATH_ADMIN, post(admin::<S>).layer(small()))
        .route(PATH_VERSION, post(version::<S>).layer(small()))
        .route(PATH_STATUS, post(node_status::<S>).layer(small()))
        .route(PATH_IDENTITY, post(identity::<S>).layer(small()))
        // A node past finding out its identity takes an adoption as long as it holds no
        // cluster, which is what its identity answer says.
        .route(PATH_ADOPT, post(identity::<S>).layer(small()))
        .layer(DefaultBodyLimit::max(MAX_BULK_BODY))
        .with_state(node)
        .layer(axum::middleware::from_fn_with_state(secret, authenticate))
}

/// The peer listener while the node finds out its identity ([`crate::identity`]): it
/// holds no cluster yet, says so on `/raft/identity`, takes an adoption on `/raft/adopt`
/// (setting `adopted`), and answers everything else 503. Served so that new members
/// starting together can hear from each other.
pub fn resolving_router(node: NodeId, secret: Option<PeerSecret>, adopted: Arc<AtomicBool>) -> Router {
    let answer = IdentityAnswer { raft_id: node, initialized: false, members: Default::default() };
    let adoption = answer.clone();
    Router::new()
        .route(
            PATH_IDENTITY,
            post(move |body: Bytes| async move { serve(&body, |(): ()| async move { answer }).await }),
        )
        .route(
            PATH_ADOPT,
            post(move |body: Bytes| async move {
                serve(&body, |(): ()| async move {
                    adopted.store(true, Ordering::SeqCst);
                    adoption
                })
                .await
            }),
        )
        .fallback(|| async { (StatusCode::SERVICE_UNAVAILABLE, "this node is finding out its identity\n") })
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY))
        .layer(axum::middleware::from_fn_with_state(secret, authenticate))
}
