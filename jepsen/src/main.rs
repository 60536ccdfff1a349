//! `jepsen`: start a cluster of real nodes, drive concurrent clients, inject faults,
//! heal, and check the recorded history. Exit status: 0 valid, 1 invalid, 2 unknown.
//!
//! ```text
//! cargo run -p jepsen -- --nodes 3 --duration 60 --nemesis kill,pause --seed 7
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use jepsen::checker::{self, Verdict};
use jepsen::cluster::ClusterUnderTest;
use jepsen::history::{Action, GroupState, Op, Outcome};
use jepsen::nemesis::{self, FaultEvent, Nemesis};
use jepsen::netns;
use jepsen::poison::{self, PoisonStats, PoisonSummary};
use jepsen::workload::{self, Workload};

/// Options of a run.
#[derive(Parser, Debug, Clone)]
#[command(name = "jepsen", about = "Fault-injection harness for the clustered Pushgateway")]
struct Options {
    /// Number of nodes (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seconds of faults and traffic.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Operations per second per client (0: as fast as each client can, with 5-40 ms pauses).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Number of groups the clients write and read.
    #[arg(long, default_value_t = 8)]
    keys: u32,
    /// Faults to inject (comma separated); none for a fault-free run.
    #[arg(long, value_delimiter = ',', default_value = "kill,kill-leader,kill-minority,pause,membership")]
    nemesis: Vec<Nemesis>,
    /// No faults at all (overrides --nemesis).
    #[arg(long, default_value_t = false)]
    no_nemesis: bool,
    /// Seconds between the start of faults (each lasts about half of it).
    #[arg(long, default_value_t = 8)]
    interval: u64,
    /// Seed of every random choice of the run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The server binary. Default: $CARGO_TARGET_DIR/debug/pushgateway or target/debug/pushgateway.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// An earlier build (see tests/old-build.sh) the nodes start on, for the
    /// `mixed-version` nemesis, which upgrades them to `--binary` during the run.
    #[arg(long)]
    old_binary: Option<PathBuf>,
    /// Directory for run directories.
    #[arg(long, default_value = "jepsen/runs")]
    out: PathBuf,
    /// Append the run's summary to this file (JSON lines).
    #[arg(long)]
    record: Option<PathBuf>,
    /// `normal`; `poison`: the normal clients plus `--poisoners` clients sending
    /// hostile pushes (see `src/poison.rs`); `expiry`: the normal clients also push with
    /// short TTLs and delete by match.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Normal)]
    workload: WorkloadKind,
    /// Clients sending hostile pushes with `--workload poison`.
    #[arg(long, default_value_t = 2)]
    poisoners: usize,
    /// Extra flag for every node (repeatable), e.g. a test-only fault.
    #[arg(long = "server-flag", allow_hyphen_values = true)]
    server_flags: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum WorkloadKind {
    Normal,
    Poison,
    Expiry,
}

/// What a run found.
#[derive(Serialize)]
struct Summary {
    workload: WorkloadKind,
    /// With `--workload poison`: what became of the hostile pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    poison: Option<PoisonSummary>,
    seed: u64,
    nodes: usize,
    duration_s: u64,
    clients: usize,
    nemeses: Vec<Nemesis>,
    command: String,
    attempted: usize,
    acknowledged_writes: usize,
    failed: usize,
    unknown: usize,
    lost: Vec<u64>,
    linearizable: Verdict,
    converged_ms: Option<u64>,
    panics: Vec<String>,
    faults: Vec<FaultEvent>,
    availability: f64,
    recovery_ms_max: Option<u64>,
    /// The earlier build the nodes started on (the mixed-version nemesis).
    #[serde(skip_serializing_if = "Option::is_none")]
    old_binary: Option<String>,
    /// The replicated-format version each member reports at the end (once every member
    /// runs the build under test, it must be the highest that build understands).
    format_versions: BTreeMap<u64, Option<u64>>,
    /// Terms in which the nodes were seen leading, polled every 200 ms, and those in
    /// which more than one node said it led (a split brain: must be none).
    terms_seen: usize,
    two_leader_terms: Vec<u64>,
    verdict: &'static str,
}

fn default_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("debug").join("pushgateway")
}

/// The `job="jepsen"` lines of a node's scrape, or `None` if it cannot serve one.
fn jepsen_lines(http: &reqwest::blocking::Client, base: &str) -> Option<Vec<String>> {
    let resp = http.get(format!("{base}/metrics")).send().ok()?;
    if resp.status().as_u16() != 200 {
        return None;
    }
    Some(resp.text().ok()?.lines().filter(|l| l.contains("job=\"jepsen\"")).map(str::to_string).collect())
}

/// The `job="poison"` series a node serves (there must be none).
fn poison_lines(http: &reqwest::blocking::Client, base: &str) -> Vec<String> {
    let text = http.get(format!("{base}/metrics")).send().and_then(|r| r.text()).unwrap_or_default();
    text.lines().filter(|l| l.contains("job=\"poison\"")).map(str::to_string).collect()
}

/// Polls every node's `/api/v1/cluster` until the run stops, recording for each term the
/// Raft ids of the nodes that said they led in it.
fn watch_leaders(w: &Workload, leaders: &Mutex<BTreeMap<u64, BTreeSet<u64>>>) {
    let Ok(http) = reqwest::blocking::Client::builder().timeout(Duration::from_millis(500)).build() else { return };
    while !w.stop.load(Ordering::SeqCst) {
        let nodes = w.nodes.read().expect("nodes").clone();
        for base in nodes {
            let Ok(text) = http.get(format!("{base}/api/v1/cluster")).send().and_then(|r| r.text()) else { continue };
            let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if let (Some("leader"), Some(term), Some(id)) =
                (status["role"].as_str(), status["term"].as_u64(), status["node_id"].as_u64())
            {
                leaders.lock().expect("leaders").entry(term).or_default().insert(id);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The replicated-format version each member reports, once all of them report the
/// highest their build understands (what the leader raises it to within seconds), or
/// as they are after 30 s. `None` for a member that does not say (an earlier build).
/// Whether they settled so.
fn settled_format_versions(
    http: &reqwest::blocking::Client,
    cluster: &ClusterUnderTest,
) -> (BTreeMap<u64, Option<u64>>, bool) {
    let look = || -> BTreeMap<u64, (Option<u64>, Option<u64>)> {
        cluster
            .members()
            .into_iter()
            .map(|i| {
                let node = &cluster.nodes[i];
                let text = http.get(format!("{}/api/v1/cluster", node.base())).send().and_then(|r| r.text());
                let status: serde_json::Value =
                    text.ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
                (node.id, (status["format_version"].as_u64(), status["format_supported"].as_u64()))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = look();
        let settled = seen.values().all(|(version, supported)| version.is_some() && version == supported);
        if settled || Instant::now() >= deadline {
            return (seen.into_iter().map(|(id, (version, _))| (id, version)).collect(), settled);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Set in the re-executed harness that runs inside the hub namespace: `prefix:net`.
const INSIDE_ENV: &str = "PGW_JEPSEN_NETNS";

/// With the partition nemesis, the harness creates a hub namespace, re-executes itself
/// inside it (so that it reaches the nodes' namespaces), and deletes every namespace of
/// the run afterwards, whatever happened.
fn run_in_namespaces() -> anyhow::Result<ExitCode> {
    let pid = std::process::id();
    let prefix = format!("pj{}", pid % 100_000);
    let net = (pid % 250) as u8 + 1;
    netns::Network::create_hub(&prefix, net)?;
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{prefix}h")])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INSIDE_ENV, format!("{prefix}:{net}"))
        .status();
    netns::Network::delete_all(&prefix);
    let code = status?.code().unwrap_or(2);
    Ok(ExitCode::from(code as u8))
}

fn main() -> ExitCode {
    let options = Options::parse();
    let wants_partition = !options.no_nemesis && options.nemesis.contains(&Nemesis::Partition);
    if wants_partition && std::env::var(INSIDE_ENV).is_err() {
        return run_in_namespaces().unwrap_or_else(|e| {
            eprintln!("jepsen: {e:#}");
            ExitCode::from(2)
        });
    }
    match run(&options) {
        Ok(summary) => match summary.verdict {
            "valid" => ExitCode::SUCCESS,
            "invalid" => ExitCode::from(1),
            _ => ExitCode::from(2),
        },
        Err(e) => {
            eprintln!("jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The harness log: stderr and `harness.log` in the run directory.
struct Log(Mutex<std::fs::File>);

impl Log {
    fn open(path: &std::path::Path) -> anyhow::Result<Log> {
        Ok(Log(Mutex::new(std::fs::File::create(path)?)))
    }

    fn say(&self, line: &str) {
        eprintln!("{line}");
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The nemeses as the command line spells them (`kill,kill-leader`), or `none`.
fn nemesis_names(nemeses: &[Nemesis]) -> String {
    use clap::ValueEnum;
    if nemeses.is_empty() {
        return "kill --no-nemesis".to_string();
    }
    nemeses.iter().filter_map(|n| n.to_possible_value()).map(|v| v.get_name().to_string()).collect::<Vec<_>>().join(",")
}

fn run(o: &Options) -> anyhow::Result<Summary> {
    let nemeses: Vec<Nemesis> = if o.no_nemesis { Vec::new() } else { o.nemesis.clone() };
    let binary = o.binary.clone().unwrap_or_else(default_binary);
    let mixed = nemeses.contains(&Nemesis::MixedVersion);
    let first = match (&o.old_binary, mixed) {
        (Some(old), true) => old.clone(),
        (None, true) => anyhow::bail!("the mixed-version nemesis needs --old-binary"),
        (_, false) => binary.clone(),
    };
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let dir = o.out.join(format!("{stamp}-seed{}", o.seed));
    std::fs::create_dir_all(&dir)?;
    let command = format!(
        "cargo run -p jepsen -- --nodes {} --duration {} --clients {} --rate {} --keys {} --interval {} --seed {} --nemesis {}",
        o.nodes,
        o.duration,
        o.clients,
        o.rate,
        o.keys,
        o.interval,
        o.seed,
        nemesis_names(&nemeses)
    ) + &o.server_flags.iter().map(|f| format!(" --server-flag={f}")).collect::<String>()
        + &o.old_binary.iter().filter(|_| mixed).map(|b| format!(" --old-binary {}", b.display())).collect::<String>()
        + match o.workload {
            WorkloadKind::Normal => "",
            WorkloadKind::Poison => " --workload poison",
            WorkloadKind::Expiry => " --workload expiry",
        };
    let log = Log::open(&dir.join("harness.log"))?;
    log.say(&format!("run directory {}; {command}", dir.display()));
    // The loaded-machine timing with the server's default propose timeout (a push that
    // times out is an indeterminate operation, which the checker handles); a
    // --server-flag naming a timing flag replaces the default.
    let mut timing = testkit::cluster_timing("5s", &o.server_flags);
    timing.extend(o.server_flags.iter().cloned());
    let poisoned = o.workload == WorkloadKind::Poison;
    if poisoned && !o.server_flags.iter().any(|f| f.starts_with("--web.body-read-timeout")) {
        // Stalled bodies are answered within the run, not after the default 30 s.
        timing.push("--web.body-read-timeout=2s".to_string());
    }
    let net = std::env::var(INSIDE_ENV).ok().and_then(|v| {
        let (prefix, net) = v.split_once(':')?;
        Some(netns::Network { prefix: prefix.to_string(), net: net.parse().ok()? })
    });
    let lazy_disks = nemeses.contains(&Nemesis::LazyFs);
    let mut cluster = ClusterUnderTest::start(&binary, &first, &dir, o.nodes, &timing, net, lazy_disks)?;
    let w = Arc::new(Workload {
        start: Instant::now(),
        nodes: RwLock::new(cluster.nodes.iter().map(|n| n.base()).collect()),
        history: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(1),
        stop: AtomicBool::new(false),
        keys: o.keys,
        rate: o.rate,
        expiry: o.workload == WorkloadKind::Expiry,
    });
    let mut clients: Vec<_> = (0..o.clients)
        .map(|i| {
            let w = w.clone();
            let seed = o.seed;
            std::thread::spawn(move || workload::run_client(w, i, seed))
        })
        .collect();
    let leaders: Arc<Mutex<BTreeMap<u64, BTreeSet<u64>>>> = Arc::default();
    let watcher = {
        let (w, leaders) = (w.clone(), leaders.clone());
        std::thread::spawn(move || watch_leaders(&w, &leaders))
    };
    let poison = Arc::new(PoisonStats::default());
    if poisoned {
        clients.extend((0..o.poisoners).map(|i| {
            let (w, poison, seed) = (w.clone(), poison.clone(), o.seed);
            std::thread::spawn(move || poison::run_poisoner(w, poison, i, seed))
        }));
    }

    // Faults, on the seed's schedule, until the duration is over.
    let mut rng = SmallRng::seed_from_u64(o.seed);
    let mut faults = Vec::new();
    let begin = Instant::now();
    let end = begin + Duration::from_secs(o.duration);
    let interval = Duration::from_secs(o.interval.max(2));
    let drawn: Vec<Nemesis> = nemeses.iter().copied().filter(|n| *n != Nemesis::MixedVersion).collect();
    let mut upgrades: Vec<Duration> =
        if mixed { nemesis::upgrade_times(o.nodes, Duration::from_secs(o.duration)) } else { Vec::new() };
    // The upgrades due by now, between faults: a node that a fault has down is left for
    // the next look.
    let mut upgrade_due = |cluster: &mut ClusterUnderTest, rng: &mut SmallRng, faults: &mut Vec<FaultEvent>| {
        while upgrades.first().is_some_and(|t| begin.elapsed() >= *t) {
            let start_ms = w.now_ms();
            match nemesis::upgrade_one(cluster, rng)? {
                Some(node_id) => {
                    upgrades.remove(0);
                    *w.nodes.write().expect("nodes") = cluster.nodes.iter().map(|n| n.base()).collect();
                    log.say(&format!("{start_ms:>7} ms  MixedVersion node {node_id} upgraded to the build under test"));
                    faults.push(FaultEvent { nemesis: Nemesis::MixedVersion, node_id, start_ms, heal_ms: w.now_ms() });
                }
                None => break,
            }
        }
        anyhow::Ok(())
    };
    while Instant::now() < end {
        let (fault_for, quiet_for) = nemesis::timings(&mut rng, interval);
        std::thread::sleep(quiet_for.min(end.saturating_duration_since(Instant::now())));
        upgrade_due(&mut cluster, &mut rng, &mut faults)?;
        if Instant::now() >= end {
            break;
        }
        let Some(&kind) = drawn.choose(&mut rng) else { continue };
        let start_ms = w.now_ms();
        let nemesis::Injected { active, node_id, note } = nemesis::inject(kind, &mut cluster, &mut rng)?;
        *w.nodes.write().expect("nodes") = cluster.nodes.iter().map(|n| n.base()).collect();
        log.say(&format!("{start_ms:>7} ms  {kind:?} node {node_id} {note}"));
        std::thread::sleep(fault_for);
        nemesis::heal(active, &mut cluster)?;
        faults.push(FaultEvent { nemesis: kind, node_id, start_ms, heal_ms: w.now_ms() });
        upgrade_due(&mut cluster, &mut rng, &mut faults)?;
    }
    w.stop.store(true, Ordering::SeqCst);
    for c in clients {
        let _ = c.join();
    }
    let _ = watcher.join();
    let leaders = std::mem::take(&mut *leaders.lock().expect("leaders"));
    let two_leader_terms: Vec<u64> = leaders.iter().filter(|(_, ids)| ids.len() > 1).map(|(term, _)| *term).collect();
    if !two_leader_terms.is_empty() {
        log.say(&format!("more than one leader in a term: {leaders:?}"));
    }

    // Heal everything and let the cluster converge.
    for i in cluster.members() {
        if cluster.nodes[i].paused {
            cluster.nodes[i].resume();
        }
        if !cluster.nodes[i].running() {
            cluster.restart(i)?;
        }
    }
    cluster.wait_ready(Duration::from_secs(120))?;
    let http = workload::client();
    let live: Vec<String> = cluster.members().into_iter().map(|i| cluster.nodes[i].base()).collect();
    let heal_done = Instant::now();
    let mut converged_ms = None;
    while heal_done.elapsed() < Duration::from_secs(60) {
        let views: Vec<Option<Vec<String>>> = live.iter().map(|b| jepsen_lines(&http, b)).collect();
        if views.iter().all(Option::is_some) && views.windows(2).all(|p| p[0] == p[1]) {
            converged_ms = Some(heal_done.elapsed().as_millis() as u64);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let (format_versions, settled) = settled_format_versions(&http, &cluster);

    // Final state, as a last read of every key (from the first live node).
    let mut history = std::mem::take(&mut *w.history.lock().expect("history"));
    let mut final_state: BTreeMap<u32, GroupState> = BTreeMap::new();
    let invoke_ms = w.now_ms();
    let doc: serde_json::Value =
        serde_json::from_str(&http.get(format!("{}/api/v1/metrics", live[0])).send()?.text()?)?;
    let complete_ms = w.now_ms();
    let poison = poisoned.then(|| {
        let stored: Vec<String> =
            live.iter().flat_map(|b| poison_lines(&http, b).into_iter().map(move |l| format!("{b}: {l}"))).collect();
        poison.summary(stored)
    });
    for key in 0..o.keys {
        let observed = workload::observe(&doc, key);
        final_state.insert(key, observed);
        history.push(Op {
            id: w.next_id.fetch_add(1, Ordering::SeqCst),
            client: usize::MAX,
            node: 0,
            key,
            action: Action::Read { observed: Some(observed) },
            invoke_ms,
            complete_ms,
            outcome: Outcome::Ok,
            status: 200,
        });
    }
    cluster.stop_all();

    let lost = checker::lost_writes(&history, &final_state);
    let linearizable = checker::linearizable(&history);
    let mut panics = Vec::new();
    for node in &cluster.nodes {
        let log = std::fs::read_to_string(node.dir.join("node.log")).unwrap_or_default();
        panics.extend(log.lines().filter(|l| l.contains("panicked")).map(|l| format!("node {}: {l}", node.id)));
    }
    let writes: Vec<&Op> = history.iter().filter(|o| !matches!(o.action, Action::Read { .. })).collect();
    let acknowledged_writes = writes.iter().filter(|o| o.outcome == Outcome::Ok).count();
    let availability = if writes.is_empty() { 1.0 } else { acknowledged_writes as f64 / writes.len() as f64 };
    let recovery_ms_max = faults
        .iter()
        .filter_map(|f| {
            history
                .iter()
                .filter(|op| op.outcome == Outcome::Ok && op.invoke_ms >= f.heal_ms && op.client != usize::MAX)
                .map(|op| op.complete_ms - f.heal_ms)
                .min()
        })
        .max();
    let poison_held = poison.as_ref().is_none_or(|p| p.wrong.is_empty() && p.stored.is_empty());
    if !settled {
        log.say(&format!("the members did not settle on their build's replicated-format version: {format_versions:?}"));
    }
    let held = lost.is_empty()
        && panics.is_empty()
        && converged_ms.is_some()
        && poison_held
        && settled
        && two_leader_terms.is_empty();
    let verdict = match (&linearizable, held) {
        (Verdict::Invalid(_), _) | (_, false) => "invalid",
        (Verdict::Unknown(_), true) => "unknown",
        (Verdict::Valid, true) => "valid",
    };
    let summary = Summary {
        workload: o.workload,
        poison,
        seed: o.seed,
        nodes: o.nodes,
        duration_s: o.duration,
        clients: o.clients,
        nemeses: nemeses.clone(),
        command,
        attempted: history.iter().filter(|op| op.client != usize::MAX).count(),
        acknowledged_writes,
        failed: history.iter().filter(|op| op.outcome == Outcome::Fail).count(),
        unknown: history.iter().filter(|op| op.outcome == Outcome::Info).count(),
        lost,
        linearizable,
        converged_ms,
        panics,
        faults,
        availability,
        recovery_ms_max,
        old_binary: o.old_binary.as_ref().filter(|_| mixed).map(|b| b.display().to_string()),
        format_versions,
        terms_seen: leaders.len(),
        two_leader_terms,
        verdict,
    };
    let mut file = std::fs::File::create(dir.join("history.jsonl"))?;
    for op in &history {
        writeln!(file, "{}", serde_json::to_string(op)?)?;
    }
    std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&summary)?)?;
    if let Some(record) = &o.record {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(record)?;
        writeln!(f, "{}", serde_json::to_string(&summary)?)?;
    }
    if let Some(p) = &summary.poison {
        log.say(&format!(
            "poison: {} sent, {} refused, {} unanswered (node down), {} wrongly answered {:?}, {} stored {:?}",
            p.sent,
            p.refused,
            p.unanswered,
            p.wrong.len(),
            p.wrong,
            p.stored.len(),
            p.stored
        ));
    }
    log.say(&format!(
        "verdict {}: {} ops, {} acknowledged writes, {} unknown, {} lost, linearizable {:?}, converged in {:?} ms, \
         availability {:.2}, max recovery {:?} ms",
        summary.verdict,
        summary.attempted,
        summary.acknowledged_writes,
        summary.unknown,
        summary.lost.len(),
        matches!(summary.linearizable, Verdict::Valid),
        summary.converged_ms,
        summary.availability,
        summary.recovery_ms_max
    ));
    Ok(summary)
}
