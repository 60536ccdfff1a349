//! The servers under test, each started fresh in its own directory: upstream's
//! Pushgateway (in memory, `--persistence.file=`), this project as one node, and this
//! project as a three-node cluster on loopback.
//!
//! Cluster nodes run with the server's default Raft timing, not testkit's loaded-machine
//! timing: the failover and time-to-ready figures are meant to be what users get.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::{free_addr, Process, Spec};

use crate::http::Connection;

/// One server process, restartable with the same arguments and data; its stdout and
/// stderr go to a log file in the target's directory.
pub struct Server {
    pub web: SocketAddr,
    process: Process,
}

impl Server {
    /// Resident set size in bytes, from /proc.
    pub fn rss_bytes(&self) -> Option<u64> {
        self.process.rss_bytes()
    }

    /// What the process has spent so far (CPU per thread, storage writes), from /proc.
    pub fn usage(&self) -> crate::proc_stats::Usage {
        self.process.pid().map(crate::proc_stats::Usage::of).unwrap_or_default()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// SIGTERM and wait for the exit: a clean shutdown.
    fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        if self.process.is_running() {
            self.process.signal("TERM")?;
            self.process.wait_exit(within)?;
        }
        Ok(())
    }
}

/// What kind of server a target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Upstream, consistency checks on (its default).
    Upstream,
    /// Upstream with `--push.disable-consistency-check` (202, queued, unvalidated).
    UpstreamUnchecked,
    /// This project, one node.
    Single,
    /// This project, three nodes.
    Cluster,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Upstream => "upstream",
            Kind::UpstreamUnchecked => "upstream, no checks",
            Kind::Single => "ours, 1 node",
            Kind::Cluster => "ours, 3 nodes",
        }
    }

    pub fn is_ours(self) -> bool {
        matches!(self, Kind::Single | Kind::Cluster)
    }
}

/// A running target: its servers and directory.
pub struct Target {
    pub servers: Vec<Server>,
    pub dir: PathBuf,
}

/// Waits for `/-/ready` to answer 200.
pub fn wait_ready(web: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let ready = || Connection::new(web).request("GET", "/-/ready", b"").is_ok_and(|r| r.status == 200);
    Ok(testkit::wait_until(within, &format!("{web} ready"), ready)?)
}

/// Binaries the targets run.
pub struct Binaries {
    pub upstream: PathBuf,
    pub ours: PathBuf,
}

impl Target {
    pub fn start(kind: Kind, binaries: &Binaries, root: &Path) -> anyhow::Result<Target> {
        let dir = root.join(kind.label().replace([',', ' '], "-").replace("--", "-"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // (web address, what to run) of each server, started together below.
        let mut planned: Vec<(SocketAddr, Spec)> = Vec::new();
        match kind {
            Kind::Upstream | Kind::UpstreamUnchecked => {
                let web = free_addr()?;
                let mut args = vec![
                    format!("--web.listen-address={web}"),
                    "--web.enable-admin-api".into(),
                    "--persistence.file=".into(),
                ];
                if kind == Kind::UpstreamUnchecked {
                    args.push("--push.disable-consistency-check".into());
                }
                planned.push((web, Spec::new(&binaries.upstream).args(args).log_file(dir.join("server.log"))));
            }
            Kind::Single => {
                let web = free_addr()?;
                let args = vec![
                    format!("--web.listen-address={web}"),
                    "--web.enable-admin-api".into(),
                    format!("--storage.path={}", dir.join("data").display()),
                ];
                planned.push((web, Spec::new(&binaries.ours).args(args).log_file(dir.join("server.log"))));
            }
            Kind::Cluster => {
                let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect::<Result<_, _>>()?;
                let members: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("{}={p}", i + 1)).collect();
                for (i, peer) in peers.iter().enumerate() {
                    let web = free_addr()?;
                    let args = vec![
                        format!("--web.listen-address={web}"),
                        "--web.enable-admin-api".into(),
                        format!("--storage.path={}", dir.join(format!("node{}", i + 1)).display()),
                        format!("--cluster.node-id={}", i + 1),
                        format!("--cluster.listen-address={peer}"),
                        format!("--cluster.initial-members={}", members.join(",")),
                    ];
                    let log = dir.join(format!("node{}.log", i + 1));
                    planned.push((
                        web,
                        Spec::new(&binaries.ours).args(args).log_file(log).label(format!("node {}", i + 1)),
                    ));
                }
            }
        }
        let mut servers = Vec::new();
        for (web, spec) in planned {
            servers.push(Server { web, process: Process::start(spec)? });
        }
        for server in &servers {
            wait_ready(server.web, Duration::from_secs(60))?;
        }
        let target = Target { servers, dir };
        if kind == Kind::Cluster {
            target.leader(Duration::from_secs(30))?;
        }
        Ok(target)
    }

    /// Stops every server cleanly, starts them all again, and returns the time from the
    /// start until every one answers `/-/ready` with 200.
    pub fn restart_all(&mut self, within: Duration) -> anyhow::Result<Duration> {
        for server in &mut self.servers {
            server.stop(within)?;
        }
        let started = Instant::now();
        for server in &mut self.servers {
            server.process.restart()?;
        }
        for server in &self.servers {
            wait_ready(server.web, within)?;
        }
        Ok(started.elapsed())
    }

    /// What every server has spent so far, summed.
    pub fn usage(&self) -> crate::proc_stats::Usage {
        let mut total = crate::proc_stats::Usage::default();
        for server in self.servers.iter().filter(|s| s.is_running()) {
            total.add(&server.usage());
        }
        total
    }

    /// The highest log index any of this project's nodes reports (`/api/v1/cluster`).
    pub fn last_log_index(&self) -> Option<u64> {
        let running = self.servers.iter().filter(|s| s.is_running());
        running.filter_map(|s| cluster_status(s.web)?["last_log_index"].as_u64()).max()
    }

    /// What each of this project's nodes counted of its storage's time so far
    /// (`/api/v1/cluster`'s `storage`), by node index; `None` for a node that did not say.
    pub fn storage_timings(&self) -> Vec<Option<StorageTimings>> {
        let said = |s: &Server| {
            let status = cluster_status(s.web).filter(|_| s.is_running())?;
            StorageTimings::read(status.get("storage")?)
        };
        self.servers.iter().map(said).collect()
    }

    pub fn webs(&self) -> Vec<SocketAddr> {
        self.servers.iter().filter(|s| s.is_running()).map(|s| s.web).collect()
    }

    /// Index of the leader as the first live node reports it (the only node's index
    /// when there is one).
    pub fn leader(&self, within: Duration) -> anyhow::Result<usize> {
        if self.servers.len() == 1 {
            return Ok(0);
        }
        let leader = || {
            let reported = self.servers.iter().filter(|s| s.is_running()).filter_map(|s| cluster_leader(s.web));
            reported
                .filter_map(|id| (id as usize).checked_sub(1))
                .find(|i| self.servers.get(*i).is_some_and(Server::is_running))
        };
        Ok(testkit::wait_for_some(within, "a leader", leader)?)
    }

    /// A node that is not the leader (the target's only node when it has one).
    pub fn follower(&self) -> anyhow::Result<usize> {
        if self.servers.len() == 1 {
            return Ok(0);
        }
        let leader = self.leader(Duration::from_secs(30))?;
        Ok((0..self.servers.len()).find(|i| *i != leader && self.servers[*i].is_running()).expect("three nodes"))
    }
}

/// The leader id from `/api/v1/cluster`.
fn cluster_leader(web: SocketAddr) -> Option<u64> {
    let json = cluster_status(web)?;
    json["data"]["leader"].as_u64().or_else(|| json["leader"].as_u64())
}

/// `/api/v1/cluster` of this project's node at `web`, read over a plain socket (no client
/// library); upstream has none.
fn cluster_status(web: SocketAddr) -> Option<serde_json::Value> {
    let stream = std::net::TcpStream::connect_timeout(&web, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut stream = stream;
    use std::io::{Read, Write};
    stream
        .write_all(format!("GET /api/v1/cluster HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let body = &text[text.find("\r\n\r\n")? + 4..];
    serde_json::from_str(body.trim()).ok()
}

/// Storage operations of one kind a node counted, and the seconds its Raft waited for them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Waited {
    pub count: u64,
    pub seconds: f64,
}

impl Waited {
    fn read(storage: &serde_json::Value, count: &str, seconds: &str) -> Option<Waited> {
        Some(Waited { count: storage.get(count)?.as_u64()?, seconds: storage.get(seconds)?.as_f64()? })
    }

    fn since(&self, before: &Waited) -> Option<Waited> {
        let counted = self.count >= before.count && self.seconds >= before.seconds;
        counted.then(|| Waited { count: self.count - before.count, seconds: self.seconds - before.seconds })
    }

    /// Milliseconds per operation (`None` where there was none).
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.seconds * 1000.0 / self.count as f64)
    }
}

/// How long a node's Raft waited for its storage, as `/api/v1/cluster`'s `storage` says
/// (counted since the node started): its log appends, its apply batches and the entries
/// in them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StorageTimings {
    pub appends: Waited,
    pub applies: Waited,
    pub applied_entries: u64,
}

impl StorageTimings {
    fn read(storage: &serde_json::Value) -> Option<StorageTimings> {
        Some(StorageTimings {
            appends: Waited::read(storage, "log_appends", "log_append_seconds")?,
            applies: Waited::read(storage, "apply_batches", "apply_seconds")?,
            applied_entries: storage.get("applied_entries")?.as_u64()?,
        })
    }

    /// What was counted between `before` and `self`; `None` if a counter went down (the
    /// node restarted in between, and what it counted is not what happened since).
    pub fn since(&self, before: &StorageTimings) -> Option<StorageTimings> {
        Some(StorageTimings {
            appends: self.appends.since(&before.appends)?,
            applies: self.applies.since(&before.applies)?,
            applied_entries: self.applied_entries.checked_sub(before.applied_entries)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names `/api/v1/cluster` gives its storage counters are the ones read; what grew
    /// between two readings is their difference, and nothing when a counter went down (a
    /// node restarted in between).
    #[test]
    fn storage_timings_read_the_cluster_status_names_and_subtract() {
        let status = |appends: u64, seconds: f64| {
            serde_json::json!({"log_appends": appends, "log_append_seconds": seconds,
                "apply_batches": 4, "applied_entries": 9, "apply_seconds": 0.5})
        };
        let before = StorageTimings::read(&status(10, 0.01)).expect("read");
        let after = StorageTimings::read(&status(30, 0.05)).expect("read");
        assert_eq!(after.applies, Waited { count: 4, seconds: 0.5 });
        assert_eq!(after.applied_entries, 9);
        let grew = after.since(&before).expect("counted up");
        assert_eq!(grew.appends.count, 20);
        assert!((grew.appends.mean_ms().expect("appends") - 2.0).abs() < 1e-9, "{grew:?}");
        assert_eq!(grew.applies.mean_ms(), None, "no apply batch in between");
        assert_eq!(before.since(&after), None);
        assert_eq!(StorageTimings::read(&serde_json::json!({"log_appends": 1})), None);
    }
}
