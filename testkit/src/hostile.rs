//! Hostile pushes: requests whose cost would grow with the product of their dimensions,
//! or whose size would exhaust a node, each with the flag its refusal must name. Shared
//! by the hostile-input suite (`tests/it/hostile.rs`) and the `poison` workload of the
//! fault-injection harness.

use std::io::Write;

/// One hostile push: what it is, its path, headers and body, and the flag the 4xx
/// refusal must name.
#[derive(Clone, Debug)]
pub struct Attack {
    pub what: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Vec<u8>,
    pub flag: &'static str,
}

/// The content type of a delimited protobuf push.
pub const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The job every attack pushes to: nothing of it may ever be stored.
pub const JOB: &str = "poison";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// One delimited protobuf family named `m` with `n` empty metrics (two bytes each).
pub fn protobuf_empty_metrics(n: usize) -> Vec<u8> {
    let mut family = vec![0x0a, 0x01, b'm'];
    for _ in 0..n {
        family.extend_from_slice(&[0x22, 0x00]);
    }
    let mut out = Vec::new();
    varint(family.len(), &mut out);
    out.extend(family);
    out
}

/// One delimited protobuf family named `m` with one metric of `n` empty labels.
pub fn protobuf_labels(n: usize) -> Vec<u8> {
    let mut metric = Vec::new();
    for _ in 0..n {
        metric.extend_from_slice(&[0x0a, 0x00]);
    }
    let mut family = vec![0x0a, 0x01, b'm', 0x22];
    varint(metric.len(), &mut family);
    family.extend(metric);
    let mut out = Vec::new();
    varint(family.len(), &mut out);
    out.extend(family);
    out
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Every attack, at sizes that stalled or exhausted a node before the limits existed,
/// each over one default `--push.max-*` limit.
pub fn attacks() -> Vec<Attack> {
    let wide_key: String = (0..1000).map(|i| format!("/l{i}/v")).collect();
    let many_labels: String = {
        let labels: Vec<String> = (0..50_000).map(|i| format!("l{i}=\"v\"")).collect();
        format!("m{{{}}} 1\n", labels.join(","))
    };
    let long_value = format!("m{{l=\"{}\"}} 1\n", "v".repeat(100_000));
    let long_name = format!("{} 1\n", "m".repeat(2_000));
    vec![
        Attack {
            what: "1,000 grouping labels and a gzip body of 2,000 series",
            path: format!("/metrics/job/{JOB}{wide_key}"),
            headers: vec![("Content-Encoding", "gzip")],
            body: gzip("a 1\n".repeat(2000).as_bytes()),
            flag: "--push.max-grouping-labels",
        },
        Attack {
            what: "a sample line with 50,000 labels",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![],
            body: many_labels.into_bytes(),
            flag: "--push.max-labels-per-series",
        },
        Attack {
            what: "a protobuf push of 1,000,000 empty metrics",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![("Content-Type", PROTOBUF)],
            body: protobuf_empty_metrics(1_000_000),
            flag: "--push.max-series",
        },
        Attack {
            what: "a protobuf metric with 1,000,000 empty labels",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![("Content-Type", PROTOBUF)],
            body: protobuf_labels(1_000_000),
            flag: "--push.max-labels-per-series",
        },
        Attack {
            what: "a text body of 1,000,000 series",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![],
            body: (0..1_000_000).map(|i| format!("a{{i=\"{i}\"}} 1\n")).collect::<String>().into_bytes(),
            flag: "--push.max-series",
        },
        Attack {
            what: "a label value of 100,000 bytes",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![],
            body: long_value.into_bytes(),
            flag: "--push.max-label-value-bytes",
        },
        Attack {
            what: "a metric name of 2,000 bytes",
            path: format!("/metrics/job/{JOB}"),
            headers: vec![],
            body: long_name.into_bytes(),
            flag: "--push.max-label-name-bytes",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protobuf_body_declares_its_length() {
        let body = protobuf_empty_metrics(100);
        // 3 bytes of name, 200 of metrics: length 203 as a two-byte varint.
        assert_eq!(&body[..2], &[0xcb, 0x01]);
        assert_eq!(body.len(), 2 + 203);
    }

    #[test]
    fn every_attack_names_a_push_limit_and_the_poison_job() {
        for a in attacks() {
            assert!(a.flag.starts_with("--push.max-"), "{a:?}");
            assert!(a.path.starts_with("/metrics/job/poison"), "{}", a.what);
        }
    }
}
