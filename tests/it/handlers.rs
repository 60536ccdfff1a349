//! The router driven in-process (`router(state).oneshot(request)`), no socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use tower::ServiceExt;

use cluster::{ClusterConfig, Node};
use pushgateway::config::Config;
use pushgateway::http::{router, AppState};

/// A router over a fresh one-member cluster in a temporary directory.
async fn app(args: &[&str]) -> (axum::Router, tempfile::TempDir) {
    let mut argv = vec!["pushgateway"];
    argv.extend_from_slice(args);
    let config = Config::parse_from(argv);
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(ClusterConfig::single(dir.path().join("data")), None).await.unwrap();
    node.wait_ready(std::time::Duration::from_secs(30)).await.unwrap();
    (router(AppState::new(config, node)), dir)
}

async fn call(app: &axum::Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder().method(method).uri(path).body(Body::from(body.to_string())).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn status_codes_as_upstream() {
    let (app, _dir) = app(&["--web.enable-admin-api"]).await;
    let cases: &[(&str, &str, &str, &str, StatusCode, &str)] = &[
        ("push", "PUT", "/metrics/job/a", "m 1\n", StatusCode::OK, ""),
        ("post", "POST", "/metrics/job/a", "n 1\n", StatusCode::OK, ""),
        (
            "inconsistent",
            "PUT",
            "/metrics/job/b",
            "# TYPE m counter\nm 1\n",
            StatusCode::BAD_REQUEST,
            "pushed metrics are invalid or inconsistent with existing metrics: ",
        ),
        (
            "timestamp",
            "PUT",
            "/metrics/job/c",
            "m 1 5\n",
            StatusCode::BAD_REQUEST,
            "pushed metrics must not have timestamps",
        ),
        ("empty job", "PUT", "/metrics/job@base64/=", "m 1\n", StatusCode::BAD_REQUEST, "job name is required\n"),
        ("delete", "DELETE", "/metrics/job/a", "", StatusCode::ACCEPTED, ""),
        ("wipe", "PUT", "/api/v1/admin/wipe", "", StatusCode::ACCEPTED, ""),
        ("unknown", "GET", "/nope", "", StatusCode::NOT_FOUND, "404 page not found\n"),
        ("head", "HEAD", "/metrics", "", StatusCode::METHOD_NOT_ALLOWED, ""),
        ("quit off", "POST", "/-/quit", "", StatusCode::FORBIDDEN, "Lifecycle API is not enabled."),
        ("healthy", "GET", "/-/healthy", "", StatusCode::OK, "OK"),
        ("ready", "GET", "/-/ready", "", StatusCode::OK, "OK"),
        ("page", "GET", "/", "", StatusCode::OK, "<!DOCTYPE html>"),
    ];
    for (name, method, path, body, status, prefix) in cases {
        let (got, text) = call(&app, method, path, body).await;
        assert_eq!(got, *status, "case {name}: {text}");
        assert!(text.starts_with(prefix) || text.contains(prefix), "case {name}: {text:?}");
    }
}

#[tokio::test]
async fn unchecked_pushes_answer_202_and_never_break_scrapes() {
    let (app, _dir) = app(&["--push.disable-consistency-check"]).await;
    assert_eq!(call(&app, "PUT", "/metrics/job/b", "m 1\nm 2\n").await.0, StatusCode::ACCEPTED);
    let (status, body) = call(&app, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("push_failure_time_seconds{instance=\"\",job=\"b\"} 1."), "{body}");
    assert!(!body.contains("m{instance"), "{body}");
}
