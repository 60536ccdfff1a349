//! The servers under test, each started fresh in its own directory: upstream's
//! Pushgateway (in memory, `--persistence.file=`), this project as one node, and this
//! project as a three-node cluster on loopback.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::http::Connection;

/// One server process, restartable with the same arguments and data.
pub struct Server {
    pub web: SocketAddr,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Resident set size in bytes, from /proc.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a clean shutdown.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
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

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits for `/-/ready` to answer 200.
pub fn wait_ready(web: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = Connection::new(web).request("GET", "/-/ready", b"") {
            if r.status == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{web} not ready within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
        let mut servers = Vec::new();
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
                servers.push(Server {
                    web,
                    program: binaries.upstream.clone(),
                    args,
                    log: dir.join("server.log"),
                    child: None,
                });
            }
            Kind::Single => {
                let web = free_addr()?;
                let args = vec![
                    format!("--web.listen-address={web}"),
                    "--web.enable-admin-api".into(),
                    format!("--storage.path={}", dir.join("data").display()),
                ];
                servers.push(Server {
                    web,
                    program: binaries.ours.clone(),
                    args,
                    log: dir.join("server.log"),
                    child: None,
                });
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
                    servers.push(Server { web, program: binaries.ours.clone(), args, log, child: None });
                }
            }
        }
        for server in &mut servers {
            server.spawn()?;
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
            server.stop();
        }
        let started = Instant::now();
        for server in &mut self.servers {
            server.spawn()?;
        }
        for server in &self.servers {
            wait_ready(server.web, within)?;
        }
        Ok(started.elapsed())
    }

    pub fn webs(&self) -> Vec<SocketAddr> {
        self.servers.iter().filter(|s| s.child.is_some()).map(|s| s.web).collect()
    }

    /// Index of the leader as the first live node reports it (the only node's index
    /// when there is one).
    pub fn leader(&self, within: Duration) -> anyhow::Result<usize> {
        if self.servers.len() == 1 {
            return Ok(0);
        }
        let deadline = Instant::now() + within;
        loop {
            for server in self.servers.iter().filter(|s| s.child.is_some()) {
                if let Some(id) = cluster_leader(server.web) {
                    if let Some(i) = (id as usize).checked_sub(1).filter(|i| self.servers[*i].child.is_some()) {
                        return Ok(i);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no leader within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A node that is not the leader (the target's only node when it has one).
    pub fn follower(&self) -> anyhow::Result<usize> {
        if self.servers.len() == 1 {
            return Ok(0);
        }
        let leader = self.leader(Duration::from_secs(30))?;
        Ok((0..self.servers.len()).find(|i| *i != leader && self.servers[*i].child.is_some()).expect("three nodes"))
    }
}

/// The leader id from `/api/v1/cluster`, read with a tiny JSON scan (no client library).
fn cluster_leader(web: SocketAddr) -> Option<u64> {
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
    let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    json["data"]["leader"].as_u64().or_else(|| json["leader"].as_u64())
}
