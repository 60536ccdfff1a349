//! The server's own metrics: `process_*` (from the `prometheus` crate's process
//! collector), `pushgateway_build_info`, upstream's HTTP metrics and this node's view of
//! the cluster (`pushgateway_cluster_*`). They describe this process, so they differ from
//! node to node, as they do upstream. Their names, types and help come from the pinned
//! list in `model::own_families` (pushes are judged against it); a family missing there
//! is a bug the tests catch. The store's usage and quotas (`pushgateway_store_*`) are
//! judged only from replicated-format version 2 on (`model::own_families::ADDED_IN_V2`);
//! before, a pushed family of their name takes their place in scrapes
//! ([`crate::exposition::render::gather`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use cluster::{NodeStatus, ProposalStats, PROPOSAL_DURATION_BOUNDS, ROLES};
use model::own_families::own_family;
use model::{Bucket, LabelPair, Labels, Metric, MetricFamily, StoreQuotas, Timestamp, Usage, Value};
use prometheus::core::Collector;

const CLUSTER_ROLE: &str = "pushgateway_cluster_role";
const CLUSTER_TERM: &str = "pushgateway_cluster_term";
const CLUSTER_HAS_LEADER: &str = "pushgateway_cluster_has_leader";
const CLUSTER_LEADER_ID: &str = "pushgateway_cluster_leader_id";
const CLUSTER_LAST_LOG_INDEX: &str = "pushgateway_cluster_last_log_index";
const CLUSTER_APPLIED_INDEX: &str = "pushgateway_cluster_applied_index";
const CLUSTER_APPLY_LAG: &str = "pushgateway_cluster_apply_lag_entries";
const CLUSTER_VOTERS: &str = "pushgateway_cluster_voters";
const CLUSTER_LEARNERS: &str = "pushgateway_cluster_learners";
const CLUSTER_LOG_ENTRIES: &str = "pushgateway_cluster_log_entries";
const CLUSTER_STORAGE_BYTES: &str = "pushgateway_cluster_storage_bytes";
const CLUSTER_SNAPSHOT_BYTES: &str = "pushgateway_cluster_snapshot_bytes";
const CLUSTER_FORWARDED: &str = "pushgateway_cluster_forwarded_batches_total";
const CLUSTER_FAILED: &str = "pushgateway_cluster_failed_proposals_total";
const CLUSTER_PROPOSAL_DURATION: &str = "pushgateway_cluster_proposal_duration_seconds";
const CLUSTER_READ_STALENESS: &str = "pushgateway_cluster_read_staleness_seconds";
const CLUSTER_STALE_READS: &str = "pushgateway_cluster_stale_reads_total";

const STORE_USAGE: &str = "pushgateway_store_usage";
const STORE_QUOTA: &str = "pushgateway_store_quota";

/// The store's usage and quotas per resource: `pushgateway_store_usage{resource}` and
/// `pushgateway_store_quota{resource}`, so that `usage / quota` is the fill ratio.
pub fn store_families(usage: Usage, quotas: &StoreQuotas) -> Vec<MetricFamily> {
    let used = [usage.groups, usage.series, usage.bytes];
    let per_resource = |values: [u64; 3]| -> Vec<Metric> {
        quotas
            .entries()
            .iter()
            .zip(values)
            .map(|((_, what, _), v)| Metric {
                labels: Labels::from([LabelPair::new("resource", *what)]),
                value: Value::Gauge(v as f64),
                timestamp_ms: Timestamp::NONE,
            })
            .collect()
    };
    let limits = quotas.entries().map(|(_, _, quota)| quota);
    [(STORE_QUOTA, per_resource(limits)), (STORE_USAGE, per_resource(used))]
        .into_iter()
        .map(|(name, metrics)| {
            let own = own_family(name).expect("an own family of model::own_families::ADDED_IN_V2");
            MetricFamily { name: name.into(), help: Some(own.help.into()), metric_type: own.metric_type, metrics }
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct SumCount {
    sum: f64,
    count: u64,
}

/// Counters and summaries of the HTTP side, plus the process collector.
pub struct SelfMetrics {
    process: prometheus::process_collector::ProcessCollector,
    /// `(code, handler, method)` -> requests.
    requests: Mutex<BTreeMap<(u16, &'static str, String), u64>>,
    /// method -> push durations (seconds) and sizes (bytes).
    push_duration: Mutex<BTreeMap<String, SumCount>>,
    push_size: Mutex<BTreeMap<String, SumCount>>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    pub fn new() -> Self {
        SelfMetrics {
            process: prometheus::process_collector::ProcessCollector::for_self(),
            requests: Mutex::default(),
            push_duration: Mutex::default(),
            push_size: Mutex::default(),
        }
    }

    /// Counts one request (scrapes excluded, as upstream).
    pub fn observe_request(&self, code: u16, handler: &'static str, method: &str) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((code, handler, method.to_ascii_lowercase())).or_default() += 1;
        }
    }

    /// Records one push's duration and body size.
    pub fn observe_push(&self, method: &str, seconds: f64, bytes: usize) {
        let method = method.to_ascii_lowercase();
        for (map, v) in [(&self.push_duration, seconds), (&self.push_size, bytes as f64)] {
            if let Ok(mut m) = map.lock() {
                let e = m.entry(method.clone()).or_default();
                e.sum += v;
                e.count += 1;
            }
        }
    }

    fn family(&self, name: &str, metrics: Vec<Metric>) -> MetricFamily {
        let own = own_family(name).unwrap_or_else(|| panic!("{name} is not in model::own_families::OWN_FAMILIES"));
        MetricFamily { name: name.into(), help: Some(own.help.to_string()), metric_type: own.metric_type, metrics }
    }

    /// Every own family with its current values; `cluster` is this node's view of the
    /// cluster at the time of the scrape, `proposals` what became of the commands
    /// proposed through it.
    pub fn gather(&self, cluster: &NodeStatus, proposals: &ProposalStats) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        let gauge = |labels: Vec<LabelPair>, v: f64| Metric {
            labels: labels.into(),
            value: Value::Gauge(v),
            timestamp_ms: Timestamp::NONE,
        };
        let roles =
            ROLES.iter().map(|r| gauge(vec![LabelPair::new("role", *r)], f64::from(u8::from(cluster.role == *r))));
        out.push(self.family(CLUSTER_ROLE, roles.collect()));
        let scalars = [
            (CLUSTER_TERM, cluster.term as f64),
            (CLUSTER_HAS_LEADER, f64::from(u8::from(cluster.leader.is_some()))),
            (CLUSTER_LEADER_ID, cluster.leader.map_or(-1.0, |l| l as f64)),
            (CLUSTER_LAST_LOG_INDEX, cluster.last_log_index as f64),
            (CLUSTER_APPLIED_INDEX, cluster.applied_index as f64),
            (CLUSTER_APPLY_LAG, cluster.last_log_index.saturating_sub(cluster.applied_index) as f64),
            (CLUSTER_VOTERS, cluster.voters.len() as f64),
            (CLUSTER_LEARNERS, cluster.learners.len() as f64),
            (CLUSTER_LOG_ENTRIES, cluster.last_log_index.saturating_sub(cluster.purged_index) as f64),
            (CLUSTER_STORAGE_BYTES, cluster.storage_bytes as f64),
            (CLUSTER_SNAPSHOT_BYTES, cluster.snapshot_bytes as f64),
            (CLUSTER_READ_STALENESS, cluster.read_staleness_millis as f64 / 1000.0),
        ];
        for (name, v) in scalars {
            out.push(self.family(name, vec![gauge(vec![], v)]));
        }
        let counter = |labels: Vec<LabelPair>, v: u64| Metric {
            labels: labels.into(),
            value: Value::Counter(v as f64),
            timestamp_ms: Timestamp::NONE,
        };
        out.push(self.family(CLUSTER_FORWARDED, vec![counter(vec![], proposals.forwarded_batches)]));
        out.push(self.family(CLUSTER_STALE_READS, vec![counter(vec![], cluster.stale_reads)]));
        let failed = [
            ("storage", proposals.failed_storage),
            ("timeout", proposals.failed_timeout),
            ("unavailable", proposals.failed_unavailable),
        ];
        let failed = failed.into_iter().map(|(reason, n)| counter(vec![LabelPair::new("reason", reason)], n));
        out.push(self.family(CLUSTER_FAILED, failed.collect()));
        let mut cumulative = 0;
        let buckets = PROPOSAL_DURATION_BOUNDS
            .iter()
            .zip(proposals.duration_buckets)
            .map(|(bound, n)| {
                cumulative += n;
                Bucket { upper_bound: *bound, cumulative_count: cumulative }
            })
            .collect();
        let histogram = Value::histogram(proposals.duration_count, proposals.duration_sum, buckets);
        out.push(self.family(
            CLUSTER_PROPOSAL_DURATION,
            vec![Metric { labels: Labels::new(), value: histogram, timestamp_ms: Timestamp::NONE }],
        ));
        for pf in self.process.collect() {
            let name = pf.name();
            if own_family(name).is_none() {
                continue;
            }
            let metrics = pf
                .get_metric()
                .iter()
                .map(|m| {
                    let value = match pf.get_field_type() {
                        prometheus::proto::MetricType::COUNTER => Value::Counter(m.get_counter().get_value()),
                        _ => Value::Gauge(m.get_gauge().get_value()),
                    };
                    Metric { labels: Labels::new(), value, timestamp_ms: Timestamp::NONE }
                })
                .collect();
            out.push(self.family(name, metrics));
        }
        let build = Metric {
            labels: Labels::from([
                LabelPair::new("branch", option_env!("PUSHGATEWAY_BUILD_BRANCH").unwrap_or("")),
                LabelPair::new("goarch", go_arch()),
                LabelPair::new("goos", go_os()),
                LabelPair::new("revision", option_env!("PUSHGATEWAY_BUILD_REVISION").unwrap_or("")),
                LabelPair::new("rustversion", env!("CARGO_PKG_RUST_VERSION")),
                LabelPair::new("version", env!("CARGO_PKG_VERSION")),
            ]),
            value: Value::Gauge(1.0),
            timestamp_ms: Timestamp::NONE,
        };
        out.push(self.family("pushgateway_build_info", vec![build]));
        let summaries = |map: &Mutex<BTreeMap<String, SumCount>>| -> Vec<Metric> {
            let map = map.lock().map(|m| m.clone()).unwrap_or_default();
            map.into_iter()
                .map(|(method, sc)| Metric {
                    labels: Labels::from([LabelPair::new("method", method)]),
                    value: Value::summary(sc.count, sc.sum, vec![]),
                    timestamp_ms: Timestamp::NONE,
                })
                .collect()
        };
        out.push(self.family("pushgateway_http_push_duration_seconds", summaries(&self.push_duration)));
        out.push(self.family("pushgateway_http_push_size_bytes", summaries(&self.push_size)));
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        let metrics = requests
            .into_iter()
            .map(|((code, handler, method), n)| Metric {
                labels: Labels::from([
                    LabelPair::new("code", code.to_string()),
                    LabelPair::new("handler", handler),
                    LabelPair::new("method", method),
                ]),
                value: Value::Counter(n as f64),
                timestamp_ms: Timestamp::NONE,
            })
            .collect();
        out.push(self.family("pushgateway_http_requests_total", metrics));
        out
    }
}

/// This build's architecture as Go names it (`GOARCH`), for `pushgateway_build_info`'s
/// `goarch` label, which dashboards made for upstream filter on.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "wasm32" => "wasm",
        other => other,
    }
}

/// This build's operating system as Go names it (`GOOS`), for the `goos` label.
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}
