//! Serving HTTP/1.1 so that no client can hold a listener, for the web listeners and the
//! peer listener alike.
//!
//! `axum::serve` sets no timeouts and no connection limit: a client that opens
//! connections and sends nothing, sends a request head one byte at a time, or promises a
//! body and never sends it, holds a task and a file descriptor for as long as it likes.
//! [`serve`] bounds each stage:
//!
//! - **request head**: hyper's header read timeout, which runs from the moment the
//!   server waits for a head: on a new connection, and again after every answer on a
//!   kept-alive connection, so it is also the **idle timeout** between requests;
//! - **request body**: every wait for the next piece of a body is bounded; past the bound
//!   reading fails with [`BodyTimeout`] (the web side answers 408, then the connection
//!   closes);
//! - **connections**: at most [`Limits::max_connections`] at once per listener; one more
//!   is answered `503` with a message naming the flag and closed at once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a request head may take from when the server starts waiting for it
    /// (also how long a kept-alive connection may stay idle).
    pub header_read_timeout: Duration,
    /// The longest wait for the next piece of a request body.
    pub body_read_timeout: Duration,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// The flag that sets [`Limits::max_connections`], named in the refusal.
    pub max_connections_flag: &'static str,
}

/// How many refusals may be being written at once; beyond, an extra connection is
/// closed without an answer (a flood must not cost a task per connection).
const MAX_REFUSALS: usize = 64;
/// How long writing a refusal may take.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets
/// the connections finish their current request and waits for them.
pub async fn serve<L>(mut listener: L, router: axum::Router, limits: Limits, shutdown: impl Future<Output = ()>)
where
    L: axum::serve::Listener,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // `Listener::accept` retries failed accepts itself (out of descriptors and such).
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                let flag = limits.max_connections_flag;
                tokio::spawn(async move {
                    refuse(io, limits.max_connections, flag).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let router = router.clone();
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request: Request = request.map(|body| axum::body::Body::new(TimeoutBody::new(body, body_timeout)));
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|e| match e {})) }
        });
        // Half-closes: a client that shuts down its side once its request is sent still
        // gets the answer, as from Go's server (hyper would drop the connection unanswered
        // after serving the request).
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .half_close(true)
            .serve_connection(TokioIo::new(io), service);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            // (The guard `wait_for` returns is dropped inside: it must not live across an await.)
            let stop = async { stopping.wait_for(|stop| *stop).await.is_ok() };
            let finished = tokio::select! {
                result = connection.as_mut() => Some(result),
                _ = stop => None,
            };
            let result = match finished {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: having them all means all ended.
    let _ = connections.acquire_many(limits.max_connections as u32).await;
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse<Io: tokio::io::AsyncWrite + Unpin>(mut io: Io, max: usize, flag: &str) {
    let body = format!("too many open connections: this listener serves at most {max} at once (--{flag})\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        io.write_all(answer.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}

/// Reading a request body failed because the client sent nothing more for
/// [`Limits::body_read_timeout`].
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body stalled: nothing arrived for {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `error`, or an error it wraps, is a [`BodyTimeout`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A request body whose every wait for the next frame is bounded. The clock starts at
/// the first read, not when the head arrived, so a handler that reads the body late is
/// not penalized.
struct TimeoutBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl TimeoutBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        TimeoutBody { inner, timeout, sleep: None }
    }
}

impl Body for TimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(sleep) = this.sleep.as_mut() {
                    sleep.as_mut().reset(Instant::now() + this.timeout);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
