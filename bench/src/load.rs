//! Load generation: the reference workload (../shared/bench/push.lua: PUTs of one
//! 10-series group, three gauge families, round robin over 1,000 grouping keys, on
//! keep-alive connections), bulk loading of a store of a given size, and single-client
//! latency series.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::Connection;

/// The body push.lua sends: three gauge families, ten series.
pub fn reference_body() -> Vec<u8> {
    let mut body =
        String::from("# TYPE bench_metric_0 gauge\n# TYPE bench_metric_1 gauge\n# TYPE bench_metric_2 gauge\n");
    for i in 1..=10 {
        body.push_str(&format!("bench_metric_{}{{shard=\"s{i}\"}} {}\n", i % 3, i * 7));
    }
    body.into_bytes()
}

/// A group of `series` series of one gauge family (the loading body of baseline.sh).
pub fn load_body(series: usize) -> Vec<u8> {
    let mut body = String::from("# TYPE load_metric gauge\n");
    for i in 0..series {
        body.push_str(&format!("load_metric{{k=\"{i}\"}} {i}\n"));
    }
    body.into_bytes()
}

/// Latencies in microseconds, and the requests that failed.
#[derive(Default)]
pub struct Samples {
    pub micros: Vec<u64>,
    pub non_2xx: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        self.micros.sort_unstable();
        let i = ((self.micros.len() - 1) as f64 * q).round() as usize;
        self.micros[i] as f64 / 1000.0
    }

    pub fn ok(&self) -> u64 {
        self.micros.len() as u64 - self.non_2xx
    }

    pub fn per_second(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64()
    }

    fn record(&mut self, started: Instant, response: std::io::Result<crate::http::Response>) {
        match response {
            Ok(r) => {
                self.micros.push(started.elapsed().as_micros() as u64);
                if !(200..300).contains(&r.status) {
                    self.non_2xx += 1;
                }
            }
            Err(_) => self.errors += 1,
        }
    }
}

/// `connections` clients, spread evenly over `targets`, each PUTting `body` to
/// `/metrics/job/{job}/instance/i{n}` for n round robin over `groups`, for `duration`.
pub fn closed_loop(
    targets: &[SocketAddr],
    connections: usize,
    duration: Duration,
    job: &str,
    groups: u64,
    body: &[u8],
) -> Samples {
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let (target, counter, stop, body, job) =
                (targets[c % targets.len()], counter.clone(), stop.clone(), body.to_vec(), job.to_string());
            std::thread::spawn(move || {
                let mut conn = Connection::new(target);
                let mut samples = Samples::default();
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed) % groups;
                    let t = Instant::now();
                    let response = conn.request("PUT", &format!("/metrics/job/{job}/instance/i{n}"), &body);
                    samples.record(t, response);
                }
                samples
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut all = Samples::default();
    for w in workers {
        all.merge(w.join().expect("load worker"));
    }
    all.elapsed = started.elapsed();
    all
}

/// PUTs `groups` groups of `series` series each (`job`/`instance=g<n>`), over a few
/// connections per target, and checks every push was accepted.
pub fn fill(targets: &[SocketAddr], job: &str, groups: u64, series: usize) -> anyhow::Result<Duration> {
    let body = Arc::new(load_body(series));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..(4 * targets.len()).max(8))
        .map(|c| {
            let (target, body, next, job) = (targets[c % targets.len()], body.clone(), next.clone(), job.to_string());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut conn = Connection::new(target);
                loop {
                    let g = next.fetch_add(1, Ordering::Relaxed);
                    if g >= groups {
                        return Ok(());
                    }
                    let r = conn.request("PUT", &format!("/metrics/job/{job}/instance/g{g}"), &body)?;
                    anyhow::ensure!((200..300).contains(&r.status), "fill push answered {}", r.status);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("fill worker")?;
    }
    Ok(started.elapsed())
}

/// One client, `count` sequential PUTs of a one-series group to ten grouping keys.
pub fn single_client(target: SocketAddr, count: usize) -> Samples {
    let body = b"# TYPE one gauge\none 1\n";
    let mut conn = Connection::new(target);
    let mut samples = Samples::default();
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let r = conn.request("PUT", &format!("/metrics/job/single/instance/x{}", i % 10), body);
        samples.record(t, r);
    }
    samples.elapsed = started.elapsed();
    samples
}

/// Times `runs` scrapes of `/metrics`; returns (milliseconds of each, body bytes).
pub fn scrapes(target: SocketAddr, runs: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut conn = Connection::new(target);
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = conn.request("GET", "/metrics", b"")?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.status == 200, "scrape answered {}", r.status);
        bytes = r.body_bytes;
    }
    Ok((times, bytes))
}
