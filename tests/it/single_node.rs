//! One real server process: the whole request path, limits and lifecycle.

use std::io::Write;
use std::time::Duration;

use crate::harness::{signal, Server};

#[test]
fn push_is_exposed_in_text_and_json() {
    tracing_free_note("a push to a fresh server is visible in /metrics and /api/v1/metrics");
    let s = Server::start(&[]);
    let (status, body) = s.put(
        "/metrics/job/some_job/instance/some_instance",
        "# TYPE some_metric counter\nsome_metric{label=\"val1\"} 42\n",
    );
    assert_eq!((status, body.as_str()), (200, ""));
    let lines = s.pushed_lines();
    assert!(
        lines.contains(&"some_metric{instance=\"some_instance\",job=\"some_job\",label=\"val1\"} 42".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("push_time_seconds{instance=\"some_instance\",job=\"some_job\"} 1.")),
        "{lines:?}"
    );
    let (status, api) = s.get("/api/v1/metrics");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(doc["data"][0]["some_metric"]["metrics"][0]["value"], "42");
    assert_eq!(doc["data"][0]["last_push_successful"], true);

    // A bad body is refused with the line number and stores nothing.
    let (status, body) = s.put("/metrics/job/other", "m 1\nbad line\n");
    assert_eq!(status, 400);
    assert_eq!(body, "text format parsing error in line 2: expected float as value, got \"line\"\n");
    assert!(!s.pushed_lines().iter().any(|l| l.contains("job=\"other\"")));

    // DELETE answers 202 once the group is gone.
    let (status, _) = s.request("DELETE", "/metrics/job/some_job/instance/some_instance", &[], vec![]);
    assert_eq!(status, 202);
    assert!(s.pushed_lines().is_empty());
}

fn tracing_free_note(what: &str) {
    eprintln!("test: {what}");
}

#[test]
fn oversized_bodies_get_413_and_store_nothing() {
    tracing_free_note("bodies over --push.max-body-bytes are refused, compressed or not");
    let s = Server::start(&["--push.max-body-bytes=4096"]);
    let big = format!("# {}\nm 1\n", "x".repeat(5000));
    assert_eq!(s.put("/metrics/job/big", &big).0, 413);
    // A gzip body that is small on the wire but inflates past the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(format!("# {}\nm 1\n", " ".repeat(1 << 20)).as_bytes()).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4096);
    let (status, _) = s.request("PUT", "/metrics/job/bomb", &[("Content-Encoding", "gzip")], bomb);
    assert_eq!(status, 413);
    // Within the limit, gzip works.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"gm 1\n").unwrap();
    let (status, _) = s.request("PUT", "/metrics/job/g", &[("Content-Encoding", "gzip")], gz.finish().unwrap());
    assert_eq!(status, 200);
    let lines = s.pushed_lines();
    assert!(lines.contains(&"gm{instance=\"\",job=\"g\"} 1".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("job=\"big\"") || l.contains("job=\"bomb\"")));
}

#[test]
fn sigterm_stops_gracefully() {
    tracing_free_note("SIGTERM ends the process with status 0");
    let mut s = Server::start(&[]);
    signal(s.pid(), "TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn quit_endpoint_follows_the_lifecycle_flag() {
    tracing_free_note("/-/quit is refused without --web.enable-lifecycle and stops the server with it");
    let s = Server::start(&[]);
    assert_eq!(s.put("/-/quit", ""), (403, "Lifecycle API is not enabled.".to_string()));
    let mut s = Server::start(&["--web.enable-lifecycle"]);
    assert_eq!(s.put("/-/quit", ""), (200, "Requesting termination... Goodbye!".to_string()));
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn bad_flags_exit_with_2() {
    tracing_free_note("unsupported flag values stop start-up with exit code 2");
    for args in [&["--log.level=verbose"][..], &["--no-such-flag"][..]] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn flags_come_from_the_environment_too() {
    tracing_free_note("PUSHGATEWAY_WEB_TELEMETRY_PATH moves the scrape endpoint");
    let s = Server::start_with_env(&[], &[("PUSHGATEWAY_WEB_TELEMETRY_PATH", "/custom")]);
    assert_eq!(s.get("/custom").0, 200);
    assert_eq!(s.get("/metrics").0, 404);
}

/// `--web.systemd-socket`: the web listener is the socket systemd passes (descriptor 3,
/// `LISTEN_FDS`, `LISTEN_PID`), run here by systemd's own `systemd-socket-activate`; the
/// node serves pushes on it, and without the protocol's variables it refuses to start.
#[test]
fn socket_activation_serves_on_the_socket_systemd_passes() {
    let port = testkit::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_pushgateway");
    let spec = testkit::Spec::new("systemd-socket-activate")
        .args(["-l", &format!("127.0.0.1:{port}"), binary, "--web.systemd-socket"])
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .label("socket-activated");
    let mut activated = testkit::Process::start(spec).unwrap();
    activated
        .wait_for_line(Duration::from_secs(30), "systemd-socket-activate listening", |l| {
            l.contains("Listening on").then_some(())
        })
        .unwrap();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // systemd-socket-activate starts the server on the first connection, which it hands over.
    let answer = http.put(format!("{base}/metrics/job/activated")).body("activated 1\n").send().unwrap();
    assert_eq!(answer.status(), 200);
    let scrape = http.get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    assert!(scrape.contains("activated{instance=\"\",job=\"activated\"} 1"), "{scrape}");
    activated.kill();

    let refused = std::process::Command::new(binary)
        .arg("--web.systemd-socket")
        .arg(format!("--storage.path={}", dir.path().join("other").display()))
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("LISTEN_PID is not set"), "{said}");
}

/// `--log.format=logfmt` (the default) writes what upstream 1.11's slog text handler
/// writes: `time=… level=INFO source=file:line msg=… key=value`.
#[test]
fn logs_are_logfmt_as_upstream_writes_them() {
    let server = Server::start(&[]);
    let log = server.log();
    let line = log.lines().find(|l| l.contains(" msg=listening")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("time=20") && line.contains(" level=INFO source=main.rs:"), "{line}");
    assert!(line.contains(" address=127.0.0.1:"), "{line}");
    assert!(log.lines().any(|l| l.contains(" msg=\"node started\" ")), "a message with a space is quoted: {log}");
}

/// The headers upstream sends, request by request, side by side with upstream itself: CORS
/// and Cache-Control on exactly the API routes that carry them (1.5.1 and 1.11 send the
/// same fixed values), `Allow` on OPTIONS and 405, the content types, `nosniff` on errors.
#[test]
fn headers_as_upstream_sends_them() {
    let ours = Server::start(&["--web.enable-admin-api"]);
    let (_upstream, reference) = crate::harness::upstream(&["--web.enable-admin-api"]);
    let http = reqwest::blocking::Client::new();
    const COMPARED: &[&str] = &[
        "access-control-allow-headers",
        "access-control-allow-methods",
        "access-control-allow-origin",
        "access-control-expose-headers",
        "allow",
        "cache-control",
        "content-type",
        "location",
        "vary",
        "x-content-type-options",
    ];
    let requests: &[(&str, &str, &str)] = &[
        ("GET", "/api/v1/status", ""),
        ("GET", "/api/v1/metrics", ""),
        ("OPTIONS", "/api/v1/metrics", ""),
        ("OPTIONS", "/api/v1/anything/below", ""),
        ("GET", "/api/v1/nope", ""),
        ("DELETE", "/api/v1/metrics", ""),
        ("PUT", "/api/v1/admin/wipe", ""),
        ("OPTIONS", "/metrics", ""),
        ("OPTIONS", "/metrics/job/x", ""),
        ("HEAD", "/metrics", ""),
        ("PUT", "/metrics/job/x", "m 1\n"),
        ("PUT", "/metrics/job/x", "m{ 1\n"),
        ("DELETE", "/metrics/job/x", ""),
        ("GET", "/metrics", ""),
        ("GET", "/-/healthy", ""),
        ("GET", "/-/ready", ""),
        ("GET", "/static/functions.js", ""),
        ("GET", "/static/prometheus.css", ""),
        ("GET", "/static/nope.js", ""),
        ("GET", "/nope", ""),
        ("GET", "/", ""),
        ("GET", "/status", ""),
    ];
    let mut differences = Vec::new();
    for (method, path, body) in requests {
        let seen = |base: &str| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let answer = http
                .request(method, format!("{base}{path}"))
                .header("origin", "http://example.test")
                .body(body.to_string())
                .send()
                .unwrap();
            let headers: Vec<(String, String)> = COMPARED
                .iter()
                .filter_map(|name| {
                    answer.headers().get(*name).map(|v| (name.to_string(), v.to_str().unwrap().to_string()))
                })
                .collect();
            (answer.status().as_u16(), headers)
        };
        let (a, b) = (seen(&ours.base), seen(&reference));
        if a != b {
            differences.push(format!("{method} {path}:\n  this server: {a:?}\n  upstream:    {b:?}"));
        }
    }
    assert!(differences.is_empty(), "answers differ from upstream's:\n{}", differences.join("\n"));
}
