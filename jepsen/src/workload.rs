//! Clients: random PUT, POST, DELETE and reads on a small set of groups, against random
//! nodes, each recorded with invoke and completion times. Values are unique per
//! operation so that every read names the write it saw.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::history::{Action, Families, GroupState, Op, Outcome};

/// Shared between the client threads and the harness.
pub struct Workload {
    pub start: Instant,
    pub nodes: RwLock<Vec<String>>,
    pub history: Mutex<Vec<Op>>,
    pub next_id: AtomicU64,
    pub stop: AtomicBool,
    pub keys: u32,
    /// Operations per second per client; 0 for no fixed rate.
    pub rate: u32,
    /// `--workload expiry`: PUTs with a short `__ttl__` and deletes by match as well.
    pub expiry: bool,
}

impl Workload {
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client")
}

fn group_path(key: u32) -> String {
    format!("/metrics/job/jepsen/key/{key}")
}

/// The state of group `key` in an `/api/v1/metrics` document.
pub fn observe(doc: &serde_json::Value, key: u32) -> GroupState {
    let key = key.to_string();
    let group = doc["data"]
        .as_array()?
        .iter()
        .find(|g| g["labels"]["job"] == "jepsen" && g["labels"]["key"].as_str() == Some(key.as_str()))?;
    let value = |family: &str| -> Option<u64> { group[family]["metrics"][0]["value"].as_str()?.parse().ok() };
    Some(Families { v: value("v"), w: value("w") })
}

/// The state of group `key` in a text scrape of `/metrics`: the group exists when its
/// `push_time_seconds` series does; `v` and `w` are its pushed values.
pub fn observe_text(text: &str, key: u32) -> GroupState {
    let labels = format!("{{instance=\"\",job=\"jepsen\",key=\"{key}\"}}");
    text.lines().any(|l| l.starts_with(&format!("push_time_seconds{labels} "))).then(|| Families {
        v: sample_value(text, &format!("v{labels}")),
        w: sample_value(text, &format!("w{labels}")),
    })
}

/// The integer value of `series` (its name and labels as a text scrape writes them,
/// braces included) in a text scrape; none when absent.
pub fn sample_value(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
}

/// Classifies an HTTP outcome. A refused connection never delivered the request: `Fail`.
fn classify(result: &Result<reqwest::blocking::Response, reqwest::Error>) -> (Outcome, u16) {
    match result {
        Ok(r) => {
            let status = r.status().as_u16();
            let outcome = match status {
                200..=299 => Outcome::Ok,
                503 => Outcome::Fail,
                _ => Outcome::Info,
            };
            (outcome, status)
        }
        Err(e) if e.is_connect() => (Outcome::Fail, 0),
        Err(_) => (Outcome::Info, 0),
    }
}

/// Runs one client until `stop`.
pub fn run_client(w: Arc<Workload>, index: usize, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let http = client();
    while !w.stop.load(Ordering::SeqCst) {
        let nodes = w.nodes.read().expect("nodes").clone();
        let node = rng.gen_range(0..nodes.len());
        let base = &nodes[node];
        let key = rng.gen_range(0..w.keys);
        let id = w.next_id.fetch_add(1, Ordering::SeqCst);
        let roll: u32 = rng.gen_range(0..100);
        let action = match roll {
            0..=29 if !w.expiry => Action::Put { value: id },
            0..=14 => Action::Put { value: id },
            15..=29 => Action::PutTtl { value: id, ttl_ms: rng.gen_range(200..2000) },
            30..=49 => Action::Post { value: id },
            50..=54 if w.expiry => Action::DeleteMatching,
            50..=59 => Action::Delete,
            _ => Action::Read { observed: None },
        };
        let invoke_ms = w.now_ms();
        let invoke_start = Instant::now();
        let url = format!("{base}{}", group_path(key));
        let (outcome, status, action) = match action {
            Action::Put { value } => {
                let r = http.put(url).body(format!("v {value}\n")).send();
                let (o, s) = classify(&r);
                (o, s, action)
            }
            Action::Post { value } => {
                let r = http.post(url).body(format!("w {value}\n")).send();
                let (o, s) = classify(&r);
                (o, s, action)
            }
            Action::Delete => {
                let r = http.delete(url).send();
                let (o, s) = classify(&r);
                (o, s, action)
            }
            Action::PutTtl { value, ttl_ms } => {
                let r = http.put(format!("{url}/__ttl__/{ttl_ms}ms")).body(format!("v {value}\n")).send();
                let (o, s) = classify(&r);
                (o, s, action)
            }
            Action::DeleteMatching => {
                let selector = format!("{{job=\"jepsen\",key=~\"{key}\"}}");
                let r = http.put(format!("{base}/api/v1/admin/delete")).query(&[("match[]", selector)]).send();
                let (o, s) = classify(&r);
                (o, s, action)
            }
            Action::Expire { .. } => unreachable!("the checker's, never sent"),
            Action::Read { .. } => {
                // Half the reads scrape /metrics, half ask the JSON API.
                let text_scrape = rng.gen_bool(0.5);
                let path = if text_scrape { "/metrics" } else { "/api/v1/metrics" };
                match http.get(format!("{base}{path}")).send() {
                    // A read the server marks stale (it could not confirm it was up to date,
                    // --cluster.stale-reads-after) claims no linearizability: it is no evidence.
                    Ok(resp) if resp.headers().contains_key("x-pushgateway-stale-seconds") => {
                        (Outcome::Fail, 200, Action::Read { observed: None })
                    }
                    Ok(resp) if resp.status().as_u16() == 200 => {
                        let observed = resp.text().ok().and_then(|t| {
                            if text_scrape {
                                Some(observe_text(&t, key))
                            } else {
                                serde_json::from_str::<serde_json::Value>(&t).ok().map(|doc| observe(&doc, key))
                            }
                        });
                        match observed {
                            Some(o) => (Outcome::Ok, 200, Action::Read { observed: Some(o) }),
                            None => (Outcome::Fail, 200, Action::Read { observed: None }),
                        }
                    }
                    Ok(resp) => (Outcome::Fail, resp.status().as_u16(), Action::Read { observed: None }),
                    Err(_) => (Outcome::Fail, 0, Action::Read { observed: None }),
                }
            }
        };
        let op = Op { id, client: index, node, key, action, invoke_ms, complete_ms: w.now_ms(), outcome, status };
        w.history.lock().expect("history").push(op);
        let pause = if w.rate == 0 {
            Duration::from_millis(rng.gen_range(5..40))
        } else {
            Duration::from_secs_f64(1.0 / w.rate as f64).saturating_sub(invoke_start.elapsed())
        };
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_read_paths_see_the_same_group() {
        let text =
            "# TYPE push_time_seconds gauge\npush_time_seconds{instance=\"\",job=\"jepsen\",key=\"3\"} 1.7e+09\n\
                    v{instance=\"\",job=\"jepsen\",key=\"3\"} 42\nw{instance=\"\",job=\"jepsen\",key=\"30\"} 7\n";
        assert_eq!(observe_text(text, 3), Some(Families { v: Some(42), w: None }));
        assert_eq!(observe_text(text, 4), None);
        let doc = serde_json::json!({"data": [{"labels": {"job": "jepsen", "key": "3"},
            "v": {"metrics": [{"value": "42"}]}}]});
        assert_eq!(observe(&doc, 3), observe_text(text, 3));
    }
}
