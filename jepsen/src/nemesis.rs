//! Faults: kill -9 of a random node or of the leader, SIGSTOP/SIGCONT pauses, partitions,
//! power loss that drops unsynced writes, and membership changes (remove a node, add a fresh one under a new id), on a schedule
//! drawn from the run's seed.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;

use crate::cluster::ClusterUnderTest;

/// The faults a run may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Nemesis {
    /// SIGKILL a random node, restart it after a while.
    Kill,
    /// SIGKILL the leader, restart it after a while.
    KillLeader,
    /// SIGKILL a minority of the nodes (1 of 3, 2 of 5), restart them after a while.
    KillMinority,
    /// SIGSTOP a random node, SIGCONT it after a while.
    Pause,
    /// Cut a random node off from its peers (clients still reach it), heal after a while.
    /// Runs the nodes in network namespaces (needs root and iproute2).
    Partition,
    /// Remove a random follower from the membership and add a fresh node under a new id.
    Membership,
    /// Power loss of a random node or of every node at once: SIGKILL, then drop every write
    /// not fsynced (each node's data directory is on a lazy FUSE disk; needs root and /dev/fuse).
    #[value(name = "lazyfs")]
    #[serde(rename = "lazyfs")]
    LazyFs,
    /// Start every node on an earlier build (`--old-binary`) and upgrade them one at a
    /// time to the build under test (SIGTERM, the new binary on the same data and flags),
    /// spread over the first part of the run, so that the cluster runs two builds under
    /// the other faults and switches its replicated format during the run. Not drawn at
    /// random: the upgrades follow their own schedule ([`upgrade_times`]).
    MixedVersion,
    /// SIGKILL a node, wipe its data directory, restart it after a while with the same
    /// flags, as a recreated volume does (half the time the lowest id, the one that
    /// initialized the cluster). It must rejoin by itself under a new incarnation.
    Amnesia,
}

/// When the mixed-version nemesis upgrades the `n` nodes of a run of `duration`: node k
/// at k / (n + 2) of it, so the last upgrade is done with 2 / (n + 2) of the run left to
/// run after the format switch.
pub fn upgrade_times(n: usize, duration: Duration) -> Vec<Duration> {
    (1..=n).map(|k| duration * k as u32 / (n as u32 + 2)).collect()
}

/// Upgrades one running member still on the earlier build, if there is one; returns its
/// id.
pub fn upgrade_one(cluster: &mut ClusterUnderTest, rng: &mut SmallRng) -> anyhow::Result<Option<u64>> {
    let candidates: Vec<usize> = cluster
        .not_upgraded()
        .into_iter()
        .filter(|i| cluster.nodes[*i].running() && !cluster.nodes[*i].paused)
        .collect();
    let Some(&target) = candidates.choose(rng) else { return Ok(None) };
    cluster.upgrade(target)?;
    Ok(Some(cluster.nodes[target].id))
}

/// One fault, as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct FaultEvent {
    pub nemesis: Nemesis,
    pub node_id: u64,
    pub start_ms: u64,
    pub heal_ms: u64,
}

/// A fault in progress, healed by [`heal`].
pub enum Active {
    Killed(usize),
    KilledMany(Vec<usize>),
    /// Nodes that all lost power: the first comes back alone, the others [`STAGGER`] later.
    Staggered(Vec<usize>),
    Partitioned(u64, Vec<u64>),
    Paused(usize),
    None,
}

/// One injected fault: what to heal, the node it hit, and a note for the harness log.
pub struct Injected {
    pub active: Active,
    pub node_id: u64,
    pub note: String,
}

/// Injects one fault of kind `nemesis`.
pub fn inject(nemesis: Nemesis, cluster: &mut ClusterUnderTest, rng: &mut SmallRng) -> anyhow::Result<Injected> {
    let live: Vec<usize> = cluster.members().into_iter().filter(|i| cluster.nodes[*i].running()).collect();
    let Some(&random) = live.choose(rng) else {
        return Ok(Injected { active: Active::None, node_id: 0, note: "no live node".into() });
    };
    let mut note = String::new();
    let (active, node_id) = match nemesis {
        Nemesis::Kill => {
            cluster.nodes[random].kill();
            (Active::Killed(random), cluster.nodes[random].id)
        }
        Nemesis::KillLeader => {
            let target = cluster.leader().unwrap_or(random);
            cluster.nodes[target].kill();
            (Active::Killed(target), cluster.nodes[target].id)
        }
        Nemesis::KillMinority => {
            let minority = (live.len().saturating_sub(1)) / 2;
            let mut victims = live.clone();
            victims.shuffle(rng);
            victims.truncate(minority.max(1));
            for &v in &victims {
                cluster.nodes[v].kill();
            }
            let first = cluster.nodes[victims[0]].id;
            (Active::KilledMany(victims), first)
        }
        Nemesis::Partition => {
            let id = cluster.nodes[random].id;
            let peers: Vec<u64> =
                cluster.members().into_iter().map(|i| cluster.nodes[i].id).filter(|p| *p != id).collect();
            let net = cluster.net.as_ref().ok_or_else(|| anyhow::anyhow!("partition needs network namespaces"))?;
            net.isolate(id, &peers)?;
            (Active::Partitioned(id, peers), id)
        }
        Nemesis::LazyFs => {
            // Half the time one node loses power, half the time every node does at once
            // (a rack or site outage): only what was fsynced may be relied on.
            // When every node does, power comes back unevenly: the node that led comes
            // back first and alone, the others a while later. A leader that resumed
            // without an election then answers reads as soon as its peers are back,
            // at the read index it restarted with.
            // (The draw is the same as before the stagger, so a seed's schedule is too.)
            let all = !rng.gen_bool(0.5);
            let victims = if all {
                let mut order = live.clone();
                if let Some(leader) = cluster.leader() {
                    order.sort_by_key(|&i| i != leader);
                }
                order
            } else {
                vec![random]
            };
            let files: usize = victims.iter().map(|&v| cluster.nodes[v].power_off()).sum();
            note = format!("({} node(s) lost power; unsynced data dropped from {files} files)", victims.len());
            let first = cluster.nodes[victims[0]].id;
            (if all { Active::Staggered(victims) } else { Active::KilledMany(victims) }, first)
        }
        Nemesis::Pause => {
            cluster.nodes[random].pause();
            (Active::Paused(random), cluster.nodes[random].id)
        }
        Nemesis::MixedVersion => (Active::None, 0),
        Nemesis::Amnesia => {
            let lowest = live.iter().copied().min_by_key(|i| cluster.nodes[*i].id).unwrap_or(random);
            let target = if rng.gen_bool(0.5) { lowest } else { random };
            cluster.nodes[target].kill();
            let removed = cluster.nodes[target].wipe()?;
            note = format!("(data directory wiped: {removed} entries)");
            (Active::Killed(target), cluster.nodes[target].id)
        }
        Nemesis::Membership => {
            let leader = cluster.leader();
            let followers: Vec<usize> = live.iter().copied().filter(|i| Some(*i) != leader).collect();
            let Some(&target) = followers.choose(rng) else {
                return Ok(Injected { active: Active::None, node_id: 0, note: "no follower".into() });
            };
            let id = cluster.nodes[target].id;
            cluster.replace(target)?;
            cluster.mark_removed(target);
            (Active::None, id)
        }
    };
    Ok(Injected { active, node_id, note })
}

/// After every node lost power, how long the first node back is alone.
pub const STAGGER: Duration = Duration::from_millis(1500);

/// Undoes a fault.
pub fn heal(active: Active, cluster: &mut ClusterUnderTest) -> anyhow::Result<()> {
    match active {
        Active::Killed(i) => cluster.restart(i),
        Active::KilledMany(list) => list.into_iter().try_for_each(|i| cluster.restart(i)),
        Active::Staggered(list) => match list.split_first() {
            Some((&first, rest)) => {
                cluster.restart(first)?;
                std::thread::sleep(STAGGER);
                rest.iter().try_for_each(|&i| cluster.restart(i))
            }
            None => Ok(()),
        },
        Active::Partitioned(id, peers) => match &cluster.net {
            Some(net) => net.heal(id, &peers),
            None => Ok(()),
        },
        Active::Paused(i) => {
            cluster.nodes[i].resume();
            Ok(())
        }
        Active::None => Ok(()),
    }
}

/// How long a fault lasts and the quiet time before the next, from the seed.
pub fn timings(rng: &mut SmallRng, interval: Duration) -> (Duration, Duration) {
    let ms = interval.as_millis() as u64;
    (Duration::from_millis(rng.gen_range(ms / 2..=ms)), Duration::from_millis(rng.gen_range(ms / 2..=ms)))
}
