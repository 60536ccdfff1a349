//! Protobuf pushes keep every field: native and float histograms, exemplars, created
//! timestamps and fields this server does not know come back field for field in
//! protobuf scrapes, on every node, after restarts, as upstream serves them.

use std::time::Duration;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::upstream;

pub(crate) const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// A hand encoder of protobuf fields, in field-number order (as Go marshals them, so
/// upstream's output of the same message is byte for byte the same); the import tests
/// use it too.
pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint(u64::from(field) << 3 | u64::from(wire), out);
}
pub(crate) fn uint(field: u32, v: u64, out: &mut Vec<u8>) {
    key(field, 0, out);
    varint(v, out);
}
pub(crate) fn sint(field: u32, v: i64, out: &mut Vec<u8>) {
    uint(field, ((v << 1) ^ (v >> 63)) as u64, out);
}
pub(crate) fn double(field: u32, v: f64, out: &mut Vec<u8>) {
    key(field, 1, out);
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn bytes(field: u32, v: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(v.len() as u64, out);
    out.extend_from_slice(v);
}
pub(crate) fn message(field: u32, build: impl FnOnce(&mut Vec<u8>), out: &mut Vec<u8>) {
    let mut inner = Vec::new();
    build(&mut inner);
    bytes(field, &inner, out);
}
fn label(field: u32, name: &str, value: &str, out: &mut Vec<u8>) {
    message(
        field,
        |l| {
            bytes(1, name.as_bytes(), l);
            bytes(2, value.as_bytes(), l);
        },
        out,
    );
}
fn timestamp(field: u32, seconds: i64, nanos: i64, out: &mut Vec<u8>) {
    message(
        field,
        |t| {
            uint(1, seconds as u64, t);
            uint(2, nanos as u64, t);
        },
        out,
    );
}
fn exemplar(field: u32, value: f64, out: &mut Vec<u8>) {
    message(
        field,
        |e| {
            label(1, "trace_id", "abc123", e);
            double(2, value, e);
            timestamp(3, 1_700_000_000, 250_000_000, e);
        },
        out,
    );
}

/// One family, length-delimited: name, help, type, and the metrics' value fields (each
/// metric gets the label `m="<i>"` first).
/// What writes one metric's fields after its label.
type Fields<'a> = &'a dyn Fn(&mut Vec<u8>);

fn family(name: &str, metric_type: u64, metrics: &[Fields]) -> Vec<u8> {
    let mut f = Vec::new();
    bytes(1, name.as_bytes(), &mut f);
    bytes(2, b"help text", &mut f);
    uint(3, metric_type, &mut f);
    for (i, fields) in metrics.iter().enumerate() {
        message(
            4,
            |m| {
                label(1, "m", &i.to_string(), m);
                fields(m);
            },
            &mut f,
        );
    }
    let mut out = Vec::new();
    varint(f.len() as u64, &mut out);
    out.extend(f);
    out
}

/// The families a current client pushes: a native-only histogram with an exemplar and a
/// created timestamp, a classic and native one, a float histogram, a counter with an
/// exemplar and a created timestamp, and a gauge with a field of a later metrics.proto.
fn body() -> Vec<u8> {
    let native = |m: &mut Vec<u8>| {
        message(
            7,
            |h| {
                uint(1, 7, h);
                double(2, 12.5, h);
                sint(5, 3, h);
                double(6, 1e-128, h);
                uint(7, 1, h);
                message(
                    12,
                    |s| {
                        sint(1, 0, s);
                        uint(2, 2, s);
                    },
                    h,
                );
                sint(13, 3, h);
                sint(13, -1, h);
                timestamp(15, 1_700_000_000, 5, h);
                exemplar(16, 0.25, h);
            },
            m,
        )
    };
    let classic_and_native = |m: &mut Vec<u8>| {
        message(
            7,
            |h| {
                uint(1, 4, h);
                double(2, 3.0, h);
                message(
                    3,
                    |b| {
                        uint(1, 1, b);
                        double(2, 0.5, b);
                        exemplar(3, 0.4, b);
                    },
                    h,
                );
                message(
                    3,
                    |b| {
                        uint(1, 4, b);
                        double(2, 1.0, b);
                    },
                    h,
                );
                sint(5, 0, h);
                message(
                    12,
                    |s| {
                        sint(1, -1, s);
                        uint(2, 1, s);
                    },
                    h,
                );
                sint(13, 4, h);
            },
            m,
        )
    };
    let float = |m: &mut Vec<u8>| {
        message(
            7,
            |h| {
                double(2, 9.5, h);
                double(4, 2.5, h);
                sint(5, 1, h);
                double(8, 0.5, h);
                message(
                    12,
                    |s| {
                        sint(1, 1, s);
                        uint(2, 1, s);
                    },
                    h,
                );
                double(14, 2.0, h);
            },
            m,
        )
    };
    let counter = |m: &mut Vec<u8>| {
        message(
            3,
            |c| {
                double(1, 5.0, c);
                exemplar(2, 1.0, c);
                timestamp(3, 1_700_000_000, 0, c);
            },
            m,
        )
    };
    let gauge_and_later_field = |m: &mut Vec<u8>| {
        message(2, |g| double(1, 2.0, g), m);
        uint(99, 42, m);
    };
    let gauge_histogram = |m: &mut Vec<u8>| {
        message(
            7,
            |h| {
                uint(1, 3, h);
                double(2, 1.5, h);
                message(
                    3,
                    |b| {
                        uint(1, 3, b);
                        double(2, 1.0, b);
                    },
                    h,
                );
            },
            m,
        )
    };
    [
        family("queue_depth", 5, &[&gauge_histogram]),
        family("native_seconds", 4, &[&native, &classic_and_native]),
        family("float_seconds", 4, &[&float]),
        family("requests_total", 0, &[&counter]),
        family("temperature", 1, &[&gauge_and_later_field]),
    ]
    .concat()
}

/// The metric messages of a delimited protobuf scrape, by family name, for the families
/// of `names`: what is compared, byte for byte.
fn metrics_of(scrape: &[u8], names: &[&str]) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut rest = scrape;
    while !rest.is_empty() {
        let (len, used) = read_varint(rest);
        let (message, tail) = rest[used..].split_at(len as usize);
        rest = tail;
        let mut name = String::new();
        let mut metrics = Vec::new();
        let mut m = message;
        while !m.is_empty() {
            let (k, used) = read_varint(m);
            m = &m[used..];
            let (field, wire) = ((k >> 3) as u32, k & 7);
            match wire {
                0 => m = &m[read_varint(m).1..],
                1 => m = &m[8..],
                5 => m = &m[4..],
                2 => {
                    let (len, used) = read_varint(m);
                    let contents = &m[used..used + len as usize];
                    m = &m[used + len as usize..];
                    match field {
                        1 => name = String::from_utf8(contents.to_vec()).unwrap(),
                        4 => metrics.push(contents.to_vec()),
                        _ => {}
                    }
                }
                _ => panic!("wire type {wire}"),
            }
        }
        if names.contains(&name.as_str()) {
            out.push((name, metrics));
        }
    }
    out.sort();
    out
}

fn read_varint(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("truncated varint")
}

const NAMES: &[&str] = &["native_seconds", "float_seconds", "requests_total", "temperature", "queue_depth"];

fn scrape(http: &reqwest::blocking::Client, base: &str, accept: &str) -> Vec<u8> {
    let answer = http.get(format!("{base}/metrics")).header("accept", accept).send().unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().unwrap().to_vec()
}

#[test]
fn every_protobuf_field_comes_back_on_every_node_as_upstream_serves_it() {
    let _one = exclusive();
    let http = reqwest::blocking::Client::new();
    story("the same push to upstream and to a follower of three nodes");
    let (_upstream, reference) = upstream(&[]);
    let answer =
        http.put(format!("{reference}/metrics/job/lossless")).header("content-type", PROTOBUF).body(body()).send();
    assert_eq!(answer.unwrap().status(), 200);
    let mut c = Cluster::start(3, &["--cluster.snapshot-logs=20"]);
    let leader = c.leader();
    let follower = (leader + 1) % 3;
    let (code, text) = c.nodes[follower].request("PUT", "/metrics/job/lossless", &[("content-type", PROTOBUF)], body());
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&text));

    story("protobuf scrapes of every node hold upstream's metric messages, byte for byte");
    let want = metrics_of(&scrape(&http, &reference, PROTOBUF), NAMES);
    assert_eq!(want.len(), 5, "{want:?}");
    let same_everywhere = |c: &Cluster| {
        for node in &c.nodes {
            node.wait_for(Duration::from_secs(30), "the push applied", || {
                metrics_of(&scrape(&http, &node.base, PROTOBUF), NAMES) == want
            });
        }
    };
    same_everywhere(&c);

    story("text scrapes print native histograms as upstream 1.11 does");
    let text = String::from_utf8(scrape(&http, &c.nodes[leader].base, "text/plain")).unwrap();
    let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap_or_default().to_string();
    assert!(
        line("native_seconds_bucket{instance=\"\",job=\"lossless\",m=\"0\",le=\"+Inf\"}").ends_with(" 7"),
        "{text}"
    );
    assert!(line("native_seconds_count{instance=\"\",job=\"lossless\",m=\"0\"}").ends_with(" 7"), "{text}");
    assert!(line("native_seconds_bucket{instance=\"\",job=\"lossless\",m=\"1\",le=\"0.5\"}").ends_with(" 1"), "{text}");
    assert!(
        line("float_seconds_count{instance=\"\",job=\"lossless\",m=\"0\"}").ends_with(" 2.5"),
        "the float count: {text}"
    );
    assert!(line("requests_total{instance=\"\",job=\"lossless\",m=\"0\"}").ends_with(" 5"), "{text}");
    assert!(text.contains("# TYPE queue_depth histogram\n"), "a gauge histogram prints as a histogram: {text}");

    story("the JSON API shows a gauge histogram as upstream does: a value of 0");
    let family_json = |base: &str, name: &str| -> serde_json::Value {
        let text = http.get(format!("{base}/api/v1/metrics")).send().unwrap().text().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let group = doc["data"].as_array().unwrap().iter().find(|g| g["labels"]["job"] == "lossless").unwrap().clone();
        group[name]["metrics"].clone()
    };
    assert_eq!(family_json(&c.nodes[leader].base, "queue_depth"), family_json(&reference, "queue_depth"));
    assert_eq!(family_json(&reference, "queue_depth")[0]["value"], "0");

    story("and native histograms as upstream 1.10+ does: [boundaries, lower, upper, count] per bucket");
    let native = family_json(&c.nodes[leader].base, "native_seconds");
    assert_eq!(
        native[0]["buckets"],
        serde_json::json!([
            [3, "-1e-128", "1e-128", "1"],
            [0, "0.9170040432046711", "1", "3"],
            [0, "1", "1.0905077326652577", "2"]
        ]),
        "{native}"
    );
    assert_eq!(native[0]["count"], "7");
    assert_eq!(
        native[1]["buckets"],
        serde_json::json!([[0, "0.25", "0.5", "4"]]),
        "native wins over classic: {native}"
    );
    let float = family_json(&c.nodes[leader].base, "float_seconds");
    assert_eq!(
        float[0]["buckets"],
        serde_json::json!([[3, "-0", "0", "0.5"], [0, "1", "1.414213562373095", "2"]]),
        "{float}"
    );
    assert_eq!(float[0]["count"], "2.5");

    story("and after a restart of every node");
    c.restart_all();
    same_everywhere(&c);

    story("and on a follower that caught up from a snapshot");
    let leader = c.leader();
    let follower = (leader + 1) % 3;
    c.nodes[follower].signal_and_wait("KILL");
    for seq in 0..60 {
        let (code, body) = c.nodes[leader].put(&format!("/metrics/job/filler/seq/{seq}"), "filler 1\n");
        assert_eq!(code, 200, "{body}");
    }
    c.nodes[follower].restart();
    same_everywhere(&c);
    assert!(c.nodes[follower].log().contains("installed a snapshot"), "the follower caught up from a snapshot");
}
