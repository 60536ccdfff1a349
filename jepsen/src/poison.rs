//! The `poison` workload: extra clients that send hostile pushes (`testkit::hostile`:
//! oversized and pathological requests, and a body that is promised and never sent) to
//! random nodes while the normal clients run. Every one must be refused with a 4xx;
//! none may be stored. The normal clients' history is checked as always, so the run
//! shows the attacks neither lose nor stall acknowledged writes.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use testkit::hostile::{attacks, Attack, JOB};

use crate::workload::Workload;

/// What became of the hostile requests.
#[derive(Default)]
pub struct PoisonStats {
    pub sent: AtomicU64,
    /// Answered 4xx, as they must be.
    pub refused: AtomicU64,
    /// Not answered by a node that was down, paused or cut off (a nemesis at work).
    pub unanswered: AtomicU64,
    /// Answered anything else: each a failure of the run.
    pub wrong: Mutex<Vec<String>>,
}

/// The figures of [`PoisonStats`] for the summary.
#[derive(Serialize, Debug, Clone, Default)]
pub struct PoisonSummary {
    pub sent: u64,
    pub refused: u64,
    pub unanswered: u64,
    pub wrong: Vec<String>,
    /// Series of `job="poison"` some node held at the end.
    pub stored: Vec<String>,
}

impl PoisonStats {
    pub fn summary(&self, stored: Vec<String>) -> PoisonSummary {
        PoisonSummary {
            sent: self.sent.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
            unanswered: self.unanswered.load(Ordering::SeqCst),
            wrong: self.wrong.lock().expect("wrong").clone(),
            stored,
        }
    }
}

/// Runs one poisoner until the workload stops.
pub fn run_poisoner(w: Arc<Workload>, stats: Arc<PoisonStats>, index: usize, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(7_000_003).wrapping_add(index as u64));
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("HTTP client");
    let attacks = attacks();
    while !w.stop.load(Ordering::SeqCst) {
        let nodes = w.nodes.read().expect("nodes").clone();
        let base = &nodes[rng.gen_range(0..nodes.len())];
        stats.sent.fetch_add(1, Ordering::SeqCst);
        // One in six is a stalled body; the others one of the oversized pushes.
        let choice = rng.gen_range(0..=attacks.len());
        let answer = match attacks.get(choice) {
            Some(attack) => send(&http, base, attack),
            None => stalled_body(base),
        };
        match answer {
            Answer::Status(400..=499) => stats.refused.fetch_add(1, Ordering::SeqCst),
            Answer::Unanswered => stats.unanswered.fetch_add(1, Ordering::SeqCst),
            Answer::Status(status) => {
                let what = attacks.get(choice).map_or("a stalled body", |a| a.what);
                stats.wrong.lock().expect("wrong").push(format!("{what} via {base}: {status}"));
                0
            }
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
    }
}

enum Answer {
    Status(u16),
    Unanswered,
}

fn send(http: &reqwest::blocking::Client, base: &str, attack: &Attack) -> Answer {
    let mut request = http.put(format!("{base}{}", attack.path)).body(attack.body.clone());
    for (name, value) in &attack.headers {
        request = request.header(*name, *value);
    }
    match request.send() {
        Ok(response) => Answer::Status(response.status().as_u16()),
        Err(_) => Answer::Unanswered,
    }
}

/// A push that promises 1,000 bytes, sends 10 and waits: the node must answer 408 once
/// its body read timeout passes, and store nothing.
fn stalled_body(base: &str) -> Answer {
    let Some(addr) = base.strip_prefix("http://") else { return Answer::Unanswered };
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return Answer::Unanswered };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let head =
        format!("PUT /metrics/job/{JOB}/stalled/1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000\r\n\r\nstalled 1\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return Answer::Unanswered;
    }
    let mut answer = [0u8; 12];
    match stream.read_exact(&mut answer) {
        Ok(()) => std::str::from_utf8(&answer[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Answer::Unanswered, Answer::Status),
        Err(_) => Answer::Unanswered,
    }
}
