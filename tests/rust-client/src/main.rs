//! crates.io's `prometheus` client pushing protobuf to this server and to upstream side by
//! side: every kind of metric the crate has (counters, gauges, histograms, integer and
//! float, with and without labels), pushed with PUT (`push_metrics`), added with POST
//! (`push_add_metrics`, `push_add_collector`), refused where upstream refuses, and a group
//! deleted (the crate has no delete: a plain DELETE, as its users write it). After every
//! step both servers must hold the same pushed groups: the same protobuf scrape (decoded
//! with the crate's own protobuf types), the same text scrape and the same JSON API,
//! push timestamps aside.
//!
//! Usage: rust-client-test PUSHGATEWAY UPSTREAM

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

const ACCEPT_PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

/// A server under test, killed when dropped.
struct Server {
    name: &'static str,
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(name: &'static str, binary: &str, ours: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
    if ours {
        cmd.arg(format!("--storage.path={}", dir.path().join("data").display()));
    } else {
        cmd.arg("--persistence.file=");
    }
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let child = cmd
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let server = Server { name, url: format!("http://127.0.0.1:{port}"), child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready =
            reqwest::blocking::get(format!("{}/-/ready", server.url)).map(|r| r.status().is_success()).unwrap_or(false);
        if ready {
            return server;
        }
        assert!(Instant::now() < deadline, "{name} did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every kind of metric the crate offers, registered in one registry, with values that
/// depend on `round` so a later push visibly replaces an earlier one.
fn registry(round: u32) -> Registry {
    let r = Registry::new();
    let f = f64::from(round);
    let counter = Counter::new("rc_requests_total", "Requests handled.").unwrap();
    counter.inc_by(3.5 * f);
    let int_counter = IntCounter::new("rc_batches_total", "Batches run.").unwrap();
    int_counter.inc_by(u64::from(round) * 7);
    let gauge = Gauge::new("rc_temperature_celsius", "Temperature.").unwrap();
    gauge.set(-12.25 * f);
    let int_gauge = IntGauge::new("rc_queue_length", "Queue length.").unwrap();
    int_gauge.set(i64::from(round) - 5);
    let histogram = Histogram::with_opts(
        HistogramOpts::new("rc_duration_seconds", "Durations.").buckets(vec![0.01, 0.1, 1.0, 10.0]),
    )
    .unwrap();
    for v in [0.005, 0.05, 0.5, 5.0, 50.0] {
        histogram.observe(v * f);
    }
    let counter_vec =
        CounterVec::new(Opts::new("rc_errors_total", "Errors by kind.").const_label("service", "billing"), &["kind"])
            .unwrap();
    counter_vec.with_label_values(&["timeout"]).inc_by(f);
    counter_vec.with_label_values(&["refused"]).inc_by(2.0 * f);
    let int_counter_vec = IntCounterVec::new(Opts::new("rc_rows_total", "Rows by table."), &["table"]).unwrap();
    int_counter_vec.with_label_values(&["users"]).inc_by(u64::from(round) * 1000);
    let gauge_vec = GaugeVec::new(Opts::new("rc_ratio", "Ratios by stage."), &["stage", "shard"]).unwrap();
    gauge_vec.with_label_values(&["load", "0"]).set(0.125 * f);
    gauge_vec.with_label_values(&["load", "1"]).set(1e-9 * f);
    let int_gauge_vec = IntGaugeVec::new(Opts::new("rc_workers", "Workers by pool."), &["pool"]).unwrap();
    int_gauge_vec.with_label_values(&["default"]).set(i64::from(round) * 4);
    let histogram_vec = HistogramVec::new(
        HistogramOpts::new("rc_size_bytes", "Sizes by kind.").buckets(vec![100.0, 1e4, 1e6]),
        &["kind"],
    )
    .unwrap();
    histogram_vec.with_label_values(&["upload"]).observe(512.0 * f);
    histogram_vec.with_label_values(&["download"]).observe(2e6 * f);
    r.register(Box::new(counter)).unwrap();
    r.register(Box::new(int_counter)).unwrap();
    r.register(Box::new(gauge)).unwrap();
    r.register(Box::new(int_gauge)).unwrap();
    r.register(Box::new(histogram)).unwrap();
    r.register(Box::new(counter_vec)).unwrap();
    r.register(Box::new(int_counter_vec)).unwrap();
    r.register(Box::new(gauge_vec)).unwrap();
    r.register(Box::new(int_gauge_vec)).unwrap();
    r.register(Box::new(histogram_vec)).unwrap();
    r
}

fn grouping(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The protobuf scrape's pushed metrics (those with a `job` label), push timestamps zeroed.
fn protobuf_scrape(url: &str) -> Vec<MetricFamily> {
    let body = reqwest::blocking::Client::new()
        .get(format!("{url}/metrics"))
        .header("Accept", ACCEPT_PROTOBUF)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let mut input = protobuf::CodedInputStream::from_bytes(&body);
    let mut families = Vec::new();
    while !input.eof().unwrap() {
        let mut mf: MetricFamily = input.read_message().unwrap();
        let pushed: Vec<_> =
            mf.take_metric().into_iter().filter(|m| m.get_label().iter().any(|l| l.name() == "job")).collect();
        if pushed.is_empty() {
            continue;
        }
        mf.set_metric(pushed);
        if mf.name().starts_with("push_") {
            for m in mf.mut_metric() {
                if m.get_gauge().value() != 0.0 {
                    m.gauge.mut_or_insert_default().set_value(1.0);
                }
            }
        }
        families.push(mf);
    }
    families
}

/// The text scrape's lines of pushed metrics, push timestamps replaced.
fn text_scrape(url: &str) -> Vec<String> {
    let body = reqwest::blocking::get(format!("{url}/metrics")).unwrap().text().unwrap();
    body.lines()
        .filter(|l| l.contains("job=\""))
        .map(|l| match l.rsplit_once(' ') {
            Some((series, value)) if l.starts_with("push_") && value != "0" => {
                format!("{series} <TIMESTAMP>")
            }
            _ => l.to_string(),
        })
        .collect()
}

/// The JSON API's groups, sorted by their labels (their order is not part of the
/// contract), with every time stamp and non-zero push time replaced.
fn api_groups(url: &str) -> String {
    let body = reqwest::blocking::get(format!("{url}/api/v1/metrics")).unwrap().text().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut groups = doc["data"].as_array().cloned().unwrap_or_default();
    for group in &mut groups {
        for (name, family) in group.as_object_mut().unwrap() {
            let Some(family) = family.as_object_mut() else { continue };
            family.insert("time_stamp".into(), "<TIMESTAMP>".into());
            if name.starts_with("push_") {
                for m in family["metrics"].as_array_mut().unwrap() {
                    if m["value"] != "0" {
                        m["value"] = "<TIMESTAMP>".into();
                    }
                }
            }
        }
    }
    groups.sort_by_key(|g| g["labels"].to_string());
    serde_json::to_string_pretty(&groups).unwrap()
}

/// What one step did on one server: the client's verdict and the state afterwards.
#[derive(Debug, PartialEq)]
struct Seen {
    verdict: Result<(), String>,
    protobuf: Vec<MetricFamily>,
    text: Vec<String>,
    api: String,
}

fn observe(server: &Server, verdict: Result<(), String>) -> Seen {
    Seen {
        verdict,
        protobuf: protobuf_scrape(&server.url),
        text: text_scrape(&server.url),
        api: api_groups(&server.url),
    }
}

type Step = (&'static str, fn(&str) -> Result<(), String>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 3, "usage: rust-client-test PUSHGATEWAY UPSTREAM");
    let ours = start("this server", &args[1], true);
    let upstream = start("upstream", &args[2], false);

    let steps: Vec<Step> = vec![
        ("push_metrics (PUT) of every kind of metric", |url| {
            let mfs = registry(1).gather();
            prometheus::push_metrics("rust", grouping(&[("instance", "a")]), url, mfs, None).map_err(|e| e.to_string())
        }),
        ("push_metrics (PUT) to a second group", |url| {
            let mfs = registry(2).gather();
            prometheus::push_metrics("rust", grouping(&[("instance", "b")]), url, mfs, None).map_err(|e| e.to_string())
        }),
        ("push_add_metrics (POST) of two families replaces only those", |url| {
            let mfs: Vec<_> = registry(3)
                .gather()
                .into_iter()
                .filter(|mf| mf.name() == "rc_requests_total" || mf.name() == "rc_size_bytes")
                .collect();
            prometheus::push_add_metrics("rust", grouping(&[("instance", "a")]), url, mfs, None)
                .map_err(|e| e.to_string())
        }),
        ("push_add_collector (POST) of one collector to a new group", |url| {
            let g = IntGauge::new("rc_last_run", "Last run.").unwrap();
            g.set(1_700_000_000);
            prometheus::push_add_collector(
                "rust-collector",
                grouping(&[("instance", "c"), ("zone", "eu")]),
                url,
                vec![Box::new(g)],
                None,
            )
            .map_err(|e| e.to_string())
        }),
        ("a push inconsistent with another group is refused by both", |url| {
            let g = Gauge::new("rc_requests_total", "Requests handled.").unwrap();
            let r = Registry::new();
            r.register(Box::new(g)).unwrap();
            prometheus::push_metrics("rust", grouping(&[("instance", "d")]), url, r.gather(), None)
                .map_err(|e| e.to_string())
        }),
        ("push_metrics (PUT) of an empty registry empties a group", |url| {
            let mfs = Registry::new().gather();
            prometheus::push_metrics("rust", grouping(&[("instance", "b")]), url, mfs, None).map_err(|e| e.to_string())
        }),
        ("DELETE of a group", |url| {
            let status = reqwest::blocking::Client::new()
                .delete(format!("{url}/metrics/job/rust-collector/instance/c/zone/eu"))
                .send()
                .map_err(|e| e.to_string())?
                .status();
            if status.as_u16() == 202 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }),
    ];

    let mut failures = 0;
    for (what, step) in steps {
        let a = observe(&ours, step(&ours.url).map_err(|e| e.replace(&ours.url, "URL")));
        let b = observe(&upstream, step(&upstream.url).map_err(|e| e.replace(&upstream.url, "URL")));
        // Upstream answers DELETE and POST 202 after applying them; this server applies them
        // before answering. Either way the next scrape shows the effect: give upstream a
        // moment if the first look differs.
        let b = if a != b {
            std::thread::sleep(Duration::from_millis(300));
            observe(&upstream, b.verdict)
        } else {
            b
        };
        let families: usize = a.protobuf.len();
        if a == b {
            println!("ok   {what} ({families} families, verdict {:?})", a.verdict);
        } else {
            failures += 1;
            println!("FAIL {what}");
            if a.verdict != b.verdict {
                println!("  verdict: {} {:?}, {} {:?}", ours.name, a.verdict, upstream.name, b.verdict);
            }
            if a.protobuf != b.protobuf {
                println!(
                    "  protobuf scrapes differ:\n  {}: {:?}\n  {}: {:?}",
                    ours.name, a.protobuf, upstream.name, b.protobuf
                );
            }
            if a.text != b.text {
                println!("  text scrapes differ:\n  {}: {:#?}\n  {}: {:#?}", ours.name, a.text, upstream.name, b.text);
            }
            if a.api != b.api {
                println!("  JSON API differs:\n  {}: {}\n  {}: {}", ours.name, a.api, upstream.name, b.api);
            }
        }
    }
    assert!(
        protobuf_scrape(&ours.url).iter().any(|mf| mf.name() == "rc_duration_seconds"),
        "the pushes reached the servers"
    );
    if failures > 0 {
        eprintln!("{failures} step(s) differ from upstream");
        std::process::exit(1);
    }
    println!("the Rust client sees the same on this server and on upstream");
}
