//! The client side of peer traffic: one shared `reqwest` client with TCP_NODELAY, and
//! openraft's network on top of it. A connection that cannot be made maps to
//! `Unreachable` (openraft backs off); anything else to a network error.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{PeerSecret, HEADER_TARGET, PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::codec;
use crate::config::NodeId;
use crate::raft_types::{PeerNode, RaftError, RpcError, TypeConfig};

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
    /// Answered with a status other than 200 (404: a route an older build lacks).
    #[error("peer {0} answered with status {1}")]
    Status(String, u16),
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
        self.call_to(addr, None, path, request, timeout).await
    }

    /// [`PeerClient::call`], naming the Raft id the request is meant for (Raft RPCs).
    pub async fn call_to<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        target: Option<NodeId>,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = codec::encode(request).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))?;
        let mut post = self.http.post(format!("http://{addr}{path}")).timeout(timeout).body(body);
        if let Some(target) = target {
            post = post.header(HEADER_TARGET, target);
        }
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
            return Err(PeerError::Status(addr.into(), response.status().as_u16()));
        }
        let bytes = response.bytes().await.map_err(|e| PeerError::NoAnswer(addr.into(), e.to_string()))?;
        codec::decode(&bytes).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))
    }
}

/// Creates per-target RPC clients; never connects by itself.
#[derive(Clone)]
pub struct NetworkFactory {
    pub(crate) client: PeerClient,
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
        let answer: Result<Resp, RaftError<E>> = self
            .client
            .call_to(&self.addr, Some(self.target), path, &req, option.hard_ttl())
            .await
            .map_err(|e| match e {
                // 409: the address serves another incarnation now (see HEADER_TARGET): as
                // good as unreachable, so that openraft backs off instead of retrying at once.
                PeerError::Unreachable(..) | PeerError::Status(_, 409) => RpcError::Unreachable(Unreachable::new(&e)),
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
