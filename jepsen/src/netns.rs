//! Network namespaces for partitions: one namespace per node, all joined by a bridge in a
//! hub namespace in which the harness itself runs. Addresses are `10.66.<net>.<node id>`
//! (the hub is `.254`), inside namespaces the harness creates and deletes; nothing is
//! routed anywhere else.
//!
//! A partition isolates a node from its peers (blackhole routes between node addresses,
//! both ways) while clients in the hub can still reach it, so a deposed leader keeps receiving requests, the situation where stale
//! reads and lost writes hide.

use std::process::Command;

use anyhow::{bail, Context};

/// Runs `ip`/`tc` with arguments; fails with its stderr.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The namespaces of one run.
#[derive(Clone, Debug)]
pub struct Network {
    /// Short unique prefix of namespace and interface names.
    pub prefix: String,
    /// Third octet of the run's subnet.
    pub net: u8,
}

impl Network {
    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    pub fn node_ns(&self, id: u64) -> String {
        format!("{}n{id}", self.prefix)
    }

    pub fn node_ip(&self, id: u64) -> String {
        format!("10.66.{}.{id}", self.net)
    }

    fn veth(&self, id: u64) -> (String, String) {
        (format!("{}v{id}a", self.prefix), format!("{}v{id}b", self.prefix))
    }

    /// Creates the hub namespace and its bridge (from the root namespace).
    pub fn create_hub(prefix: &str, net: u8) -> anyhow::Result<Network> {
        let n = Network { prefix: prefix.to_string(), net };
        let hub = n.hub();
        run("ip", &["netns", "add", &hub])?;
        run("ip", &["-n", &hub, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &hub, "addr", "add", &format!("10.66.{net}.254/24"), "dev", "br0"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        Ok(n)
    }

    /// Creates node `id`'s namespace, wired to the hub's bridge.
    pub fn add_node(&self, id: u64) -> anyhow::Result<()> {
        let (ns, hub) = (self.node_ns(id), self.hub());
        let (inside, outside) = self.veth(id);
        run("ip", &["netns", "add", &ns])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &hub, "link", "add", &inside, "type", "veth", "peer", "name", &outside])?;
        run("ip", &["-n", &hub, "link", "set", &inside, "netns", &ns])?;
        run("ip", &["-n", &ns, "addr", "add", &format!("{}/24", self.node_ip(id)), "dev", &inside])?;
        run("ip", &["-n", &ns, "link", "set", &inside, "up"])?;
        run("ip", &["-n", &hub, "link", "set", &outside, "master", "br0"])?;
        run("ip", &["-n", &hub, "link", "set", &outside, "up"])?;
        Ok(())
    }

    /// Drops all traffic between node `id` and the nodes `peers`, both ways: blackhole
    /// routes to the peers in the node's namespace and to the node in each peer's.
    /// (Routes need no traffic-control kernel modules, which this kind of machine lacks.)
    pub fn isolate(&self, id: u64, peers: &[u64]) -> anyhow::Result<()> {
        self.routes("add", id, peers)
    }

    /// Undoes [`Network::isolate`].
    pub fn heal(&self, id: u64, peers: &[u64]) -> anyhow::Result<()> {
        self.routes("del", id, peers)
    }

    fn routes(&self, verb: &str, id: u64, peers: &[u64]) -> anyhow::Result<()> {
        for peer in peers {
            for (from, to) in [(id, *peer), (*peer, id)] {
                let target = format!("{}/32", self.node_ip(to));
                run("ip", &["-n", &self.node_ns(from), "route", verb, "blackhole", &target])?;
            }
        }
        Ok(())
    }

    /// Deletes every namespace of the run (node namespaces and the hub).
    pub fn delete_all(prefix: &str) {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with(prefix) {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}
