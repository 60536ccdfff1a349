//! Peer traffic: the Raft RPCs and the calls a follower makes to the leader (forwarded
//! proposals, read index, membership changes), over HTTP with bincode bodies on a
//! listener owned by this crate (like etcd's peer port beside its client port).
//!
//! One shared `reqwest` client with TCP_NODELAY. A connection that cannot be made maps
//! to `Unreachable` (openraft backs off); anything else to a network error.
//!
//! With a [`PeerSecret`], every request carries it and the listener refuses (401,
//! before decoding anything) a request without it: a process that is not a member cannot
//! append entries, vote, install a snapshot, forward proposals or ask to join. The
//! secret authenticates; it does not encrypt: keep peer traffic on a private network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::command::Outcome;
use crate::node::{AdminError, Node, ProposeError};
use crate::raft_types::{EncodedCommand, NodeId, PeerNode, RaftError, RpcError, TypeConfig};

pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub const PATH_PROPOSE: &str = "/raft/propose";
pub const PATH_READ_INDEX: &str = "/raft/read-index";
pub const PATH_ADMIN: &str = "/raft/admin";

/// A membership change asked of the leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Add `id` at `addr`: as a learner, then (unless `learner_only`) as a voter.
    Add { id: NodeId, addr: String, learner_only: bool },
    /// Remove `id` from the cluster.
    Remove { id: NodeId },
}

/// Why a peer call failed, from the caller's point of view.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// No connection could be made: the request was not delivered.
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    /// Sent, but no complete answer (timeout, broken connection): outcome unknown.
    #[error("peer {0} did not answer: {1}")]
    NoAnswer(String, String),
    #[error("peer {0} answered badly: {1}")]
    Bad(String, String),
}

/// The secret shared by the members, sent as `Authorization: Bearer <secret>`.
#[derive(Clone)]
pub struct PeerSecret(Arc<str>);

impl PeerSecret {
    pub fn new(secret: String) -> Self {
        PeerSecret(secret.into())
    }

    fn header(&self) -> Option<HeaderValue> {
        HeaderValue::try_from(format!("Bearer {}", self.0)).ok()
    }

    /// Whether an `Authorization` header carries the secret; compares in time that does
    /// not depend on where the first difference is.
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(given) = header.and_then(|h| h.as_bytes().strip_prefix(b"Bearer ")) else {
            return false;
        };
        let expected = self.0.as_bytes();
        given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The shared HTTP client for peer traffic.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: Option<HeaderValue>,
}

impl PeerClient {
    pub fn new(secret: Option<PeerSecret>) -> Self {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client without TLS always builds");
        let secret = secret.and_then(|s| s.header()).map(|mut h| {
            h.set_sensitive(true);
            h
        });
        PeerClient { http, secret }
    }

    /// POSTs a bincode body and decodes a bincode answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = codec::encode(request).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))?;
        let mut post = self.http.post(format!("http://{addr}{path}")).timeout(timeout).body(body);
        if let Some(secret) = &self.secret {
            post = post.header(header::AUTHORIZATION, secret.clone());
        }
        let response = post.send().await.map_err(|e| {
            if e.is_connect() {
                PeerError::Unreachable(addr.into(), e.to_string())
            } else {
                PeerError::NoAnswer(addr.into(), e.to_string())
            }
        })?;
        if response.status() == StatusCode::UNAUTHORIZED {
            tracing::error!(peer = addr, "peer refused this node's --cluster.secret-file");
        }
        if response.status() != StatusCode::OK {
            return Err(PeerError::Bad(addr.into(), format!("status {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| PeerError::NoAnswer(addr.into(), e.to_string()))?;
        codec::decode(&bytes).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))
    }
}

/// Creates per-target RPC clients; never connects by itself.
#[derive(Clone)]
pub struct NetworkFactory {
    pub client: PeerClient,
}

/// RPCs to one peer.
pub struct PeerConnection {
    client: PeerClient,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Self::Network {
        PeerConnection { client: self.client.clone(), target, addr: node.addr.clone() }
    }
}

impl PeerConnection {
    async fn rpc<Req, Resp, E>(&self, path: &str, req: Req, option: RPCOption) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<E>> =
            self.client.call(&self.addr, path, &req, option.hard_ttl()).await.map_err(|e| match e {
                PeerError::Unreachable(..) => RpcError::Unreachable(Unreachable::new(&e)),
                _ => RpcError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RpcError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        self.rpc(PATH_APPEND, req, option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        self.rpc(PATH_SNAPSHOT, req, option).await
    }

    async fn vote(&mut self, req: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcError> {
        self.rpc(PATH_VOTE, req, option).await
    }
}

/// A forwarded batch of commands and its answer.
pub type ProposeAnswer = Result<Vec<Outcome>, ProposeError>;
/// The leader's read index (the log index a consistent read must have applied).
pub type ReadIndexAnswer = Result<u64, String>;
pub type AdminAnswer = Result<BTreeMap<NodeId, String>, AdminError>;

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

async fn append(State(node): State<Node>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: AppendEntriesRequest<TypeConfig>| async move { node.raft().append_entries(req).await }).await
}

async fn vote(State(node): State<Node>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: VoteRequest<NodeId>| async move { node.raft().vote(req).await }).await
}

async fn snapshot(State(node): State<Node>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: InstallSnapshotRequest<TypeConfig>| async move { node.raft().install_snapshot(req).await }).await
}

async fn propose(State(node): State<Node>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |commands: Vec<EncodedCommand>| async move { node.propose_forwarded(commands).await }).await
}

async fn read_index(State(node): State<Node>) -> (StatusCode, Bytes) {
    let answer: ReadIndexAnswer = node.leader_read_index().await;
    reply(&answer)
}

async fn admin(State(node): State<Node>, body: Bytes) -> (StatusCode, Bytes) {
    serve(&body, |req: AdminRequest| async move { node.admin_as_leader(req).await }).await
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

/// The peer listener's routes; with a secret, only requests that carry it reach them.
pub fn peer_router(node: Node, secret: Option<PeerSecret>) -> Router {
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .route(PATH_PROPOSE, post(propose))
        .route(PATH_READ_INDEX, post(read_index))
        .route(PATH_ADMIN, post(admin))
        .layer(DefaultBodyLimit::disable())
        .with_state(node)
        .layer(axum::middleware::from_fn_with_state(secret, authenticate))
}
