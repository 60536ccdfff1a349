//! The client side of peer traffic: HTTP/1.1 over kept-alive TCP connections (TCP_NODELAY),
//! and openraft's network on top of it. A connection that cannot be made maps to
//! `Unreachable` (openraft backs off); anything else to a network error.
//!
//! Made on hyper's connection API rather than a general HTTP client: a peer request is a
//! POST of bytes to a path of a known address, and the leader makes two per follower and
//! entry, so what a general client adds to each (URL parsing, redirects, its pool's
//! machinery) was a fifth to a third of the leader's own CPU per entry
//! (bench/results/ab-entry-fixed-cost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::{timeout_at, Instant};

use super::{PeerSecret, HEADER_TARGET, PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::codec;
use crate::config::NodeId;
use crate::election::PeerLogs;
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

/// Idle connections kept per peer address: as many as requests to it ran at once
/// lately (one per Raft stream, a few forwarded batches), at most this many.
const IDLE_PER_PEER: usize = 8;
/// An idle connection older than this is closed rather than used: well before the peer
/// listener's own 30 s (its header read timeout, which also ends idle connections), so
/// that a request rarely meets a connection the peer is closing.
const IDLE_FOR_AT_MOST: Duration = Duration::from_secs(20);

type Connection = SendRequest<Full<Bytes>>;
/// Idle connections by peer address, each with when it went idle.
type Idle = HashMap<String, Vec<(Connection, Instant)>>;

/// The shared HTTP client for peer traffic: kept-alive connections by peer address.
#[derive(Clone)]
pub struct PeerClient {
    idle: Arc<Mutex<Idle>>,
    secret: Option<HeaderValue>,
}

impl PeerClient {
    pub fn new(secret: Option<PeerSecret>) -> Self {
        let secret = secret.and_then(|s| s.header()).map(|mut h| {
            h.set_sensitive(true);
            h
        });
        PeerClient { idle: Arc::default(), secret }
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
        let deadline = Instant::now() + timeout;
        let body = codec::encode(request).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))?;
        let request = self.request(addr, target, path, body)?;
        let (connection, response) = self.send(addr, request, deadline).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            tracing::error!(peer = addr, "peer refused this node's --cluster.secret-file");
        }
        let status = response.status();
        let bytes = match timeout_at(deadline, response.into_body().collect()).await {
            Err(_) => return Err(PeerError::NoAnswer(addr.into(), "timed out reading the answer".into())),
            Ok(Err(e)) => return Err(PeerError::NoAnswer(addr.into(), e.to_string())),
            Ok(Ok(body)) => body.to_bytes(),
        };
        // The whole answer read: the connection can carry the next request.
        self.keep(addr, connection);
        if status != StatusCode::OK {
            return Err(PeerError::Status(addr.into(), status.as_u16()));
        }
        codec::decode(&bytes).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))
    }

    fn request(
        &self,
        addr: &str,
        target: Option<NodeId>,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, PeerError> {
        let mut request = Request::builder().method(Method::POST).uri(path).header(header::HOST, addr);
        if let Some(target) = target {
            request = request.header(HEADER_TARGET, target);
        }
        if let Some(secret) = &self.secret {
            request = request.header(header::AUTHORIZATION, secret.clone());
        }
        request.body(Full::new(Bytes::from(body))).map_err(|e| PeerError::Bad(addr.into(), e.to_string()))
    }

    /// Sends `request` on an idle connection to `addr`, else on a new one. A request
    /// that no connection took (closed while idle) goes on to the next, so only what
    /// was written to a connection can end as [`PeerError::NoAnswer`], and only a failed
    /// connect, before anything was written, as [`PeerError::Unreachable`].
    async fn send(
        &self,
        addr: &str,
        mut request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<(Connection, hyper::Response<hyper::body::Incoming>), PeerError> {
        let no_answer = |e: String| PeerError::NoAnswer(addr.into(), e);
        while let Some(mut connection) = self.take_idle(addr) {
            match attempt(&mut connection, request, deadline).await {
                Ok(response) => return Ok((connection, response)),
                Err(Attempt::Unsent(unsent, _)) => request = *unsent,
                Err(Attempt::NoAnswer(e)) => return Err(no_answer(e)),
            }
        }
        let unreachable = |e: String| PeerError::Unreachable(addr.into(), e);
        let stream = match timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await {
            Err(_) => return Err(unreachable("timed out connecting".into())),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        let (mut connection, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "a peer connection ended");
            }
        });
        match attempt(&mut connection, request, deadline).await {
            Ok(response) => Ok((connection, response)),
            // A new connection that took nothing of the request: as good as never made.
            Err(Attempt::Unsent(_, e)) => Err(unreachable(e)),
            Err(Attempt::NoAnswer(e)) => Err(no_answer(e)),
        }
    }

    /// The most recently kept idle connection to `addr` that is not too old.
    fn take_idle(&self, addr: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(addr)?;
        while let Some((connection, since)) = kept.pop() {
            if since.elapsed() <= IDLE_FOR_AT_MOST && !connection.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    fn keep(&self, addr: &str, connection: Connection) {
        if connection.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let Some(kept) = idle.get_mut(addr) else {
            idle.insert(addr.to_string(), vec![(connection, Instant::now())]);
            return;
        };
        kept.retain(|(c, since)| since.elapsed() <= IDLE_FOR_AT_MOST && !c.is_closed());
        if kept.len() < IDLE_PER_PEER {
            kept.push((connection, Instant::now()));
        }
    }
}

/// How a request on one connection failed.
enum Attempt {
    /// The connection took none of it (closed, or closing): the request comes back.
    Unsent(Box<Request<Full<Bytes>>>, String),
    /// No answer before the deadline: written at least in part (outcome unknown), or, when
    /// the connection was still not ready at the deadline, not written at all. The caller
    /// cannot tell the two apart and need not: the deadline has passed, so it sends nothing
    /// more either way, and "unknown" is the answer that is true of both.
    NoAnswer(String),
}

/// Sends `request` on `connection` once it is ready, by `deadline`.
async fn attempt(
    connection: &mut Connection,
    request: Request<Full<Bytes>>,
    deadline: Instant,
) -> Result<hyper::Response<hyper::body::Incoming>, Attempt> {
    match timeout_at(deadline, connection.ready()).await {
        Err(_) => return Err(Attempt::NoAnswer("timed out waiting for a connection".into())),
        Ok(Err(closed)) => return Err(Attempt::Unsent(Box::new(request), closed.to_string())),
        Ok(Ok(())) => {}
    }
    match timeout_at(deadline, connection.try_send_request(request)).await {
        Err(_) => Err(Attempt::NoAnswer("timed out".into())),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(mut e)) => match e.take_message() {
            Some(unsent) => Err(Attempt::Unsent(Box::new(unsent), e.into_error().to_string())),
            None => Err(Attempt::NoAnswer(e.into_error().to_string())),
        },
    }
}

/// Creates per-target RPC clients; never connects by itself.
#[derive(Clone)]
pub struct NetworkFactory {
    pub(crate) client: PeerClient,
    /// Where the answers to this node's vote requests go (the election gate reads them).
    pub(crate) peer_logs: PeerLogs,
}

/// RPCs to one peer.
pub struct PeerConnection {
    client: PeerClient,
    target: NodeId,
    addr: String,
    peer_logs: PeerLogs,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Self::Network {
        PeerConnection {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
            peer_logs: self.peer_logs.clone(),
        }
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
        let response: VoteResponse<NodeId> = self.rpc(PATH_VOTE, req, option).await?;
        self.peer_logs.record(self.target, response.last_log_id);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A peer on loopback answering a bincode `u32` with it plus one; counts the
    /// connections it accepted; with `one_per_connection`, closes each after its answer.
    async fn peer(one_per_connection: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let body = request.into_body().collect().await?.to_bytes();
                    let n: u32 = codec::decode(&body).unwrap();
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                        codec::encode(&(n + 1)).unwrap(),
                    ))))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(!one_per_connection)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(connection);
            }
        });
        (addr, accepted)
    }

    /// Requests one after another share one kept-alive connection; a peer that closes
    /// each connection after its answer still gets every request (on a new connection,
    /// none lost to the closed one).
    #[tokio::test]
    async fn requests_reuse_a_connection_and_survive_its_closing() {
        let client = PeerClient::new(None);
        let (addr, accepted) = peer(false).await;
        for n in 0..5u32 {
            let answer: u32 = client.call(&addr, "/x", &n, Duration::from_secs(5)).await.unwrap();
            assert_eq!(answer, n + 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for five requests");

        let (addr, accepted) = peer(true).await;
        for n in 0..5u32 {
            let answer: u32 = client.call(&addr, "/x", &n, Duration::from_secs(5)).await.unwrap();
            assert_eq!(answer, n + 1);
            // The peer's close reaches this side before the next request, or the request
            // finds the connection closed when it would write: either way a new one.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    /// Nothing listening: unreachable (certainly not delivered). A peer that takes the
    /// request and never answers: no answer (outcome unknown), at the timeout.
    #[tokio::test]
    async fn a_refused_connect_is_unreachable_and_a_silent_peer_no_answer() {
        let client = PeerClient::new(None);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let refused = client.call::<u32, u32>(&addr, "/x", &1, Duration::from_secs(5)).await;
        assert!(matches!(refused, Err(PeerError::Unreachable(..))), "{refused:?}");

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        let started = std::time::Instant::now();
        let unanswered = client.call::<u32, u32>(&addr, "/x", &1, Duration::from_millis(300)).await;
        assert!(matches!(unanswered, Err(PeerError::NoAnswer(..))), "{unanswered:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
