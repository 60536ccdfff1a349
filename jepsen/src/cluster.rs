//! The nodes under test: real `pushgateway` processes on loopback, each with its own
//! data directory and log file under the run directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testkit::{free_port, Process, Spec};

use crate::lazyfs;
use crate::netns::Network;

/// One node: id, addresses, process.
pub struct NodeProc {
    pub id: u64,
    pub web: String,
    pub peer: String,
    pub dir: PathBuf,
    /// Command prefix (`ip netns exec <ns>`) when the node runs in its own namespace.
    launcher: Vec<String>,
    /// The server binary this node runs (an earlier build until it is upgraded).
    pub binary: PathBuf,
    args: Vec<String>,
    /// The process since its first start (restarts reuse it: same arguments, same log).
    process: Option<Process>,
    pub paused: bool,
    /// The data directory's lazy disk, when the run simulates power loss.
    disk: Option<lazyfs::Mount>,
}

impl NodeProc {
    pub fn base(&self) -> String {
        format!("http://{}", self.web)
    }

    pub fn running(&self) -> bool {
        self.process.as_ref().is_some_and(Process::is_running)
    }

    /// The program and its arguments: the binary, behind the launcher if there is one.
    fn command(&self) -> (PathBuf, Vec<String>) {
        let binary = self.binary.display().to_string();
        let (program, mut args) = match self.launcher.split_first() {
            Some((program, rest)) => (PathBuf::from(program), rest.iter().cloned().chain([binary]).collect()),
            None => (self.binary.clone(), Vec::new()),
        };
        args.extend(self.args.iter().cloned());
        (program, args)
    }

    /// Starts the node (again); its stdout and stderr go to `node.log` in its directory.
    fn spawn(&mut self) -> anyhow::Result<()> {
        match &mut self.process {
            Some(process) => process.restart()?,
            None => {
                let (program, args) = self.command();
                let spec = Spec::new(program)
                    .args(args)
                    .env("RUST_LOG", "info")
                    .log_file(self.dir.join("node.log"))
                    .label(format!("node {}", self.id));
                self.process = Some(Process::start(spec)?);
            }
        }
        self.paused = false;
        Ok(())
    }

    fn signal(&self, sig: &str) {
        if let Some(process) = &self.process {
            let _ = process.signal(sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(process) = &mut self.process {
            process.kill();
        }
        self.paused = false;
    }

    /// Simulated power loss: SIGKILL, then drop every write the node had not fsynced.
    /// Returns how many files lost data.
    pub fn power_off(&mut self) -> usize {
        self.kill();
        self.disk.as_ref().map_or(0, |mount| mount.disk.lose_unsynced())
    }

    /// The node's `--storage.path` (a lazy disk's mount point when the run simulates power
    /// loss: reads there see what the node wrote, synced or not).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Empties the data directory of a stopped node (what is inside it: it may be a
    /// mount); returns how many entries went.
    pub fn wipe(&mut self) -> anyhow::Result<usize> {
        anyhow::ensure!(!self.running(), "wipe of node {}, which is running", self.id);
        let data = self.data_dir();
        let mut removed = 0;
        for entry in std::fs::read_dir(&data)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    /// An upgrade, as an operator does it: SIGTERM, wait for the exit, start `binary` on
    /// the same data and flags.
    pub fn upgrade(&mut self, binary: &Path) -> anyhow::Result<()> {
        if self.paused {
            self.resume();
        }
        if let Some(process) = &mut self.process {
            if process.is_running() {
                process.signal("TERM")?;
                if process.wait_exit(Duration::from_secs(60)).is_err() {
                    process.kill();
                }
            }
        }
        self.binary = binary.to_path_buf();
        let (program, args) = self.command();
        match &mut self.process {
            Some(process) => process.restart_program(program, args)?,
            None => self.spawn()?,
        }
        self.paused = false;
        Ok(())
    }
}

/// The cluster under test.
pub struct ClusterUnderTest {
    pub nodes: Vec<NodeProc>,
    pub net: Option<Network>,
    /// The build under test: what nodes are upgraded to and what added nodes run.
    pub binary: PathBuf,
    root: PathBuf,
    timing: Vec<String>,
    next_id: u64,
    lazy_disks: bool,
}

impl ClusterUnderTest {
    /// Starts `n` nodes running `first` (the build under test, `binary`, or an earlier
    /// build that the mixed-version nemesis upgrades).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        binary: &Path,
        first: &Path,
        root: &Path,
        n: usize,
        timing: &[String],
        net: Option<Network>,
        lazy_disks: bool,
    ) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        let mut peers = Vec::new();
        for i in 0..n {
            let id = i as u64 + 1;
            peers.push(match &net {
                Some(net) => {
                    net.add_node(id)?;
                    format!("{}:9092", net.node_ip(id))
                }
                None => format!("127.0.0.1:{}", free_port()?),
            });
        }
        let members: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("{}={p}", i + 1)).collect();
        for (i, peer) in peers.iter().enumerate() {
            let id = i as u64 + 1;
            let extra = vec![format!("--cluster.initial-members={}", members.join(","))];
            nodes.push(Self::node(root, id, first, peer.clone(), timing, extra, net.as_ref(), lazy_disks)?);
        }
        let mut cluster = ClusterUnderTest {
            nodes,
            net,
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            timing: timing.to_vec(),
            next_id: n as u64 + 1,
            lazy_disks,
        };
        for node in &mut cluster.nodes {
            node.spawn()?;
        }
        cluster.wait_ready(Duration::from_secs(120))?;
        Ok(cluster)
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        root: &Path,
        id: u64,
        binary: &Path,
        peer: String,
        timing: &[String],
        extra: Vec<String>,
        net: Option<&Network>,
        lazy_disk: bool,
    ) -> anyhow::Result<NodeProc> {
        let (web, launcher) = match net {
            Some(net) => (
                format!("{}:9091", net.node_ip(id)),
                vec!["ip".to_string(), "netns".to_string(), "exec".to_string(), net.node_ns(id)],
            ),
            None => (format!("127.0.0.1:{}", free_port()?), Vec::new()),
        };
        let dir = root.join(format!("node{id}"));
        std::fs::create_dir_all(&dir)?;
        let disk = match lazy_disk {
            true => Some(lazyfs::mount(&dir.join("disk"), &dir.join("data"))?),
            false => None,
        };
        let mut args = vec![
            format!("--web.listen-address={web}"),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--cluster.node-id={id}"),
            format!("--cluster.listen-address={peer}"),
            format!("--cluster.secret-file={}", secret_file(root)?.display()),
            "--web.enable-admin-api".to_string(),
        ];
        args.extend(timing.iter().cloned());
        args.extend(extra);
        let binary = binary.to_path_buf();
        Ok(NodeProc { id, web, peer, dir, launcher, binary, args, process: None, paused: false, disk })
    }

    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.nodes[index].spawn()
    }

    /// Upgrades node `index` to the build under test.
    pub fn upgrade(&mut self, index: usize) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        self.nodes[index].upgrade(&binary)
    }

    /// Members still running an earlier build.
    pub fn not_upgraded(&self) -> Vec<usize> {
        self.members().into_iter().filter(|i| self.nodes[*i].binary != self.binary).collect()
    }

    /// Waits until every running, unpaused node answers `/-/ready` with 200, all within
    /// `within`.
    pub fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + within;
        for node in self.nodes.iter().filter(|n| n.running() && !n.paused) {
            let ready = || client.get(format!("{}/-/ready", node.base())).send().is_ok_and(|r| r.status() == 200);
            let left = deadline.saturating_duration_since(Instant::now());
            testkit::wait_until(left, &format!("node {} ready", node.id), ready)?;
        }
        Ok(())
    }

    /// The leader's index as one running node sees it.
    pub fn leader(&self) -> Option<usize> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
        for node in self.nodes.iter().filter(|n| n.running() && !n.paused) {
            let Ok(resp) = client.get(format!("{}/api/v1/cluster", node.base())).send() else { continue };
            let Ok(status) = resp.text().map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap_or_default())
            else {
                continue;
            };
            // A Raft id is the node id plus its incarnation above 2^32.
            if let Some(id) = status["leader"].as_u64() {
                return self.nodes.iter().position(|n| n.id == id & 0xffff_ffff && n.running());
            }
        }
        None
    }

    /// POSTs an admin request to some live node, retrying (elections, other faults) for
    /// up to a minute.
    fn admin(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            for node in self.nodes.iter().filter(|n| n.running() && !n.paused && !n.args.is_empty()) {
                match client
                    .post(format!("{}{path}", node.base()))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => last = format!("{}: {}", r.status(), r.text().unwrap_or_default()),
                    Err(e) => last = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("{path} {body}: {last}")
    }

    /// Removes node `index` from the membership (through the leader), stops it, and adds
    /// a fresh node under a new id that joins through a live member.
    pub fn replace(&mut self, index: usize) -> anyhow::Result<usize> {
        let via = self.nodes.iter().position(|n| n.running() && !n.paused && n.id != self.nodes[index].id);
        let via = via.context("no live node to administer through")?;
        self.admin("/api/v1/admin/cluster/remove", &serde_json::json!({ "id": self.nodes[index].id }))?;
        self.nodes[index].kill();
        let id = self.next_id;
        self.next_id += 1;
        let peer = match &self.net {
            Some(net) => {
                net.add_node(id)?;
                format!("{}:9092", net.node_ip(id))
            }
            None => format!("127.0.0.1:{}", free_port()?),
        };
        let extra = vec![format!("--cluster.join={}", self.nodes[via].peer)];
        let mut node = Self::node(
            &self.root,
            id,
            &self.binary,
            peer.clone(),
            &self.timing,
            extra,
            self.net.as_ref(),
            self.lazy_disks,
        )?;
        node.spawn()?;
        self.nodes.push(node);
        self.admin("/api/v1/admin/cluster/add", &serde_json::json!({ "id": id, "address": peer }))?;
        Ok(self.nodes.len() - 1)
    }

    /// Indexes of nodes that are members (running, or killed but not removed).
    pub fn members(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| !self.removed(*i)).collect()
    }

    fn removed(&self, index: usize) -> bool {
        // A removed node is one that was replaced: it is not running and a newer node exists
        // for it. We mark that by clearing its args.
        self.nodes[index].args.is_empty()
    }

    pub fn mark_removed(&mut self, index: usize) {
        self.nodes[index].args.clear();
    }

    pub fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if node.paused {
                node.resume();
            }
            node.kill();
        }
    }
}

impl Drop for ClusterUnderTest {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The run's peer secret, as a deployment has one: every node of the run (the ones a
/// membership change adds too) reads the same file, made at the first call.
fn secret_file(root: &Path) -> anyhow::Result<PathBuf> {
    let path = root.join("cluster-secret");
    if !path.exists() {
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        std::fs::write(&path, secret + "\n")?;
    }
    Ok(path)
}
