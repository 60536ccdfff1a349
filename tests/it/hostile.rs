//! Hostile input against three real nodes: requests whose cost would grow with the
//! product of their dimensions, or whose size would exhaust a node, are refused with a
//! 4xx that names the limit, store nothing on any node, and do not hold up a normal push
//! made through another node meanwhile.
//!
//! Bounds here are liveness bounds, not speed: before the limits existed, the first
//! request stalled the whole cluster for about two minutes on this machine.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cluster::{exclusive, story, Cluster};

/// A push of `body` through node `i`, answered with its status and body text.
fn send(c: &Cluster, i: usize, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let (code, body) = c.nodes[i].request("PUT", path, headers, body);
    (code, String::from_utf8_lossy(&body).into_owned())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One delimited protobuf family named `m` with `n` empty metrics (two bytes each).
fn protobuf_empty_metrics(n: usize) -> Vec<u8> {
    let mut family = vec![0x0a, 0x01, b'm'];
    for _ in 0..n {
        family.extend_from_slice(&[0x22, 0x00]);
    }
    let mut out = Vec::new();
    let mut len = family.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend(family);
    out
}

/// One hostile request: what it is, where it goes, its headers and body, and the flag
/// its refusal must name.
struct Attack<'a> {
    what: &'a str,
    path: String,
    headers: Vec<(&'a str, &'a str)>,
    body: Vec<u8>,
    flag: &'a str,
}

#[test]
fn oversized_and_pathological_pushes_are_refused_and_stall_nothing() {
    let _one = exclusive();
    let c = Cluster::start(3, &[]);
    let leader = c.leader();
    let other = (leader + 1) % 3;
    let wide_key: String = (0..1000).map(|i| format!("/l{i}/v")).collect();
    let lines_a: String = "a 1\n".repeat(2000);
    let many_labels: String = {
        let labels: Vec<String> = (0..50_000).map(|i| format!("l{i}=\"v\"")).collect();
        format!("m{{{}}} 1\n", labels.join(","))
    };
    let long_value = format!("m{{l=\"{}\"}} 1\n", "v".repeat(100_000));
    let protobuf = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    let attacks: Vec<Attack> = vec![
        Attack {
            what: "1,000 grouping labels and a gzip body of 2,000 series",
            path: format!("/metrics/job/poison{wide_key}"),
            headers: vec![("Content-Encoding", "gzip")],
            body: gzip(lines_a.as_bytes()),
            flag: "--push.max-grouping-labels",
        },
        Attack {
            what: "a sample line with 50,000 labels",
            path: "/metrics/job/poison".to_string(),
            headers: vec![],
            body: many_labels.into_bytes(),
            flag: "--push.max-labels-per-series",
        },
        Attack {
            what: "a protobuf push of 1,000,000 empty metrics",
            path: "/metrics/job/poison".to_string(),
            headers: vec![("Content-Type", protobuf)],
            body: protobuf_empty_metrics(1_000_000),
            flag: "--push.max-series",
        },
        Attack {
            what: "a label value of 100,000 bytes",
            path: "/metrics/job/poison".to_string(),
            headers: vec![],
            body: long_value.into_bytes(),
            flag: "--push.max-label-value-bytes",
        },
    ];
    for (n, Attack { what, path, headers, body, flag }) in attacks.into_iter().enumerate() {
        story(what);
        for i in 0..3 {
            let started = Instant::now();
            let (code, text) = send(&c, i, &path, &headers, body.clone());
            assert_eq!(code, 400, "{what} through node {i}: {text}");
            assert!(text.contains(flag), "{what}: the message names {flag}: {text}");
            eprintln!("   node {i}: 400 after {:.2} s", started.elapsed().as_secs_f64());
        }
        let started = Instant::now();
        let (code, text) = send(&c, other, &format!("/metrics/job/normal/n/{n}"), &[], b"normal 1\n".to_vec());
        assert_eq!(code, 200, "a normal push after {what}: {text}");
        let took = started.elapsed();
        eprintln!("   a normal push through node {other}: {:.2} s", took.as_secs_f64());
        assert!(took < Duration::from_secs(10), "a normal push took {took:?} after {what}");
    }
    story("nothing of the refused pushes is stored, on any node");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().all(|l| !l.contains("poison")), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("normal{")).count(), 4, "{lines:?}");
}
