//! Each bound against a real socket: a client that stalls in the head, between requests
//! or in the body, and one connection too many. Waits are liveness bounds (generous
//! multiples of the configured timeouts), not speed measurements.

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, put};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const SHORT: Duration = Duration::from_millis(300);
/// How long a test waits for something the server must do "soon".
const PATIENCE: Duration = Duration::from_secs(10);

fn app() -> axum::Router {
    async fn read_all(request: Request) -> (StatusCode, String) {
        match axum::body::to_bytes(request.into_body(), usize::MAX).await {
            Ok(body) => (StatusCode::OK, format!("{} bytes\n", body.len())),
            Err(e) if is_body_timeout(&e) => (StatusCode::REQUEST_TIMEOUT, format!("{e}\n")),
            Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        }
    }
    axum::Router::new().route("/", get(|| async { "hello\n" })).route("/body", put(read_all)).route(
        "/slow",
        put(|| async {
            // As a push that waits for its log entry to commit.
            tokio::time::sleep(Duration::from_millis(100)).await;
            "slow\n"
        }),
    )
}

/// A server on a loopback port with `limits`; stops when the sender is dropped.
async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app(), limits, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

fn limits(max_connections: usize) -> Limits {
    Limits {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        max_connections,
        max_connections_flag: "web.max-connections",
    }
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let (addr, _stop) = start(limits(8)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(until_closed(&mut stream).await, "");
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_off() {
    let (addr, _stop) = start(limits(8)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\n";
    let started = Instant::now();
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = until_closed(&mut stream).await;
    assert!(!answer.contains("hello"), "{answer}");
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_idle() {
    let (addr, _stop) = start(limits(8)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("hello\n"), "{answer}");
}

/// A client that shuts down its side once its request is sent (`nc -N`, HTTP/1.0-era
/// clients) still gets the answer, as Go's server gives it.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_is_answered() {
    let (addr, _stop) = start(Limits { header_read_timeout: PATIENCE, ..limits(8) }).await;
    let requests = [
        &b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\na 1\n"[..],
        b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\na 1\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ];
    for request in requests {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.shutdown().await.unwrap();
        let answer = until_closed(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200 OK\r\n") && answer.ends_with("\n"),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_promised_body_that_never_comes_is_answered_408() {
    let (addr, _stop) = start(Limits { header_read_timeout: PATIENCE, ..limits(8) }).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("the request body stalled"), "{answer}");
}

#[tokio::test]
async fn a_body_that_keeps_coming_is_read_however_long_it_takes() {
    let (addr, _stop) = start(Limits { header_read_timeout: PATIENCE, ..limits(8) }).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"PUT /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n")
        .await
        .unwrap();
    // Ten pieces, 100 ms apart: a whole second, more than the timeout, but never a pause
    // as long as it.
    for _ in 0..10 {
        tokio::time::sleep(SHORT / 3).await;
        stream.write_all(b"x").await.unwrap();
    }
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("10 bytes\n"), "{answer}");
}

#[tokio::test]
async fn one_connection_too_many_is_refused_with_503_naming_the_flag() {
    let (addr, _stop) = start(Limits { header_read_timeout: PATIENCE, ..limits(2) }).await;
    let mut held = vec![TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
    // The server has accepted both once it answers a request on one of them.
    held[0].write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(PATIENCE, held[0].read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let mut third = TcpStream::connect(addr).await.unwrap();
    let answer = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("at most 2 at once (--web.max-connections)"), "{answer}");

    // Once one of them is gone, a new connection is served.
    drop(held.pop());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut next = TcpStream::connect(addr).await.unwrap();
        next.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = until_closed(&mut next).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_waits_for_the_request_in_progress_then_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(), Limits { header_read_timeout: PATIENCE, ..limits(8) }, async {
        let _ = rx.await;
    }));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tx.send(()).unwrap();
    stream.write_all(b"b").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("2 bytes\n"), "{answer}");
    tokio::time::timeout(PATIENCE, server).await.expect("serve returns").unwrap();
}
