//! `power-loss`: the scripted case behind docs/decisions/0018, round after round: a value
//! pushed and acknowledged, every node powered off at once (unsynced writes dropped), the
//! node that led brought back alone with a read sent to it, the others brought back a while
//! later. The read must show the acknowledged value. Exit status: 0 every read did, 1 one
//! went back in time, 2 the run could not be made.
//!
//! A node that resumed leadership at start without an election (openraft 0.9's own
//! start-up, `--debug.unsafe-resume-leadership`) answers that read at the read index it
//! restarted with, the last entry its state machine had on disk, which with the unsynced
//! apply is behind the acknowledged push: `.ci/run` runs both and expects 0 and 1.
//!
//! ```text
//! power-loss --binary target/debug/pushgateway --rounds 4 [--server-flag=...]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use jepsen::cluster::ClusterUnderTest;

#[derive(Parser, Debug)]
#[command(
    name = "power-loss",
    about = "Whole-cluster power loss with the leader back first: no read goes back in time"
)]
struct Options {
    /// The server binary. Default: $CARGO_TARGET_DIR/debug/pushgateway or target/debug/pushgateway
    #[arg(long)]
    binary: Option<PathBuf>,
    /// How many power losses.
    #[arg(long, default_value_t = 4)]
    rounds: u64,
    /// How long the first node back is alone.
    #[arg(long, default_value = "1500", value_name = "MS")]
    alone_ms: u64,
    /// Where the nodes' directories go (a temporary directory by default).
    #[arg(long)]
    out: Option<PathBuf>,
    /// An extra flag for every node (repeatable).
    #[arg(long = "server-flag", allow_hyphen_values = true)]
    server_flags: Vec<String>,
    /// Before each round's pushes, push this many MiB through the leader (replacing four
    /// groups of large label values), so that every node's WAL has rotated under load onto
    /// a file it recycled and the round's pushes are written over old log records when
    /// power goes (without it they are written over the primer of the node's start). The
    /// round fails to be made (exit 2) if any node's RocksDB reused no WAL file beyond the
    /// one at its start.
    #[arg(long, default_value_t = 0, value_name = "MIB")]
    fill_mib: u64,
}

/// How often a read is sent to the node that led while the cluster comes back.
const READ_EVERY: Duration = Duration::from_millis(40);
/// How long reads go on being sent after the other nodes are back.
const AFTER_OTHERS: Duration = Duration::from_millis(1500);

/// A text scrape of `url`, waiting while the node does not listen yet (it opens its
/// database first).
fn read(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<String> {
    for _ in 0..200 {
        match http.get(url).send() {
            Ok(resp) if resp.status().is_success() => return resp.text().map_err(anyhow::Error::from),
            Ok(resp) => anyhow::bail!("{url} answered {}", resp.status()),
            Err(e) if e.is_connect() => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("{url} never answered")
}

/// What one round found.
#[derive(Debug, PartialEq)]
enum Round {
    /// The read showed the acknowledged value.
    Fresh,
    /// The read showed an earlier value (or none).
    WentBack { acknowledged: u64, seen: Option<u64> },
}

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(rounds) if rounds.iter().all(|r| *r == Round::Fresh) => {
            println!("valid: {} rounds, every read after the power loss showed the acknowledged value", rounds.len());
            ExitCode::SUCCESS
        }
        Ok(rounds) => {
            let bad = rounds.iter().filter(|r| **r != Round::Fresh).count();
            println!("invalid: {bad} of {} rounds read a value from before an acknowledged push", rounds.len());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("power-loss: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The value of `v{instance="",job="power"}` in a text scrape.
fn value_in(text: &str) -> Option<u64> {
    jepsen::workload::sample_value(text, "v{instance=\"\",job=\"power\"}")
}

fn run(o: &Options) -> anyhow::Result<Vec<Round>> {
    let binary = o.binary.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string());
        PathBuf::from(target).join("debug/pushgateway")
    });
    let temp = tempdir()?;
    let root = o.out.clone().unwrap_or_else(|| temp.clone());
    std::fs::create_dir_all(&root)?;
    // Reads wait for the read barrier (never served stale) up to a propose timeout long
    // enough to cover the time the first node is alone.
    let mut timing = testkit::cluster_timing("10s", &o.server_flags);
    timing.push("--cluster.stale-reads-after=0s".to_string());
    timing.extend(o.server_flags.iter().cloned());
    let mut cluster = ClusterUnderTest::start(&binary, &binary, &root, 3, &timing, None, true)?;
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut rounds = Vec::new();
    let mut value = 0;
    for round in 1..=o.rounds {
        cluster.wait_ready(Duration::from_secs(60))?;
        let leader = cluster.leader().ok_or_else(|| anyhow::anyhow!("round {round}: no leader"))?;
        let base = cluster.nodes[leader].base();
        if o.fill_mib > 0 {
            fill(&http, &base, o.fill_mib)?;
            // A follower may still be receiving the fill when the leader has answered it.
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut reused = Vec::new();
            for node in &cluster.nodes {
                let db = node.data_dir().join("db");
                // One file is reused at every start, before any push (the node primes its WAL).
                let mut n = wal_files_reused(&db)?;
                while n < 2 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    n = wal_files_reused(&db)?;
                }
                anyhow::ensure!(
                    n >= 2,
                    "round {round}: {} MiB pushed and node {} reused no WAL file beyond the one at start",
                    o.fill_mib,
                    node.id
                );
                reused.push(n);
            }
            println!("round {round}: {} MiB pushed first; WAL files reused per node {reused:?}", o.fill_mib);
        }
        // A few acknowledged pushes in a row: each append (fsynced) makes the apply before
        // it durable; the last apply is the one a power loss drops.
        for _ in 0..3 {
            value += 1;
            let resp = http.put(format!("{base}/metrics/job/power")).body(format!("v {value}\n")).send()?;
            anyhow::ensure!(resp.status().is_success(), "round {round}: push answered {}", resp.status());
        }
        for node in &mut cluster.nodes {
            node.power_off();
        }
        cluster.restart(leader)?;
        // Reads sent to the node that led, one every READ_EVERY from its restart until a
        // while after the others are back: whichever of them passes the read barrier first
        // once its peers answer is the read that matters.
        let url = format!("{base}/metrics");
        let mut readers = Vec::new();
        let start = Instant::now();
        let alone = Duration::from_millis(o.alone_ms);
        let mut others_back = false;
        while start.elapsed() < alone + AFTER_OTHERS {
            if !others_back && start.elapsed() >= alone {
                for i in (0..cluster.nodes.len()).filter(|i| *i != leader) {
                    cluster.restart(i)?;
                }
                others_back = true;
            }
            let (http, url) = (http.clone(), url.clone());
            readers.push(std::thread::spawn(move || read(&http, &url)));
            std::thread::sleep(READ_EVERY);
        }
        let mut seen = Vec::new();
        for reader in readers {
            match reader.join().map_err(|_| anyhow::anyhow!("a reader panicked"))? {
                Ok(text) => seen.push(value_in(&text)),
                Err(e) => println!("round {round}: a read failed: {e:#}"),
            }
        }
        anyhow::ensure!(!seen.is_empty(), "round {round}: no read was answered");
        let behind: Vec<Option<u64>> = seen.iter().copied().filter(|v| *v != Some(value)).collect();
        let result = match behind.first() {
            None => Round::Fresh,
            Some(&first) => Round::WentBack { acknowledged: value, seen: first },
        };
        println!(
            "round {round}: node {} led; acknowledged {value}; {} reads answered, {} behind it {:?}",
            cluster.nodes[leader].id,
            seen.len(),
            behind.len(),
            result
        );
        rounds.push(result);
    }
    // Dropping the cluster stops the nodes and unmounts their disks.
    drop(cluster);
    let _ = std::fs::remove_dir_all(&temp);
    Ok(rounds)
}

/// Pushes `mib` MiB through `base`, one MiB per push (16 series with 64 KiB label values),
/// over four groups of job `fill`.
fn fill(http: &reqwest::blocking::Client, base: &str, mib: u64) -> anyhow::Result<()> {
    let value = "x".repeat(64 * 1024 - 64);
    for k in 0..mib {
        let body: String = (0..16).map(|i| format!("fill{{i=\"{i}\",v=\"{k}{value}\"}} {k}\n")).collect();
        let resp = http.put(format!("{base}/metrics/job/fill/instance/{}", k % 4)).body(body).send()?;
        anyhow::ensure!(resp.status().is_success(), "fill push answered {}", resp.status());
    }
    Ok(())
}

/// How many times the RocksDB database in `db` started a WAL on a recycled file since it
/// was opened, as its info log (`LOG`, read through the lazy disk) says.
fn wal_files_reused(db: &std::path::Path) -> anyhow::Result<usize> {
    let log = std::fs::read_to_string(db.join("LOG"))?;
    Ok(log.lines().filter(|l| l.contains("reusing log")).count())
}

/// A fresh directory under the system's temporary directory.
fn tempdir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let dir = std::env::temp_dir().join(format!("power-loss-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::value_in;

    #[test]
    fn the_value_is_read_from_a_text_scrape() {
        let text = "# TYPE v untyped\nv{instance=\"\",job=\"power\"} 7\npush_time_seconds{job=\"power\"} 1.7e9\n";
        assert_eq!(value_in(text), Some(7));
        assert_eq!(value_in("v{instance=\"\",job=\"other\"} 7\n"), None);
        assert_eq!(value_in("v{instance=\"\",job=\"power\"}x 7\n"), None, "another series");
    }
}
