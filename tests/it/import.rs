//! Migration from upstream: a persistence file written by upstream 1.5.1 itself is
//! imported, at first start from `--persistence.file` and with `pushgateway import`,
//! and the groups then read back exactly as upstream serves them.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::{upstream_persisting, Server};
use crate::lossless::{bytes, double, message, sint, uint, varint, PROTOBUF};

/// A delimited protobuf body with one native histogram (schema 0, a zero bucket, one span
/// of two buckets): fields upstream keeps and a text push cannot carry.
fn native_body() -> Vec<u8> {
    let mut family = Vec::new();
    bytes(1, b"native_seconds", &mut family);
    bytes(2, b"A native histogram.", &mut family);
    uint(3, 4, &mut family); // HISTOGRAM
    message(
        4,
        |metric| {
            message(
                7,
                |h| {
                    uint(1, 5, h); // sample_count
                    double(2, 12.5, h); // sample_sum
                    sint(5, 0, h); // schema
                    double(6, 0.001, h); // zero_threshold
                    uint(7, 1, h); // zero_count
                    message(
                        12,
                        |span| {
                            sint(1, 1, span); // offset
                            uint(2, 2, span); // length
                        },
                        h,
                    );
                    bytes(13, &[4, 2], h); // positive_delta 2, 1 (packed sint64)
                },
                metric,
            )
        },
        &mut family,
    );
    let mut out = Vec::new();
    varint(family.len() as u64, &mut out);
    out.extend(family);
    out
}

/// Pushes to upstream what a migrating user's gateway holds: every metric type, groups
/// written by PUT then POST at other times, an empty group, a group whose last push
/// failed, a group only a failed push created, a native histogram and labels that need
/// escaping; answers upstream's `/api/v1/metrics` data once its file is written.
fn fill(base: &str) -> serde_json::Value {
    let http = reqwest::blocking::Client::new();
    let send = |method: &str, path: &str, body: Vec<u8>, content_type: &str| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = http.request(method, format!("{base}{path}")).header("content-type", content_type).body(body).send();
        r.unwrap().status().as_u16()
    };
    let text = |method: &str, path: &str, body: &str| send(method, path, body.as_bytes().to_vec(), "text/plain");
    let every_type = "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total{kind=\"full\"} 3\njobs_total{kind=\"diff\"} 1e+06\n\
        # TYPE duration_seconds histogram\nduration_seconds_bucket{le=\"0.5\"} 1\nduration_seconds_bucket{le=\"1\"} 2\nduration_seconds_bucket{le=\"+Inf\"} 3\nduration_seconds_sum 4.25\nduration_seconds_count 3\n\
        # HELP batch_size Batch sizes.\n# TYPE batch_size summary\nbatch_size{quantile=\"0.5\"} 2\nbatch_size{quantile=\"0.99\"} 9.5\nbatch_size_sum 20\nbatch_size_count 6\n\
        # TYPE temperature gauge\ntemperature{room=\"a \\\"quoted\\\" <room>\"} -3.5\nuntyped_thing NaN\n";
    assert_eq!(text("PUT", "/metrics/job/nightly/instance/db-1", every_type), 200);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        text("POST", "/metrics/job/nightly/instance/db-1", "# TYPE last_success gauge\nlast_success 1.7e+09\n"),
        200
    );
    assert_eq!(text("PUT", "/metrics/job/nightly/instance/db-2", "jobs_total{kind=\"full\"} 1\n"), 400, "type clash");
    assert_eq!(text("PUT", "/metrics/job/empty", ""), 200);
    assert_eq!(text("PUT", "/metrics/job/weekly", "weekly_untyped 1\n"), 200);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(text("POST", "/metrics/job/weekly", "# TYPE jobs_total gauge\njobs_total 2\n"), 400, "type clash");
    assert_eq!(text("PUT", "/metrics/job/slashes/path@base64/YS9i", "with_path 1\n"), 200);
    assert_eq!(send("PUT", "/metrics/job/native", native_body(), PROTOBUF), 200);
    // Written at the next persistence interval (1 s), and again when upstream stops.
    std::thread::sleep(Duration::from_millis(1500));
    let api: serde_json::Value =
        serde_json::from_str(&http.get(format!("{base}/api/v1/metrics")).send().unwrap().text().unwrap()).unwrap();
    api["data"].clone()
}

/// The `/api/v1/metrics` data of a node, groups in a fixed order (upstream's order is
/// its map's). The buckets of the native histogram are left out: this server shows them
/// as upstream 1.10 does (the README's compatibility section), 1.5.1 shows none; they are
/// checked apart ([`native_buckets`]).
fn sorted(mut data: serde_json::Value) -> serde_json::Value {
    if let Some(groups) = data.as_array_mut() {
        groups.sort_by_key(|g| g["labels"].to_string());
        for group in groups.iter_mut() {
            if let Some(metrics) = group.get_mut("native_seconds").and_then(|f| f["metrics"].as_array_mut()) {
                for m in metrics {
                    m["buckets"] = serde_json::json!("native");
                }
            }
        }
    }
    data
}

/// The native histogram's buckets as a node shows them, by upper bound.
fn native_buckets(node: &Server) -> Vec<String> {
    let (_, body) = node.get("/api/v1/metrics");
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = data["data"].as_array().unwrap().iter().find(|g| g["labels"]["job"] == "native").cloned().unwrap();
    let buckets = group["native_seconds"]["metrics"][0]["buckets"].as_array().cloned().unwrap_or_default();
    buckets.iter().map(|b| format!("{}..{}: {}", b[1], b[2], b[3])).collect()
}

/// What the pushed native histogram holds: a zero bucket of 1, then 2 and 3 in
/// (1, 2] and (2, 4] (schema 0, offset 1, deltas 2 and 1).
const NATIVE_BUCKETS: [&str; 3] = ["\"-0.001\"..\"0.001\": \"1\"", "\"1\"..\"2\": \"2\"", "\"2\"..\"4\": \"3\""];

fn api_of(node: &Server) -> serde_json::Value {
    let (code, body) = node.get("/api/v1/metrics");
    assert_eq!(code, 200, "{body}");
    sorted(serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"].clone())
}

/// Runs upstream on a persistence file in `dir`, fills it, stops it (it writes the file
/// on the way out) and answers the file and what upstream served.
fn upstream_file(dir: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let file = dir.join("pushgateway.data");
    let (mut process, base) = upstream_persisting(file.to_str().unwrap(), &["--persistence.interval=1s"]);
    let want = sorted(fill(&base));
    process.signal("TERM").unwrap();
    process.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(file.metadata().map(|m| m.len() > 0).unwrap_or(false), "upstream wrote its file");
    assert_eq!(want.as_array().map(Vec::len), Some(6), "{want:#}");
    (file, want)
}

#[test]
fn upstreams_persistence_file_is_imported_at_first_start_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    story("upstream 1.5.1 writes its file");
    let (file, want) = upstream_file(dir.path());

    story("a first start with the same --persistence.file imports it");
    let flag = format!("--persistence.file={}", file.display());
    let mut node = Server::start(&[&flag]);
    node.wait_for(Duration::from_secs(30), "the import", || api_of(&node).as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(api_of(&node), want, "the groups as upstream served them");
    assert_eq!(native_buckets(&node), NATIVE_BUCKETS);
    assert!(node.log().contains("imported upstream's persistence file"), "{}", node.log());

    story("a restart imports nothing again, even into an emptied store");
    for group in api_of(&node).as_array().unwrap() {
        let labels = group["labels"].as_object().unwrap();
        let mut path = format!("/metrics/job@base64/{}", base64_value(labels["job"].as_str().unwrap()));
        for (name, value) in labels.iter().filter(|(n, _)| *n != "job") {
            path.push_str(&format!("/{name}@base64/{}", base64_value(value.as_str().unwrap())));
        }
        assert_eq!(node.request("DELETE", &path, &[], Vec::new()).0, 202, "{path}");
    }
    assert_eq!(api_of(&node), serde_json::json!([]));
    node.signal_and_wait("TERM");
    node.restart();
    node.wait_for(Duration::from_secs(60), "ready", || node.get("/-/ready").0 == 200);
    // An import would be the node's first act once ready; give it time to show.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(api_of(&node), serde_json::json!([]), "imported a second time");
}

/// What a client's push to one of the file's groups (`weekly`, `weekly_untyped 1` in the
/// file) makes of `want`: that group as the node holds it, with the pushed value.
fn weekly_pushed(node: &Server, want: &serde_json::Value) -> serde_json::Value {
    let mut want = want.as_array().unwrap().clone();
    let got = api_of(node);
    let pushed = got.as_array().unwrap().iter().find(|g| g["labels"]["job"] == "weekly").cloned();
    let pushed = pushed.expect("the pushed group is stored");
    assert_eq!(pushed["weekly_untyped"]["metrics"][0]["value"], "42", "{pushed:#}");
    for group in want.iter_mut().filter(|g| g["labels"]["job"] == "weekly") {
        *group = pushed.clone();
    }
    sorted(serde_json::Value::Array(want))
}

/// PUTs `weekly_untyped 42` to the file's group `weekly` through `node` until it is
/// accepted (the node may not have a leader yet); from the moment the node was started.
fn push_to_weekly_from_the_start(node: &Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = node.put("/metrics/job/weekly", "weekly_untyped 42\n");
        if code == 200 {
            return;
        }
        assert!(code == 503 || code == 504, "{code} {body}");
        assert!(std::time::Instant::now() < deadline, "never accepted: {code} {body}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_push_sent_while_the_file_is_imported_acts_on_the_files_groups() {
    let dir = tempfile::tempdir().unwrap();
    story("upstream 1.5.1 writes its file");
    let (file, want) = upstream_file(dir.path());

    story("a client pushes to a group of the file as soon as the node is started");
    let flag = format!("--persistence.file={}", file.display());
    let node = Server::start_node(&[flag], std::sync::Arc::new(tempfile::tempdir().unwrap()));
    push_to_weekly_from_the_start(&node);

    story("when the push is answered the file is imported, and the push replaced its copy of the group");
    assert!(node.log().contains("imported upstream's persistence file"), "{}", node.log());
    assert_eq!(api_of(&node), weekly_pushed(&node, &want));
    assert_eq!(node.get("/-/ready").0, 200);
}

#[test]
fn a_push_through_another_node_while_the_file_is_imported_is_kept() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    story("upstream 1.5.1 writes its file");
    let (file, want) = upstream_file(dir.path());

    story("three fresh nodes with the same --persistence.file (node 1 imports it); a client pushes through node 2 from the start");
    let flag = format!("--persistence.file={}", file.display());
    let c = Cluster::spawn(3, &[&flag]);
    push_to_weekly_from_the_start(&c.nodes[1]);
    c.wait_all_ready();

    story("every node holds the file's groups, the pushed one as pushed, whichever came first");
    c.nodes[0].wait_for(Duration::from_secs(60), "the import", || {
        c.nodes[0].log().contains("imported upstream's persistence file")
    });
    let want = weekly_pushed(&c.nodes[1], &want);
    for node in &c.nodes {
        node.wait_for(Duration::from_secs(30), "the groups", || api_of(node) == want);
    }
}

/// URL-safe base64 of a grouping label value (`=` for the empty one).
fn base64_value(v: &str) -> String {
    use base64::Engine as _;
    if v.is_empty() {
        "=".to_string()
    } else {
        base64::engine::general_purpose::URL_SAFE.encode(v)
    }
}

#[test]
fn pushgateway_import_gives_every_node_the_file() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let (file, want) = upstream_file(dir.path());
    let c = Cluster::start(3, &[]);
    let follower = (c.leader() + 1) % 3;

    story("a stored group with a key of the file is replaced, others are kept");
    assert_eq!(c.nodes[follower].put("/metrics/job/empty", "replaced 1\n").0, 200);
    assert_eq!(c.nodes[follower].put("/metrics/job/kept", "kept 1\n").0, 200);

    story("pushgateway import through a follower");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["import", file.to_str().unwrap(), "--server", &c.nodes[follower].base])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["data"]["groups"], 6, "{summary}");
    assert_eq!(summary["data"]["refused"], serde_json::json!([]), "{summary}");

    story("every node holds upstream's groups, and the group of its own");
    let want_with_kept = {
        let mut all: Vec<serde_json::Value> = want.as_array().unwrap().clone();
        let node = &c.nodes[follower];
        let kept = api_of(node).as_array().unwrap().iter().find(|g| g["labels"]["job"] == "kept").cloned();
        all.push(kept.expect("the group not in the file is kept"));
        sorted(serde_json::Value::Array(all))
    };
    for node in &c.nodes {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while api_of(node) != want_with_kept && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let got = api_of(node);
        for (g, w) in got.as_array().unwrap().iter().zip(want_with_kept.as_array().unwrap()) {
            assert_eq!(g, w, "{}: got {g:#}\nwant {w:#}", node.base);
        }
        assert_eq!(got, want_with_kept, "{}", node.base);
        assert_eq!(native_buckets(node), NATIVE_BUCKETS);
    }

    story("a body not declared binary is refused (a web page cannot send one without asking)");
    let (code, _) =
        c.nodes[0].request("POST", "/api/v1/admin/import", &[("content-type", "text/plain")], b"x".to_vec());
    assert_eq!(code, 415);

    story("a file that is not upstream's is refused, and nothing changes");
    let text = dir.path().join("not-upstreams.txt");
    std::fs::write(&text, "some_metric 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["import", text.to_str().unwrap(), "--server", &c.nodes[0].base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not an upstream persistence file"), "{out:?}");
    assert_eq!(api_of(&c.nodes[0]), want_with_kept);
}

#[test]
fn a_group_the_store_refuses_is_reported_and_left_out_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (file, want) = upstream_file(dir.path());
    let node = Server::start(&["--web.enable-admin-api"]);
    story("a stored group makes jobs_total a gauge: the file's counter clashes with it");
    assert_eq!(node.put("/metrics/job/clash", "# TYPE jobs_total gauge\njobs_total 1\n").0, 200);
    let (code, body) = node.request(
        "POST",
        "/api/v1/admin/import",
        &[("content-type", "application/octet-stream")],
        std::fs::read(&file).unwrap(),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let refused = summary["data"]["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{summary}");
    assert_eq!(refused[0]["labels"], serde_json::json!({"job": "nightly", "instance": "db-1"}));
    assert!(refused[0]["reason"].as_str().unwrap().contains("jobs_total"), "{summary}");
    assert_eq!(summary["data"]["groups"], 5, "{summary}");

    story("nothing of the refused group is stored; every other group is upstream's");
    let got = api_of(&node);
    let jobs = |data: &serde_json::Value| -> Vec<String> {
        data.as_array().unwrap().iter().map(|g| g["labels"].to_string()).collect()
    };
    let mut expected: Vec<serde_json::Value> =
        want.as_array().unwrap().iter().filter(|g| g["labels"]["instance"] != "db-1").cloned().collect();
    expected.extend(got.as_array().unwrap().iter().filter(|g| g["labels"]["job"] == "clash").cloned());
    assert_eq!(jobs(&got), jobs(&sorted(serde_json::Value::Array(expected.clone()))));
    assert_eq!(got, sorted(serde_json::Value::Array(expected)));
}
