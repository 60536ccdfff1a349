//! `pgw-bench`: starts upstream's Pushgateway and this project (one node, and three nodes)
//! with fresh data, runs the same scenarios against each in the same run, and prints a
//! Markdown table of figures and ratios; the figures also go to a JSON file.
//!
//! ```text
//! cargo build --release --workspace && target/release/pgw-bench
//! ```
//!
//! Scenarios, in the order they run on each target (see `run_target`): one client PUT on
//! an empty store; 32 keep-alive clients PUTting the reference 10-series group over 1,000
//! grouping keys for 10 s, spread over all nodes (and, for the cluster, aimed only at a
//! follower); one client PUT with 1k, 100k and 1M series stored; scrape time at 100k and
//! 1M series on every node; RSS; time to ready after a restart holding 1M series; wipe
//! of 5,000 groups; failover (leader SIGKILL to the first accepted push). Around the 32-client
//! scenario, what the servers spent per push (`proc_stats`): CPU by thread name, storage
//! writes, write calls, and (this project) pushes per log entry.

mod http;
mod load;
mod proc_stats;
mod targets;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use targets::{Binaries, Kind, Target};

#[derive(Parser, Debug)]
#[command(name = "pgw-bench", about = "Side-by-side benchmark against upstream's Pushgateway")]
struct Options {
    /// Upstream's binary (Debian's prometheus-pushgateway 1.5.1).
    #[arg(long, default_value = "/usr/bin/prometheus-pushgateway")]
    upstream: PathBuf,
    /// This project's binary. Default: $CARGO_TARGET_DIR/release/pushgateway.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Targets to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "upstream,upstream-unchecked,single,cluster")]
    targets: Vec<String>,
    /// Seconds of the throughput scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Largest store, in series (the "1M" scenarios).
    #[arg(long, default_value_t = 1_000_000)]
    max_series: usize,
    /// Single-client PUTs per latency figure.
    #[arg(long, default_value_t = 1000)]
    latency_pushes: usize,
    /// Groups (of 10 series) filled before the timed wipe. Upstream with checks takes
    /// minutes to fill 5,000; a smoke run of the runner needs fewer.
    #[arg(long, default_value_t = 5_000)]
    wipe_groups: u64,
    /// Where the figures go as JSON.
    #[arg(long, default_value = "bench/results/latest.json")]
    out: PathBuf,
    /// Directory for the servers' data and logs.
    #[arg(long, default_value = "/tmp/pgw-bench")]
    work: PathBuf,
}

/// One figure of one target.
#[derive(Clone, Debug, Serialize)]
struct Figure {
    scenario: String,
    target: &'static str,
    value: f64,
    unit: &'static str,
    /// Whether a smaller value is better (latencies, times, memory) or a larger one (rates).
    lower_is_better: bool,
    /// Whether the table compares this figure across targets (not for figures that describe
    /// the run itself, such as how long the servers took to settle).
    #[serde(skip)]
    compared: bool,
}

struct Recorder {
    figures: Vec<Figure>,
    target: &'static str,
}

impl Recorder {
    fn add(&mut self, scenario: impl Into<String>, value: f64, unit: &'static str, lower_is_better: bool) {
        self.record(Figure {
            scenario: scenario.into(),
            target: self.target,
            value,
            unit,
            lower_is_better,
            compared: true,
        });
    }

    /// A figure about the run (not a result to compare): printed and kept, no ratio.
    fn add_uncompared(&mut self, scenario: impl Into<String>, value: f64, unit: &'static str) {
        let scenario = scenario.into();
        self.record(Figure { scenario, target: self.target, value, unit, lower_is_better: true, compared: false });
    }

    fn record(&mut self, figure: Figure) {
        println!("  {:<58} {:>12.2} {}", figure.scenario, figure.value, figure.unit);
        self.figures.push(figure);
    }

    fn latency(&mut self, what: &str, mut samples: load::Samples) {
        self.add(format!("{what}: p50"), samples.quantile_ms(0.5), "ms", true);
        self.add(format!("{what}: p99"), samples.quantile_ms(0.99), "ms", true);
        if samples.non_2xx + samples.errors > 0 {
            self.add(format!("{what}: failed requests"), (samples.non_2xx + samples.errors) as f64, "", true);
        }
    }
}

fn parse_kind(name: &str) -> anyhow::Result<Kind> {
    Ok(match name {
        "upstream" => Kind::Upstream,
        "upstream-unchecked" => Kind::UpstreamUnchecked,
        "single" => Kind::Single,
        "cluster" => Kind::Cluster,
        other => anyhow::bail!("unknown target {other:?}"),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn wipe(web: SocketAddr) -> anyhow::Result<()> {
    let r = http::Connection::new(web).request("PUT", "/api/v1/admin/wipe", b"")?;
    anyhow::ensure!((200..300).contains(&r.status), "wipe answered {}", r.status);
    Ok(())
}

/// Waits until the size of a scrape of `web` satisfies `wanted`: the store emptied by a
/// wipe (upstream's wipe answers before its queue has deleted the groups), or a fill stored
/// (upstream without checks answers 202 before storing). Between scrapes it waits as long
/// as the last one took (at least 5 ms): back-to-back scrapes of a large store kept
/// upstream's queue from deleting the groups of a million series within ten minutes once.
fn wait_scrape(web: SocketAddr, what: &str, wanted: impl Fn(usize) -> bool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let (times, size) = load::scrapes(web, 1)?;
        if wanted(size) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} within {within:?} (last scrape {size} bytes)");
        let took = Duration::from_secs_f64(times.first().copied().unwrap_or(0.0) / 1000.0);
        std::thread::sleep(took.max(Duration::from_millis(5)));
    }
}

/// Waits until a scrape of `web` is no bigger than `bytes`: the store emptied.
fn wait_scrape_at_most(web: SocketAddr, bytes: usize, within: Duration) -> anyhow::Result<()> {
    wait_scrape(web, "store not emptied", |size| size <= bytes, within)
}

fn scrape_every_node(rec: &mut Recorder, target: &Target, label: &str, runs: usize) -> anyhow::Result<()> {
    let mut worst = 0f64;
    let mut bytes = 0;
    for web in target.webs() {
        let (times, size) = load::scrapes(web, runs)?;
        worst = worst.max(median(times));
        bytes = size;
    }
    rec.add(format!("GET /metrics, {label} ({:.1} MB), slowest node's median", bytes as f64 / 1e6), worst, "ms", true);
    Ok(())
}

/// What one push of a scenario cost the target's processes: CPU (all threads of every node,
/// then the busiest thread names), write calls, the bytes the disks wrote (`disk_bytes`, the
/// machine's, while only the target ran), and pushes per log entry (this project only:
/// entries are counted by the log index).
fn cost_per_push(
    rec: &mut Recorder,
    what: &str,
    spent: &proc_stats::Usage,
    disk_bytes: u64,
    pushes: u64,
    entries: Option<u64>,
) {
    if pushes == 0 {
        return;
    }
    let per = |x: f64| x / pushes as f64;
    rec.add(format!("{what}: CPU per push, every thread of every node"), per(spent.cpu_seconds()) * 1e6, "µs", true);
    for (name, seconds) in spent.busiest_threads().into_iter().filter(|(_, s)| *s > 0.0).take(4) {
        rec.add(format!("{what}: CPU per push in threads {name:?}"), per(seconds) * 1e6, "µs", true);
    }
    rec.add(format!("{what}: bytes the disks wrote per push"), per(disk_bytes as f64), "B", true);
    rec.add(format!("{what}: write system calls per push, sockets included"), per(spent.write_calls as f64), "", true);
    if let Some(entries) = entries.filter(|e| *e > 0) {
        rec.add(format!("{what}: pushes per log entry"), pushes as f64 / entries as f64, "", false);
    }
}

/// What one push cost the target's processes when pushes come one at a time (one client):
/// CPU of every thread of every node, and on a cluster the leader's and the busiest
/// follower's apart. Here every push is a log entry of its own, so this is the fixed cost
/// of an entry, which a many-client load spreads over the pushes an entry carries. It
/// moves less from run to run than the loads' figures do: nothing else competes for the
/// cores. `each` is by node index, `leader` that node's index.
fn one_at_a_time(rec: &mut Recorder, what: &str, each: &[proc_stats::Usage], leader: Option<usize>, pushes: u64) {
    if pushes == 0 || each.is_empty() {
        return;
    }
    let per = |u: &proc_stats::Usage| u.cpu_seconds() * 1e6 / pushes as f64;
    rec.add(format!("{what}: CPU per push, every thread of every node"), each.iter().map(per).sum(), "µs", true);
    let Some(leader) = leader.filter(|_| each.len() > 1) else { return };
    if let Some(at_leader) = each.get(leader) {
        rec.add(format!("{what}: CPU per push, leader"), per(at_leader), "µs", true);
    }
    let followers = each.iter().enumerate().filter(|(i, _)| *i != leader);
    if let Some(busiest) = followers.map(|(_, u)| per(u)).max_by(f64::total_cmp) {
        rec.add(format!("{what}: CPU per push, busiest follower"), busiest, "µs", true);
    }
}

/// An entry's time split into its parts during a load of `took` that appended `entries`
/// (this project only): the load's time per entry, what the leader's Raft waited per log
/// append and per apply batch, and how many entries each held; on a cluster, the slowest
/// follower's append. With one entry per append and per apply batch at the leader (its
/// proposer keeps one batch in flight), entries follow one another and the leader's two
/// waits are parts of each entry's time; the rest is replication, the commit and the
/// hand-offs between tasks. `leader` is `None` when leadership changed during the load:
/// no leader figures then.
fn entry_parts(
    rec: &mut Recorder,
    what: &str,
    timings: Vec<Option<targets::StorageTimings>>,
    leader: Option<usize>,
    took: Duration,
    entries: Option<u64>,
) {
    if let Some(entries) = entries.filter(|e| *e > 0) {
        rec.add(format!("{what}: time per log entry"), took.as_secs_f64() * 1000.0 / entries as f64, "ms", true);
    }
    let Some(at_leader) = leader.and_then(|i| timings.get(i).copied().flatten()) else {
        return;
    };
    if let Some(ms) = at_leader.appends.mean_ms() {
        rec.add(format!("{what}: log append (write and fsync), per append, leader"), ms, "ms", true);
        if let Some(entries) = entries {
            let per_append = entries as f64 / at_leader.appends.count as f64;
            rec.add(format!("{what}: entries per log append, leader"), per_append, "", false);
        }
    }
    if let Some(ms) = at_leader.applies.mean_ms() {
        rec.add(format!("{what}: apply, per batch, leader"), ms, "ms", true);
        let per_batch = at_leader.applied_entries as f64 / at_leader.applies.count as f64;
        rec.add(format!("{what}: entries per apply batch, leader"), per_batch, "", false);
    }
    let followers = timings.iter().enumerate().filter(|(i, _)| Some(*i) != leader);
    let slowest = followers.filter_map(|(_, t)| t.and_then(|t| t.appends.mean_ms())).max_by(f64::total_cmp);
    if let Some(ms) = slowest {
        rec.add(format!("{what}: log append (write and fsync), per append, slowest follower"), ms, "ms", true);
    }
}

/// Waits, at most `limit`, until the target's processes are idle: under a tenth of one
/// core over a second. A scrape then costs what serving the store costs, apart from the
/// work a burst of a million series leaves behind (RocksDB's compactions, followers
/// catching up) on the same two cores; Prometheus scrapes a store mostly at rest. The
/// figures right after the fill stay beside it.
/// Returns how long it waited, and whether the target was idle then.
fn settle(target: &Target, limit: Duration) -> (Duration, bool) {
    let started = Instant::now();
    loop {
        let before = target.usage();
        std::thread::sleep(Duration::from_secs(1));
        let idle = target.usage().since(&before).cpu_seconds() < 0.1;
        if idle || started.elapsed() >= limit {
            return (started.elapsed(), idle);
        }
    }
}

fn rss_mb(target: &Target) -> Vec<f64> {
    target.servers.iter().filter_map(|s| s.rss_bytes()).map(|b| b as f64 / 1e6).collect()
}

fn run_target(kind: Kind, o: &Options, binaries: &Binaries) -> anyhow::Result<Vec<Figure>> {
    println!("\n== {}", kind.label());
    let mut target = Target::start(kind, binaries, &o.work)?;
    println!("  data and logs in {}", target.dir.display());
    let mut rec = Recorder { figures: Vec::new(), target: kind.label() };
    let webs = target.webs();
    let entry = webs[target.leader(Duration::from_secs(30)).unwrap_or(0)];
    std::thread::sleep(Duration::from_millis(500));
    let rss_empty = rss_mb(&target);
    rec.add("RSS empty, per node", median(rss_empty.clone()), "MB", true);

    let each_before: Vec<proc_stats::Usage> = target.servers.iter().map(|s| s.usage()).collect();
    let samples = load::single_client(entry, o.latency_pushes);
    let each: Vec<proc_stats::Usage> =
        target.servers.iter().zip(&each_before).map(|(s, b)| s.usage().since(b)).collect();
    let leader = if kind.is_ours() { target.leader(Duration::from_secs(5)).ok() } else { None };
    one_at_a_time(&mut rec, "one client PUT, empty store", &each, leader, samples.ok());
    rec.latency("one client PUT, empty store", samples);

    let body = load::reference_body();
    let (spent_before, entries_before) = (target.usage(), target.last_log_index());
    let disk_before = proc_stats::disk_written_bytes();
    let timings_before = target.storage_timings();
    let leader_before = if kind.is_ours() { target.leader(Duration::from_secs(5)).ok() } else { None };
    let samples = load::closed_loop(&webs, 32, Duration::from_secs(o.seconds), "bench", 1000, &body);
    let spent = target.usage().since(&spent_before);
    let disk_bytes = proc_stats::disk_written_bytes().saturating_sub(disk_before);
    let entries = target.last_log_index().zip(entries_before).map(|(after, before)| after.saturating_sub(before));
    rec.add("32 clients PUT 10-series groups, 1,000 keys: pushes/s", samples.per_second(), "/s", false);
    cost_per_push(&mut rec, "32 clients", &spent, disk_bytes, samples.ok(), entries);
    if kind.is_ours() {
        let after = target.storage_timings();
        let timings: Vec<_> = after
            .iter()
            .zip(&timings_before)
            .map(|(after, before)| after.zip(*before).and_then(|(a, b)| a.since(&b)))
            .collect();
        let leader = target.leader(Duration::from_secs(5)).ok().filter(|l| Some(*l) == leader_before);
        entry_parts(&mut rec, "32 clients", timings, leader, samples.elapsed, entries);
    }
    rec.latency("32 clients PUT 10-series groups, 1,000 keys", samples);
    if kind == Kind::Cluster {
        let follower = webs[target.follower()?];
        let samples = load::closed_loop(&[follower], 32, Duration::from_secs(o.seconds), "bench", 1000, &body);
        rec.add("same, all aimed at one follower: pushes/s", samples.per_second(), "/s", false);
        rec.latency("same, all aimed at one follower", samples);
    }
    wipe(entry)?;
    wait_scrape_at_most(entry, 64 * 1024, Duration::from_secs(600))?;

    // Store sizes: groups of 100 series, as in the reference workload's loading step.
    let mut sizes: Vec<usize> = vec![1_000, 100_000, o.max_series];
    sizes.retain(|n| *n <= o.max_series);
    sizes.dedup();
    let sizes: Vec<(usize, String)> = sizes.into_iter().map(|n| (n, series_label(n))).collect();
    for (series, label) in &sizes {
        let (series, label) = (*series, label.as_str());
        if kind == Kind::Upstream && series > 100_000 {
            println!("  (upstream with checks on: skipped at {label} series; each push re-checks the whole store)");
            break;
        }
        let fill = load::fill(&webs, "load", (series / 100) as u64, 100)?;
        println!("  filled to {series} series in {:.1} s", fill.as_secs_f64());
        let pushes = if kind == Kind::Upstream { o.latency_pushes.min(300) } else { o.latency_pushes };
        rec.latency(&format!("one client PUT, {label} series stored"), load::single_client(entry, pushes));
        if kind == Kind::Cluster && label == "100k" {
            let follower = webs[target.follower()?];
            rec.latency(
                &format!("one client PUT via a follower, {label} series stored"),
                load::single_client(follower, pushes),
            );
        }
        if series >= 100_000 {
            scrape_every_node(&mut rec, &target, &format!("{label} series"), if series > 100_000 { 3 } else { 5 })?;
            let rss = rss_mb(&target);
            rec.add(format!("RSS with {label} series, per node"), median(rss.clone()), "MB", true);
            let growth: Vec<f64> =
                rss.iter().zip(&rss_empty).map(|(full, empty)| (full - empty) * 1e6 / series as f64).collect();
            rec.add(
                format!("RSS growth per stored series ({label}), worst node"),
                growth.iter().copied().fold(0.0, f64::max),
                "B",
                true,
            );
            if series > 100_000 {
                let (waited, idle) = settle(&target, Duration::from_secs(180));
                let what = if idle { "servers idle" } else { "servers still busy" };
                rec.add_uncompared(format!("{what} after the {label} fill and its scrapes"), waited.as_secs_f64(), "s");
                scrape_every_node(&mut rec, &target, &format!("{label} series, {what}"), 3)?;
            }
        }
    }

    if kind.is_ours() {
        // Restart every node at once, holding the largest store.
        let took = target.restart_all(Duration::from_secs(300))?;
        rec.add(
            format!("ready after restarting every node holding {} series", series_label(o.max_series)),
            took.as_secs_f64(),
            "s",
            true,
        );
        target.leader(Duration::from_secs(60))?;
    }

    // Wipe of --wipe-groups groups (10 series each), timed until a scrape shows the empty
    // store, from an empty store. Ours is emptied by a wipe of the largest store. Upstream
    // is restarted instead (it keeps nothing, `--persistence.file=`): its wipe of a million
    // series is a queue of deletions that twice did not show within ten minutes while the
    // runner scraped it, which ended the whole run.
    // The restarted upstream then takes one push and a wipe, as ours did, so that its own
    // families (request counters by handler) are as big in the empty scrape measured below
    // as after the timed wipe.
    if !kind.is_ours() {
        target.restart_all(Duration::from_secs(60))?;
        load::fill(&target.webs(), "wipe", 1, 10)?;
    }
    let entry = target.webs()[target.leader(Duration::from_secs(30)).unwrap_or(0)];
    wipe(entry)?;
    wait_scrape_at_most(entry, 64 * 1024, Duration::from_secs(600))?;
    let (_, empty_bytes) = load::scrapes(entry, 1)?;
    load::fill(&target.webs(), "wipe", o.wipe_groups, 10)?;
    // Upstream without checks answers 202 before it has stored a push, and its wipe deletes
    // only the groups stored when it runs: a push still queued then outlives the wipe, and
    // the store never shows empty. Wait until every push of the fill is stored.
    let filled = empty_bytes + o.wipe_groups as usize * 10 * 20;
    wait_scrape(entry, "pushes not stored", |size| size >= filled, Duration::from_secs(120))?;
    let started = Instant::now();
    wipe(entry)?;
    wait_scrape_at_most(entry, empty_bytes + 1024, Duration::from_secs(600))?;
    let wiped = format!("wipe of {} groups (until scrapes show it)", thousands(o.wipe_groups));
    rec.add(wiped, started.elapsed().as_secs_f64() * 1000.0, "ms", true);

    if kind == Kind::Cluster {
        failover(&mut rec, &mut target)?;
    }
    Ok(rec.figures)
}

/// Four clients push to the two followers; the leader is SIGKILLed; the time from the kill
/// to the first push accepted afterwards, and the p99 push latency across the window.
fn failover(rec: &mut Recorder, target: &mut Target) -> anyhow::Result<()> {
    let leader = target.leader(Duration::from_secs(30))?;
    let survivors: Vec<SocketAddr> =
        target.servers.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, s)| s.web).collect();
    let started = Instant::now();
    let kill_at = Duration::from_secs(3);
    let window = Duration::from_secs(20);
    let workers: Vec<_> = (0..4)
        .map(|c| {
            let web = survivors[c % survivors.len()];
            std::thread::spawn(move || {
                let mut conn = http::Connection::new(web);
                let mut done = Vec::new();
                let body = b"# TYPE failover gauge\nfailover 1\n";
                while started.elapsed() < window {
                    let t = Instant::now();
                    match conn.request("PUT", &format!("/metrics/job/failover/instance/c{c}"), body) {
                        Ok(r) if r.status == 200 => done.push((t - started, t.elapsed())),
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                done
            })
        })
        .collect();
    std::thread::sleep(kill_at);
    let killed_at = started.elapsed();
    target.servers[leader].kill();
    let mut done: Vec<(Duration, Duration)> =
        workers.into_iter().flat_map(|w| w.join().expect("failover worker")).collect();
    done.sort();
    let first_after = done.iter().find(|(sent, _)| *sent > killed_at).map(|(sent, took)| *sent + *took - killed_at);
    let gap = first_after.context("no push accepted after the leader was killed")?;
    rec.add("failover: leader SIGKILL to the first accepted push", gap.as_secs_f64(), "s", true);
    let mut samples =
        load::Samples { micros: done.iter().map(|(_, took)| took.as_micros() as u64).collect(), ..Default::default() };
    rec.add("failover: p99 push latency across the 20 s window", samples.quantile_ms(0.99), "ms", true);
    Ok(())
}

/// Markdown table: one row per scenario, one column per target, and ours against upstream.
fn table(figures: &[Figure], kinds: &[Kind]) -> String {
    let mut scenarios: Vec<String> = Vec::new();
    for f in figures {
        if !scenarios.contains(&f.scenario) {
            scenarios.push(f.scenario.clone());
        }
    }
    let value =
        |scenario: &str, kind: Kind| figures.iter().find(|f| f.scenario == scenario && f.target == kind.label());
    let mut out = String::from("| scenario |");
    for k in kinds {
        out.push_str(&format!(" {} |", k.label()));
    }
    out.push_str(" ours (3 nodes) vs upstream |\n|---|");
    out.push_str(&"---|".repeat(kinds.len() + 1));
    out.push('\n');
    for s in &scenarios {
        out.push_str(&format!("| {s} |"));
        for k in kinds {
            match value(s, *k) {
                Some(f) => out.push_str(&format!(" {} {} |", format_value(f.value), f.unit)),
                None => out.push_str(" — |"),
            }
        }
        let ours = value(s, Kind::Cluster);
        let theirs = value(s, Kind::Upstream).or_else(|| value(s, Kind::UpstreamUnchecked));
        match (ours, theirs) {
            (Some(o), Some(t)) if o.compared && o.value > 0.0 && t.value > 0.0 => {
                let better = if o.lower_is_better { t.value / o.value } else { o.value / t.value };
                out.push_str(&format!(
                    " {:.1}× {} |",
                    if better >= 1.0 { better } else { 1.0 / better },
                    if better >= 1.0 { "better" } else { "worse" }
                ));
            }
            _ => out.push_str(" |"),
        }
        out.push('\n');
    }
    out
}

/// `5000` as `5,000`, as the figures' names spell counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn series_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn main() -> anyhow::Result<()> {
    let o = Options::parse();
    let ours = o.binary.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        PathBuf::from(target).join("release").join("pushgateway")
    });
    let binaries = Binaries { upstream: o.upstream.clone(), ours };
    let kinds: Vec<Kind> = o.targets.iter().map(|t| parse_kind(t)).collect::<Result<_, _>>()?;
    let mut figures = Vec::new();
    for &kind in &kinds {
        figures.extend(run_target(kind, &o, &binaries).with_context(|| kind.label())?);
    }
    let table = table(&figures, &kinds);
    println!("\n{table}");
    if let Some(parent) = o.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let machine = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    let report = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": machine,
        "figures": figures,
        "table": table,
        "options": BTreeMap::from([
            ("seconds", o.seconds as usize), ("max_series", o.max_series), ("latency_pushes", o.latency_pushes),
        ]),
    });
    std::fs::write(&o.out, serde_json::to_string_pretty(&report)?)?;
    println!("figures written to {}", o.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compared figures get the ratio column; figures about the run itself get none.
    #[test]
    fn table_compares_only_results() {
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Upstream.label() };
        rec.add("latency", 2.0, "ms", true);
        rec.add_uncompared("settled", 1.0, "s");
        rec.target = Kind::Cluster.label();
        rec.add("latency", 1.0, "ms", true);
        rec.add_uncompared("settled", 1.0, "s");
        let out = table(&rec.figures, &[Kind::Upstream, Kind::Cluster]);
        let line = |s: &str| out.lines().find(|l| l.starts_with(&format!("| {s} |"))).unwrap().to_string();
        assert!(line("latency").ends_with("| 2.0× better |"), "{out}");
        assert!(line("settled").ends_with("| 1.00 s | |"), "{out}");
    }

    /// An entry's parts: per entry of the load, per append and per apply batch at the
    /// leader, and the slowest follower's append; nothing for a node that did not say.
    #[test]
    fn entry_parts_divide_what_the_leader_and_followers_counted() {
        let timings = |appends, append_seconds, batches, entries, apply_seconds| targets::StorageTimings {
            appends: targets::Waited { count: appends, seconds: append_seconds },
            applies: targets::Waited { count: batches, seconds: apply_seconds },
            applied_entries: entries,
        };
        let follower = Some(timings(10, 0.02, 5, 5, 0.0));
        let leader = Some(timings(100, 0.05, 50, 100, 0.2));
        let want = [
            ("load: time per log entry", 2.0),
            ("load: log append (write and fsync), per append, leader", 0.5),
            ("load: entries per log append, leader", 10.0),
            ("load: apply, per batch, leader", 4.0),
            ("load: entries per apply batch, leader", 2.0),
            ("load: log append (write and fsync), per append, slowest follower", 2.0),
        ];
        // The leader first, then second: the figures follow the index it is at.
        for (counted, at) in [(vec![leader, follower, None], 0), (vec![follower, leader, None], 1)] {
            let mut rec = Recorder { figures: Vec::new(), target: Kind::Cluster.label() };
            entry_parts(&mut rec, "load", counted, Some(at), Duration::from_secs(2), Some(1000));
            let got: Vec<(String, f64)> = rec.figures.iter().map(|f| (f.scenario.clone(), f.value)).collect();
            assert_eq!(got.len(), want.len(), "{got:?}");
            for ((scenario, value), (w, v)) in got.iter().zip(want) {
                assert_eq!(scenario, w);
                assert!((value - v).abs() < 1e-9, "{scenario}: {value} against {v}");
            }
        }
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Cluster.label() };
        entry_parts(&mut rec, "load", vec![leader, follower], None, Duration::from_secs(2), Some(1000));
        assert_eq!(rec.figures.len(), 1, "a changed leader gives only the time per entry");
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Single.label() };
        entry_parts(&mut rec, "load", vec![None], Some(0), Duration::from_secs(2), None);
        assert!(rec.figures.is_empty(), "a node that did not say gives nothing");
    }

    /// One push at a time: CPU per push of every node together, then the leader's and the
    /// busiest follower's, by the leader's index; one node, or no pushes, gives less.
    #[test]
    fn one_at_a_time_splits_the_cpu_per_push_by_role() {
        let ticks = |t| proc_stats::Usage { process_ticks: t, ..Default::default() };
        let nodes = [ticks(30), ticks(150), ticks(20)];
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Cluster.label() };
        one_at_a_time(&mut rec, "one", &nodes, Some(1), 1000);
        let got: Vec<(String, f64)> = rec.figures.iter().map(|f| (f.scenario.clone(), f.value)).collect();
        let want = [
            ("one: CPU per push, every thread of every node", 2000.0),
            ("one: CPU per push, leader", 1500.0),
            ("one: CPU per push, busiest follower", 300.0),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((scenario, value), (w, v)) in got.iter().zip(want) {
            assert_eq!(scenario, w);
            assert!((value - v).abs() < 1e-6, "{scenario}: {value} against {v}");
        }
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Single.label() };
        one_at_a_time(&mut rec, "one", &nodes[..1], Some(0), 1000);
        assert_eq!(rec.figures.len(), 1, "one node: only the total");
        let mut rec = Recorder { figures: Vec::new(), target: Kind::Cluster.label() };
        one_at_a_time(&mut rec, "one", &nodes, None, 0);
        assert!(rec.figures.is_empty(), "no pushes, no figures");
    }
}
