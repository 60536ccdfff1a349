//! `lb-failover`: the deployment as users run it, through the failovers they test before
//! they trust it. Three nodes behind haproxy (configured from `deploy/compose/haproxy.cfg`)
//! and Prometheus (from `deploy/prometheus/`) scraping through it every second; a batch
//! job pushes one series once at the start; a client pushes an ever larger value ten times
//! a second. Then: kill the leader, restart it, kill a follower, restart it. Afterwards
//! Prometheus's HTTP API is asked for what it stored, and the checks of
//! [`jepsen::failover`] judge it. The same scenario runs against two upstream
//! Pushgateways behind the same load balancer, and both outcomes are printed side by side.
//!
//! Exit status: 0 when this project passes every check, 1 when it fails one, 2 when the
//! run itself could not be made. Upstream's outcome is reported, not judged.
//!
//! ```text
//! cargo run -p jepsen --bin lb-failover -- --out /tmp/lb
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;

use jepsen::cluster::ClusterUnderTest;
use jepsen::failover::{self, Disruption, Gap, Push};
use jepsen::services::{self, Service};
use testkit::free_port;

#[derive(Parser, Debug)]
#[command(name = "lb-failover", about = "Three nodes behind haproxy, scraped by Prometheus, through failovers")]
struct Options {
    /// This project's binary. Default: $CARGO_TARGET_DIR/debug/pushgateway.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Upstream's Pushgateway, run twice behind the same load balancer for comparison.
    #[arg(long, default_value = "/usr/bin/prometheus-pushgateway")]
    upstream: PathBuf,
    /// Skip the upstream run.
    #[arg(long)]
    no_upstream: bool,
    #[arg(long, default_value = "prometheus")]
    prometheus: PathBuf,
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// Seconds between the events (kill, restart, kill, restart).
    #[arg(long, default_value_t = 10)]
    phase: u64,
    /// Directory for the run directory (configurations, logs, report.md).
    #[arg(long, default_value = "jepsen/runs")]
    out: PathBuf,
}

const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
const PUSH_EVERY: Duration = Duration::from_millis(100);
/// A pause between two pushes longer than this is the machine's stall, not the client's pace
/// (see `failover::stalls`).
const STALL_TOLERANCE: Duration = Duration::from_secs(2);
const PUSHED: &str = "e2e_pushed_value";
const BATCH: &str = "e2e_batch_last_success_timestamp_seconds";

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// The servers behind the load balancer, whichever implementation they are.
trait Backends {
    fn addresses(&self) -> Vec<String>;
    /// The node to kill first: the leader where there is one.
    fn first_victim(&self) -> anyhow::Result<usize>;
    /// The node to kill second: a follower where there is a leader, else another node.
    fn second_victim(&self, first: usize) -> anyhow::Result<usize>;
    fn name(&self, index: usize) -> String;
    fn kill(&mut self, index: usize);
    fn restart(&mut self, index: usize) -> anyhow::Result<()>;
    /// Restarts several at once, then waits until they serve.
    fn restart_many(&mut self, indexes: &[usize]) -> anyhow::Result<()>;
}

struct Ours(ClusterUnderTest);

impl Backends for Ours {
    fn addresses(&self) -> Vec<String> {
        self.0.nodes.iter().map(|n| n.web.clone()).collect()
    }
    fn first_victim(&self) -> anyhow::Result<usize> {
        self.0.leader().context("no leader known")
    }
    fn second_victim(&self, _first: usize) -> anyhow::Result<usize> {
        let leader = self.0.leader().context("no leader known")?;
        Ok((leader + 1) % self.0.nodes.len())
    }
    fn name(&self, index: usize) -> String {
        format!("node {}", self.0.nodes[index].id)
    }
    fn kill(&mut self, index: usize) {
        self.0.nodes[index].kill();
    }
    fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.0.restart(index)?;
        self.0.wait_ready(Duration::from_secs(60))
    }
    fn restart_many(&mut self, indexes: &[usize]) -> anyhow::Result<()> {
        for &i in indexes {
            self.0.restart(i)?;
        }
        self.0.wait_ready(Duration::from_secs(60))
    }
}

struct Upstream(Vec<(Service, String)>);

impl Backends for Upstream {
    fn addresses(&self) -> Vec<String> {
        self.0.iter().map(|(_, a)| a.clone()).collect()
    }
    fn first_victim(&self) -> anyhow::Result<usize> {
        Ok(0)
    }
    fn second_victim(&self, first: usize) -> anyhow::Result<usize> {
        Ok((first + 1) % self.0.len())
    }
    fn name(&self, index: usize) -> String {
        format!("instance {}", index + 1)
    }
    fn kill(&mut self, index: usize) {
        self.0[index].0.kill();
    }
    fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.0[index].0.restart()?;
        services::wait_ok(&format!("http://{}/-/ready", self.0[index].1), Duration::from_secs(30))
    }
    fn restart_many(&mut self, indexes: &[usize]) -> anyhow::Result<()> {
        for &i in indexes {
            self.restart(i)?;
        }
        Ok(())
    }
}

/// What one scenario showed.
struct Report {
    target: String,
    pushes: Vec<Push>,
    disruptions: Vec<Disruption>,
    scrapes: usize,
    scrapes_ok: usize,
    backward: Vec<(f64, f64, f64)>,
    longest_gap: f64,
    excessive: Vec<Gap>,
    /// When the machine stalled (see `failover::stalls`).
    stalled: Vec<(f64, f64)>,
    batch_missing: usize,
    identical: bool,
}

impl Report {
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.scrapes_ok < self.scrapes || self.scrapes == 0 {
            out.push(format!("{} of {} scrapes failed", self.scrapes - self.scrapes_ok, self.scrapes));
        }
        for d in self.disruptions.iter().filter(|d| d.window.is_none()) {
            out.push(format!("no push accepted after: {}", d.what));
        }
        if let Some((t, from, to)) = self.backward.first() {
            out.push(format!(
                "the value went backwards {} times (first at {t:.3}: {from} -> {to})",
                self.backward.len()
            ));
        }
        for g in &self.excessive {
            out.push(format!("a gap of {:.1} s from {:.3} (allowed {:.1} s)", g.to - g.from, g.from, g.allowed));
        }
        if self.batch_missing > 0 {
            out.push(format!("the batch job's series was missing from {} successful scrapes", self.batch_missing));
        }
        if !self.identical {
            out.push("the pushed groups differ between nodes at the end".to_string());
        }
        out
    }
}

/// Pushes an ever larger value through the load balancer until stopped.
fn pusher(lb: String, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Push>>>) {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let mut value = 0u64;
    while !stop.load(Ordering::SeqCst) {
        value += 1;
        let begun = Instant::now();
        let started = unix_now();
        let body = format!("# TYPE {PUSHED} gauge\n{PUSHED} {value}\n");
        let ok = http
            .put(format!("http://{lb}/metrics/job/e2e_pusher/instance/pusher"))
            .body(body)
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        log.lock().expect("push log").push(Push { started, finished: unix_now(), ok });
        std::thread::sleep(PUSH_EVERY.saturating_sub(begun.elapsed()));
    }
}

/// The pushed groups as `/api/v1/metrics` shows them on each backend.
fn groups_on(addresses: &[String]) -> anyhow::Result<Vec<serde_json::Value>> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?;
    addresses
        .iter()
        .map(|a| {
            let text = http.get(format!("http://{a}/api/v1/metrics")).send()?.error_for_status()?.text()?;
            let doc: serde_json::Value = serde_json::from_str(&text)?;
            Ok(doc["data"].clone())
        })
        .collect()
}

fn scenario(target: &str, backends: &mut dyn Backends, dir: &Path, o: &Options) -> anyhow::Result<Report> {
    std::fs::create_dir_all(dir)?;
    let say = |line: &str| eprintln!("[{target}] {:.3} {line}", unix_now());
    let lb = format!("127.0.0.1:{}", free_port()?);
    let servers: Vec<(String, String)> =
        backends.addresses().iter().enumerate().map(|(i, a)| (format!("backend-{}", i + 1), a.clone())).collect();
    let template = std::fs::read_to_string(services::repo_file("deploy/compose/haproxy.cfg"))?;
    std::fs::write(dir.join("haproxy.cfg"), services::haproxy_config(&template, &lb, &servers)?)?;
    let haproxy_args = vec!["-db".to_string(), "-f".to_string(), dir.join("haproxy.cfg").display().to_string()];
    let _haproxy = Service::start("haproxy", &o.haproxy, haproxy_args, dir.join("haproxy.log"))?;
    services::wait_ok(&format!("http://{lb}/-/ready"), Duration::from_secs(30)).context("haproxy")?;

    let prometheus = format!("127.0.0.1:{}", free_port()?);
    let template = std::fs::read_to_string(services::repo_file("deploy/prometheus/prometheus.yml"))?;
    let rules = services::repo_file("deploy/prometheus/rules.yml").canonicalize()?;
    std::fs::write(dir.join("prometheus.yml"), services::prometheus_config(&template, SCRAPE_INTERVAL, &lb, &rules)?)?;
    let prometheus_args = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        format!("--web.listen-address={prometheus}"),
    ];
    let _prometheus = Service::start("prometheus", &o.prometheus, prometheus_args, dir.join("prometheus.log"))?;
    let prometheus = format!("http://{prometheus}");
    services::wait_ok(&format!("{prometheus}/-/ready"), Duration::from_secs(60)).context("prometheus")?;
    let started = unix_now();

    // The batch job: pushes once, then exits.
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = format!("{BATCH} {started}\n");
        let sent = http.put(format!("http://{lb}/metrics/job/e2e_batch")).body(body).send();
        if sent.map(|r| r.status().is_success()).unwrap_or(false) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the batch job's push was never accepted");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let pushes = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let (lb, stop, pushes) = (lb.clone(), stop.clone(), pushes.clone());
        std::thread::spawn(move || pusher(lb, stop, pushes))
    };
    // Faults start once Prometheus has scraped successfully (it waits a while before its
    // first scrape), so that every fault falls between scraped samples.
    let deadline = Instant::now() + Duration::from_secs(60);
    while services::query_raw(&prometheus, "up{job=\"pushgateway\"}[1m]", unix_now())?
        .iter()
        .all(|s| s.samples.iter().all(|(_, v)| *v != 1.0))
    {
        if Instant::now() > deadline {
            bail!("Prometheus did not scrape through haproxy within a minute");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let phase = Duration::from_secs(o.phase);
    std::thread::sleep(phase / 2);

    let mut events = Vec::new();
    let mut victim = 0;
    for (step, kill) in [(0, true), (1, false), (2, true), (3, false)] {
        if kill {
            victim = match step {
                0 => backends.first_victim()?,
                _ => backends.second_victim(victim)?,
            };
        }
        let what = match (step, kill) {
            (0, _) => format!("kill {} (the leader, where there is one)", backends.name(victim)),
            (_, true) => format!("kill {} (a follower, where there is a leader)", backends.name(victim)),
            (_, false) => format!("restart {}", backends.name(victim)),
        };
        say(&what);
        let at = unix_now();
        match kill {
            true => backends.kill(victim),
            false => backends.restart(victim)?,
        }
        events.push((what, at));
        std::thread::sleep(phase);
    }
    // A majority lost (upstream: both instances): pushes cannot be acknowledged, but every
    // scrape must still answer, from what the survivor has applied.
    let survivor = backends.first_victim().unwrap_or(0);
    let lost: Vec<usize> = (0..backends.addresses().len()).filter(|&i| i != survivor).collect();
    let lost = if lost.len() >= 2 { lost } else { (0..backends.addresses().len()).collect() };
    let names: Vec<String> = lost.iter().map(|&i| backends.name(i)).collect();
    let what = format!("kill {} (a majority; upstream: every instance)", names.join(" and "));
    say(&what);
    let at = unix_now();
    for &i in &lost {
        backends.kill(i);
    }
    events.push((what, at));
    std::thread::sleep(phase);
    let what = format!("restart {}", names.join(" and "));
    say(&what);
    let at = unix_now();
    backends.restart_many(&lost)?;
    events.push((what, at));
    std::thread::sleep(phase);
    stop.store(true, Ordering::SeqCst);
    client.join().map_err(|_| anyhow::anyhow!("the pushing client panicked"))?;
    // Let the last pushes be scraped.
    std::thread::sleep(SCRAPE_INTERVAL * 3);
    let ended = unix_now();

    let pushes = std::mem::take(&mut *pushes.lock().expect("push log"));
    let lines: Vec<String> = pushes.iter().map(|p| format!("{:.3} {:.3} {}", p.started, p.finished, p.ok)).collect();
    std::fs::write(dir.join("pushes.txt"), lines.join("\n") + "\n")?;
    let disruptions: Vec<Disruption> = events
        .into_iter()
        .map(|(what, at)| Disruption { window: failover::window_after(at, &pushes), what, at })
        .collect();
    let range = format!("[{}s]", (ended - started).ceil() as u64 + 5);
    let one = |expr: &str| -> anyhow::Result<Vec<(f64, f64)>> {
        let series = services::query_raw(&prometheus, &format!("{expr}{range}"), ended)?;
        Ok(series.into_iter().flat_map(|s| s.samples).collect())
    };
    let up = one("up{job=\"pushgateway\"}")?;
    let pushed = one(PUSHED)?;
    let batch = one(BATCH)?;
    for (name, samples) in [("up", &up), ("pushed", &pushed), ("batch", &batch)] {
        let lines: Vec<String> = samples.iter().map(|(t, v)| format!("{t:.3} {v}")).collect();
        std::fs::write(dir.join(format!("samples-{name}.txt")), lines.join("\n") + "\n")?;
    }
    let groups = groups_on(&backends.addresses())?;
    for (i, g) in groups.iter().enumerate() {
        std::fs::write(dir.join(format!("groups-{}.json", i + 1)), serde_json::to_vec_pretty(g)?)?;
    }
    let interval = SCRAPE_INTERVAL.as_secs_f64();
    let stalled = failover::stalls(&pushes, STALL_TOLERANCE.as_secs_f64());
    for (from, to) in &stalled {
        say(&format!("the machine stalled: the harness did not run from {from:.3} to {to:.3}"));
    }
    Ok(Report {
        target: target.to_string(),
        scrapes: up.len(),
        scrapes_ok: up.iter().filter(|(_, v)| *v == 1.0).count(),
        backward: failover::backward_steps(&pushed),
        longest_gap: failover::longest_gap(&pushed),
        excessive: failover::excessive_gaps(&pushed, &disruptions, &stalled, interval),
        stalled,
        batch_missing: failover::missing_from_scrapes(&up, &batch).len(),
        identical: groups.windows(2).all(|w| w[0] == w[1]),
        pushes,
        disruptions,
    })
}

fn seconds(window: Option<f64>) -> String {
    window.map_or("never".to_string(), |w| format!("{w:.2} s"))
}

/// The side-by-side table (markdown).
fn table(reports: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("pushes acknowledged".into(), Vec::new()),
        ("kill the leader (upstream: one instance); until a push is accepted".into(), Vec::new()),
        ("restart it; until a push is accepted".into(), Vec::new()),
        ("kill a follower (upstream: the other); until a push is accepted".into(), Vec::new()),
        ("restart it; until a push is accepted".into(), Vec::new()),
        ("kill a majority (upstream: both); until a push is accepted".into(), Vec::new()),
        ("restart them; until a push is accepted".into(), Vec::new()),
        ("successful scrapes".into(), Vec::new()),
        ("longest gap between scraped samples".into(), Vec::new()),
        ("gaps longer than the failover window + 2 scrape intervals".into(), Vec::new()),
        ("scraped value went backwards".into(), Vec::new()),
        ("the machine stalled (the harness did not run; excused from gaps)".into(), Vec::new()),
        ("successful scrapes without the batch job's series".into(), Vec::new()),
        ("pushed groups identical on every node at the end".into(), Vec::new()),
    ];
    for r in reports {
        let acked = r.pushes.iter().filter(|p| p.ok).count();
        let mut cells = vec![format!("{acked} of {}", r.pushes.len())];
        cells.extend(r.disruptions.iter().map(|d| seconds(d.window)));
        cells.push(format!("{} of {}", r.scrapes_ok, r.scrapes));
        cells.push(format!("{:.1} s", r.longest_gap));
        cells.push(r.excessive.len().to_string());
        cells.push(match r.backward.first() {
            None => "never".to_string(),
            Some((_, from, to)) => format!("{} times (e.g. {from} → {to})", r.backward.len()),
        });
        let stalled: f64 = r.stalled.iter().map(|(from, to)| to - from).sum();
        cells.push(if r.stalled.is_empty() {
            "never".to_string()
        } else {
            format!("{} times, {stalled:.1} s", r.stalled.len())
        });
        cells.push(r.batch_missing.to_string());
        cells.push(if r.identical { "yes" } else { "no" }.to_string());
        for (row, cell) in rows.iter_mut().zip(cells) {
            row.1.push(cell);
        }
    }
    let mut out = format!(
        "| | {} |\n|---|{}\n",
        reports.iter().map(|r| r.target.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(reports.len())
    );
    for (name, cells) in rows {
        out += &format!("| {name} | {} |\n", cells.join(" | "));
    }
    out
}

fn run(o: &Options) -> anyhow::Result<bool> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let dir = o.out.join(format!("{stamp}-lb-failover"));
    std::fs::create_dir_all(&dir)?;
    eprintln!("run directory {}", dir.display());
    let binary = o.binary.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        PathBuf::from(target).join("debug").join("pushgateway")
    });

    let mut reports = Vec::new();
    {
        // The server's own timing, not testkit's loaded-machine one: this run shows the
        // failover users get.
        let cluster = ClusterUnderTest::start(&binary, &binary, &dir.join("ours"), 3, &[], None, false)?;
        let mut ours = Ours(cluster);
        reports.push(scenario("this project, 3 nodes", &mut ours, &dir.join("ours"), o)?);
    }
    if !o.no_upstream {
        let mut instances = Vec::new();
        for i in 1..=2 {
            let web = format!("127.0.0.1:{}", free_port()?);
            let data = dir.join(format!("upstream/instance{i}"));
            std::fs::create_dir_all(&data)?;
            let args = vec![
                format!("--web.listen-address={web}"),
                format!("--persistence.file={}", data.join("state").display()),
            ];
            let service = Service::start(&format!("upstream {i}"), &o.upstream, args, data.join("log"))?;
            services::wait_ok(&format!("http://{web}/-/ready"), Duration::from_secs(30))?;
            instances.push((service, web));
        }
        let mut upstream = Upstream(instances);
        reports.push(scenario("upstream 1.5.1, 2 instances", &mut upstream, &dir.join("upstream"), o)?);
    }

    let ours = &reports[0];
    let failures = ours.failures();
    let mut text = table(&reports);
    text += &format!(
        "\nScraped every {} ms through haproxy; a push every {} ms; {} s between events.\n",
        SCRAPE_INTERVAL.as_millis(),
        PUSH_EVERY.as_millis(),
        o.phase
    );
    match failures.is_empty() {
        true => text += "\nthis project: every check passed\n",
        false => text += &format!("\nthis project FAILED: {}\n", failures.join("; ")),
    }
    std::fs::write(dir.join("report.md"), &text)?;
    println!("{text}");
    Ok(failures.is_empty())
}

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("lb-failover: {e:#}");
            ExitCode::from(2)
        }
    }
}
