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

/// `/api/v1/cluster` counts each log append and apply batch with the time Raft waited
/// for it: a push adds at least one of each, and time to both.
#[test]
fn cluster_status_counts_the_storage_time_of_each_push() {
    let s = Server::start(&[]);
    let storage = || -> serde_json::Value {
        let (status, body) = s.get("/api/v1/cluster");
        assert_eq!(status, 200);
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["storage"].clone()
    };
    let before = storage();
    for i in 0..3 {
        assert_eq!(s.put(&format!("/metrics/job/j{i}"), "m 1\n").0, 200);
    }
    let after = storage();
    let grew = |field: &str| after[field].as_f64().unwrap() - before[field].as_f64().unwrap();
    for field in ["log_appends", "apply_batches", "applied_entries"] {
        assert!(grew(field) >= 3.0, "{field}: {before} then {after}");
    }
    for field in ["log_append_seconds", "apply_seconds"] {
        assert!(grew(field) > 0.0, "{field}: {before} then {after}");
    }
    assert!(after["applied_entries"].as_u64() >= after["apply_batches"].as_u64(), "{after}");
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

/// Upstream 1.5.1 exits 1 for a value its flag parser refuses and 2 when its router
/// panics at the routes the flags make; `--help` and `--version` exit 0.
#[test]
fn bad_flags_exit_with_upstreams_codes() {
    tracing_free_note("refused flag values stop start-up with upstream's exit codes");
    for (args, code) in [
        (&["--log.level=verbose"][..], 1),
        (&["--no-such-flag"][..], 1),
        (&["--web.enable-lifecycle=maybe"][..], 1),
        (&["--web.external-url=:bad"][..], 1),
        (&["--web.telemetry-path=metrics"][..], 2),
        (&["--web.route-prefix=/a*b"][..], 2),
        (&["--help"][..], 0),
        (&["--version"][..], 0),
    ] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}");
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

/// `--log.format=logfmt` (the default) writes what upstream 1.11 writes (slog's text
/// handler in promslog's go-kit style): `ts=… level=info caller=file:line msg=… key=value`.
#[test]
fn logs_are_logfmt_as_upstream_writes_them() {
    let server = Server::start(&[]);
    let log = server.log();
    let line = log.lines().find(|l| l.contains(" msg=listening")).unwrap_or_else(|| panic!("{log}"));
    // The harness runs servers at --log.level=debug, where the caller names its module
    // (upstream: its function) too.
    assert!(line.starts_with("ts=20") && line.contains(" level=info caller=main.rs(pushgateway):"), "{line}");
    let ts = line.split(' ').next().unwrap();
    assert_eq!(ts.len(), "ts=2026-01-02T03:04:05.678Z".len(), "milliseconds, UTC: {ts}");
    assert!(line.contains(" address=127.0.0.1:"), "{line}");
    assert!(log.lines().any(|l| l.contains(" msg=\"node started\" ")), "a message with a space is quoted: {log}");
}

/// At the default `--log.level=info` a node says what an operator needs (listening, started,
/// the leader) and none of openraft's own `info` lines, which at start-up alone are about
/// twenty and under load several a second (snapshots, purges); at `debug` they show.
#[test]
fn info_logs_leave_out_openrafts_chatter() {
    // RUST_LOG empty: the filter is --log.level's (the harness sets RUST_LOG otherwise).
    let server = Server::start_with_env(&["--log.level=info"], &[("RUST_LOG", "")]);
    assert_eq!(server.put("/metrics/job/j", "m 1\n").0, 200);
    server.wait_for(Duration::from_secs(20), "the new leader logged", || server.log().contains("a leader was elected"));
    let log = server.log();
    for ours in
        [" msg=listening ", " msg=\"node started\" ", " msg=\"a leader was elected\" leader=1 term=1 this_node=true"]
    {
        assert!(log.contains(ours), "{ours:?} missing: {log}");
    }
    for openraft in ["startup done", "become leader", "get_initial_state", "vote is changing"] {
        assert!(!log.contains(openraft), "{openraft:?} at info: {log}");
    }
    assert!(log.lines().all(|l| l.contains(" level=info ") || l.contains(" level=warn ")), "{log}");

    let debug = Server::start_with_env(&["--log.level=debug"], &[("RUST_LOG", "")]);
    debug.wait_for(Duration::from_secs(20), "openraft's info at debug", || debug.log().contains("become leader"));
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

/// `--push.enable-utf8-names` as upstream 1.11 has it: a `U__`-escaped grouping label
/// name and quoted names in a text push, scrapes escaping names as `Accept` asks and
/// saying so in `Content-Type`; without the flag, 1.5.1's answers.
#[test]
fn utf8_names_with_the_flag_and_1_5_1_without() {
    let s = Server::start(&["--push.enable-utf8-names"]);
    let http = reqwest::blocking::Client::new();
    let pushed = http
        .put(format!("{}/metrics/job/demo/U__host_2e_name/h1", s.base))
        .body("{\"http.requests\",\"method.name\"=\"GET\"} 5\n")
        .send()
        .unwrap();
    assert_eq!(pushed.status(), 200, "{}", pushed.text().unwrap());
    let scrape = |accept: Option<&str>| {
        let mut request = http.get(format!("{}/metrics", s.base));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let answer = request.send().unwrap();
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_string();
        let body = answer.text().unwrap();
        let line = body.lines().find(|l| l.contains("\"GET\"")).unwrap_or_default().to_string();
        let type_line =
            body.lines().find(|l| l.starts_with("# TYPE") && l.contains("requests")).unwrap_or_default().to_string();
        (content_type, type_line, line)
    };
    let text = "text/plain; version=0.0.4; charset=utf-8";
    assert_eq!(
        scrape(None),
        (
            format!("{text}; escaping=underscores"),
            "# TYPE http_requests untyped".to_string(),
            "http_requests{host_name=\"h1\",instance=\"\",job=\"demo\",method_name=\"GET\"} 5".to_string()
        )
    );
    assert_eq!(
        scrape(Some("text/plain;version=0.0.4;escaping=allow-utf-8")),
        (
            format!("{text}; escaping=allow-utf-8"),
            "# TYPE \"http.requests\" untyped".to_string(),
            "{\"http.requests\",\"host.name\"=\"h1\",instance=\"\",job=\"demo\",\"method.name\"=\"GET\"} 5".to_string()
        )
    );
    assert_eq!(
        scrape(Some("text/plain;escaping=dots")).2,
        "http_dot_requests{host_dot_name=\"h1\",instance=\"\",job=\"demo\",method_dot_name=\"GET\"} 5"
    );
    assert_eq!(
        scrape(Some("text/plain;escaping=values")).2,
        "U__http_2e_requests{U__host_2e_name=\"h1\",instance=\"\",job=\"demo\",U__method_2e_name=\"GET\"} 5"
    );
    let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    let answer = http
        .get(format!("{}/metrics", s.base))
        .header("accept", format!("{protobuf};escaping=allow-utf-8"))
        .send()
        .unwrap();
    assert_eq!(
        answer.headers()["content-type"],
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8"
    );
    let body = answer.bytes().unwrap();
    assert!(body.windows(13).any(|w| w == b"http.requests"), "raw names in protobuf with allow-utf-8");
    let (_, api) = s.get("/api/v1/metrics");
    let doc: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(doc["data"][0]["labels"]["host.name"], "h1", "the JSON API shows names as they are: {api}");
    assert_eq!(doc["data"][0]["http.requests"]["metrics"][0]["labels"]["method.name"], "GET");
    let refused = http.put(format!("{}/metrics/job/demo", s.base)).body("{\"a.b\",\"c.d\"} 1\n").send().unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("multiple metric names for metric \"a.b\""));
    let (code, body) = s.request("DELETE", "/metrics/job/demo/U__host_2e_name/h1", &[], Vec::new());
    assert_eq!(code, 202, "{body:?}");
    assert!(!s.get("/metrics").1.lines().any(|l| l.starts_with("http_requests")), "deleted by its escaped URL");

    let legacy = Server::start(&[]);
    let (code, body) = legacy.put("/metrics/job/demo", "{\"http.requests\"} 5\n");
    assert_eq!(code, 400, "1.5.1's parser has no quoted names: {body}");
    let (code, _) = legacy.put("/metrics/job/demo/host.name/h1", "m 1\n");
    assert_eq!(code, 400);
    let (code, body) = legacy.put("/metrics/job/demo/U__host_2e_name/h1", "m 1\n");
    assert_eq!(code, 200, "U__… is an ordinary label name without the flag: {body}");
    let answer = http
        .get(format!("{}/metrics", legacy.base))
        .header("accept", "text/plain;escaping=allow-utf-8")
        .send()
        .unwrap();
    assert_eq!(answer.headers()["content-type"], text, "1.5.1's content type without the flag");
    assert!(answer.text().unwrap().contains("m{U__host_2e_name=\"h1\",instance=\"\",job=\"demo\"} 1"));
}

/// `/-/metrics` serves the node's own families alone (for a per-node scrape job beside
/// the load-balanced one): no pushed series, no push timestamps.
#[test]
fn node_metrics_apart_from_the_pushed_groups() {
    let s = Server::start(&[]);
    assert_eq!(s.put("/metrics/job/j", "pushed_value 1\n").0, 200);
    let (code, own) = s.get("/-/metrics");
    assert_eq!(code, 200);
    assert!(own.contains("\npushgateway_build_info{"), "{own}");
    // Upstream's labels for the platform, in Go's words (x86_64 is amd64).
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        assert!(own.contains("goarch=\"amd64\",goos=\"linux\""), "{own}");
    }
    assert!(own.contains("\nprocess_resident_memory_bytes "), "{own}");
    assert!(own.contains("\npushgateway_store_usage{resource=\"groups\"} 1\n"), "{own}");
    assert!(!own.contains("pushed_value") && !own.contains("push_time_seconds"), "{own}");
    let (_, all) = s.get("/metrics");
    assert!(all.contains("pushed_value{") && all.contains("pushgateway_build_info{"));
}

/// A scrape of more than one piece (64 KiB) goes out as it is rendered, without a
/// length; a small one goes out whole, with its length. Streamed, plain or gzip, it holds
/// every pushed series and ends with a complete last line.
#[test]
fn large_scrapes_are_streamed_whole() {
    tracing_free_note("a scrape over one piece is sent in pieces, complete, plain and gzip");
    let s = Server::start(&[]);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let scrape = |gzip: bool| {
        let mut req = client.get(format!("{}/metrics", s.base));
        if gzip {
            req = req.header("Accept-Encoding", "gzip");
        }
        let resp = req.send().expect("scrape");
        assert_eq!(resp.status(), 200);
        let length = resp.headers().get("content-length").cloned();
        let encoding = resp.headers().get("content-encoding").cloned();
        assert_eq!(encoding.is_some(), gzip);
        let bytes = resp.bytes().expect("whole body").to_vec();
        let text = if gzip {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).expect("gzip");
            out
        } else {
            String::from_utf8(bytes).expect("utf-8")
        };
        (length, text)
    };
    assert_eq!(s.put("/metrics/job/small", "small 1\n").0, 200);
    let (length, small) = scrape(false);
    assert!(length.is_some(), "a scrape of one piece has a length");
    assert!(small.contains("small{instance=\"\",job=\"small\"} 1\n"), "{small}");

    let body: String = (0..400).map(|k| format!("big_series_of_a_large_store{{k=\"{k}\"}} {k}\n")).collect();
    for g in 0..20 {
        assert_eq!(s.put(&format!("/metrics/job/big/instance/g{g:02}"), &body).0, 200);
    }
    for gzip in [false, true] {
        let (length, text) = scrape(gzip);
        // Compressed, this scrape fits one piece: it goes out whole.
        assert_eq!(length.is_none(), !gzip, "gzip {gzip}: a scrape of several pieces goes out as rendered");
        assert!(text.len() > 400 << 10, "gzip {gzip}: {} bytes", text.len());
        assert!(text.ends_with('\n'));
        let big: Vec<&str> = text.lines().filter(|l| l.starts_with("big_series_of_a_large_store{")).collect();
        assert_eq!(big.len(), 8000, "gzip {gzip}");
        assert_eq!(big[0], "big_series_of_a_large_store{instance=\"g00\",job=\"big\",k=\"0\"} 0");
        assert_eq!(big[7999], "big_series_of_a_large_store{instance=\"g19\",job=\"big\",k=\"99\"} 99");
        assert!(text.contains("push_time_seconds{instance=\"g19\",job=\"big\"}"), "gzip {gzip}");
        assert!(text.contains("small{instance=\"\",job=\"small\"} 1\n"), "gzip {gzip}");
    }
}

/// The request target `*` is answered as Go's server answers it, before credentials and
/// routes (recorded against upstream 1.5.1): `OPTIONS *` 200, any other method 400.
#[test]
fn the_request_target_star_is_answered_as_go_answers_it() {
    use std::io::Read;
    let s = Server::start(&["--web.enable-admin-api"]);
    let host = s.base.trim_start_matches("http://").to_string();
    for (method, status) in [("OPTIONS", "200"), ("GET", "400"), ("PUT", "400")] {
        let mut stream = std::net::TcpStream::connect(&host).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "{method} * HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{method} *: {answer}");
    }
}

/// Every start leaves the node writing its log over a recycled WAL file, so that a
/// node pushed to rarely does not extend a file with each synced append: after a start
/// and after a restart, RocksDB's info log says it reused a WAL file before any push,
/// and a push lands in a WAL file longer than the push (one written over).
#[test]
fn every_start_writes_the_log_over_a_recycled_wal_file() {
    let mut s = Server::start(&[]);
    for start in ["first start", "restart"] {
        let db = s.data_dir().join("db");
        let info = std::fs::read_to_string(db.join("LOG")).expect("RocksDB's LOG");
        assert!(info.contains("reusing log"), "{start}: RocksDB reused no WAL file");
        assert_eq!(s.put("/metrics/job/j", "m 1\n").0, 200);
        let newest = cluster::live_wal_bytes(&db);
        assert!(newest >= 1 << 20, "{start}: the newest WAL file is {newest} bytes long");
        s.signal_and_wait("TERM");
        if start == "first start" {
            s.restart();
            s.wait_for(Duration::from_secs(60), "ready", || s.get("/-/ready").0 == 200);
        }
    }
}
