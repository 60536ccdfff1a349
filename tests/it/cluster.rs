//! Three real nodes on loopback: replication, failover, restarts, membership.
//!
//! Cluster tests run one at a time (they share two cores) and use election timeouts
//! that tolerate a loaded machine. Every wait is on a condition, with generous bounds
//! meant to catch hangs, not to time the machine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::harness::{free_port, Server};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) fn exclusive() -> MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The header every admin call needs.
pub(crate) const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

pub(crate) fn story(step: &str) {
    eprintln!("== {step}");
}

/// A cluster of real processes; node `i` has id `i + 1`.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Server>,
    pub(crate) peers: Vec<String>,
    extra: Vec<String>,
}

/// The test timing flags that `extra` does not set itself: testkit's loaded-machine
/// timing, and a 30 s propose timeout so that a push waits out a slow election instead of
/// failing the test with a 504.
fn timing_unless_overridden(extra: &[String]) -> Vec<String> {
    testkit::cluster_timing("30s", extra)
}

impl Cluster {
    pub(crate) fn start(n: usize, extra: &[&str]) -> Cluster {
        let cluster = Cluster::spawn(n, extra);
        cluster.wait_all_ready();
        cluster
    }

    /// Starts the nodes without waiting for them to be ready (see
    /// [`Cluster::wait_all_ready`]).
    pub(crate) fn spawn(n: usize, extra: &[&str]) -> Cluster {
        let peers: Vec<String> = (0..n).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let members: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("{}={p}", i + 1)).collect();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let nodes: Vec<Server> = (0..n)
            .map(|i| {
                let mut args = vec![
                    format!("--cluster.node-id={}", i + 1),
                    format!("--cluster.listen-address={}", peers[i]),
                    format!("--cluster.initial-members={}", members.join(",")),
                    "--web.enable-admin-api".to_string(),
                ];
                args.extend(timing_unless_overridden(&extra));
                args.extend(extra.iter().cloned());
                Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap()))
            })
            .collect();
        Cluster { nodes, peers, extra }
    }

    /// Stops every node (SIGTERM), starts them all again, waits until all are ready.
    pub(crate) fn restart_all(&mut self) {
        for node in &mut self.nodes {
            node.signal_and_wait("TERM");
        }
        for node in &mut self.nodes {
            node.restart();
        }
        self.wait_all_ready();
    }

    pub(crate) fn wait_all_ready(&self) {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            node.wait_for(Duration::from_secs(90), "node ready", || node.get("/-/ready").0 == 200);
        }
    }

    pub(crate) fn status(&self, i: usize) -> serde_json::Value {
        let (code, body) = self.nodes[i].get("/api/v1/cluster");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Index of the leader, as the running nodes agree on it.
    pub(crate) fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let leaders: BTreeSet<u64> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.is_running())
                .filter_map(|(i, _)| self.status(i)["leader"].as_u64())
                .collect();
            if leaders.len() == 1 {
                let id = *leaders.iter().next().unwrap();
                if let Some(i) = self.index_of(id) {
                    if self.nodes[i].is_running() {
                        return i;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        (id as usize).checked_sub(1).filter(|i| *i < self.nodes.len())
    }

    /// Pushed series of every running node; asserts they are identical.
    pub(crate) fn identical_pushed_lines(&self) -> Vec<String> {
        let running: Vec<&Server> = self.nodes.iter().filter(|n| n.is_running()).collect();
        let lines = |node: &Server| {
            let mut got = None;
            node.wait_for(Duration::from_secs(60), "a consistent read", || {
                got = node.try_pushed_lines();
                got.is_some()
            });
            got.unwrap_or_default()
        };
        let first = lines(running[0]);
        for node in &running[1..] {
            assert_eq!(lines(node), first, "nodes {} and {} differ", running[0].base, node.base);
        }
        let api: Vec<serde_json::Value> = running
            .iter()
            .map(|n| serde_json::from_str::<serde_json::Value>(&n.get("/api/v1/metrics").1).unwrap()["data"].clone())
            .collect();
        for other in &api[1..] {
            assert_eq!(other, &api[0], "JSON API differs between nodes");
        }
        first
    }
}

/// `seq` values of the acknowledged pushes found in a node's lines.
fn seqs_in(lines: &[String], job: &str) -> BTreeSet<u64> {
    lines
        .iter()
        .filter(|l| l.starts_with("v{") && l.contains(&format!("job=\"{job}\"")))
        .filter_map(|l| l.split("seq=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect()
}

#[test]
fn a_push_to_each_node_is_readable_from_every_node() {
    let _one = exclusive();
    story("three nodes; one push through each");
    let c = Cluster::start(3, &[]);
    for (i, node) in c.nodes.iter().enumerate() {
        let (code, body) = node.put(&format!("/metrics/job/each/node/{i}"), &format!("m{{via=\"{i}\"}} {i}\n"));
        assert_eq!(code, 200, "push through node {i}: {body}");
    }
    story("every node serves the same pushed groups, byte for byte");
    let lines = c.identical_pushed_lines();
    for i in 0..3 {
        assert!(lines.contains(&format!("m{{instance=\"\",job=\"each\",node=\"{i}\",via=\"{i}\"}} {i}")), "{lines:?}");
    }
    story("an inconsistent push is refused by the applied result on every node");
    let (code, body) = c.nodes[1].put("/metrics/job/each/node/0", "# TYPE m counter\nm 1\n");
    assert_eq!(code, 400, "{body}");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().any(|l| l.starts_with("push_failure_time_seconds{instance=\"\",job=\"each\",node=\"0\"} 1.")));
}

#[test]
fn killing_the_leader_loses_no_acknowledged_push() {
    let _one = exclusive();
    story("three nodes; a stream of pushes round-robin over the nodes");
    let mut c = Cluster::start(3, &[]);
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut killed: Option<(usize, Instant)> = None;
    let mut recovered_after: Option<Duration> = None;
    let mut acked_after_kill = 0;
    let mut seq = 0u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    while acked_after_kill < 30 {
        assert!(Instant::now() < deadline, "pushes were not accepted again after the kill");
        let target = (seq as usize) % 3;
        if killed.is_some_and(|(k, _)| k == target) {
            seq += 1;
            continue;
        }
        let (code, _) = c.nodes[target].put(&format!("/metrics/job/stream/seq/{seq}"), &format!("v {seq}\n"));
        if code == 200 {
            acked.insert(seq);
            if let Some((_, at)) = killed {
                acked_after_kill += 1;
                recovered_after.get_or_insert_with(|| at.elapsed());
            }
        } else {
            // 503 (not proposed) or 504 (unknown): neither is an acknowledgement.
            assert!(matches!(code, 503 | 504 | 0), "unexpected status {code}");
        }
        if killed.is_none() && acked.len() == 20 {
            let leader = c.leader();
            story(&format!("SIGKILL the leader (node {})", leader + 1));
            c.nodes[leader].signal_and_wait("KILL");
            killed = Some((leader, Instant::now()));
        }
        seq += 1;
    }
    let recovered = recovered_after.expect("a push after the kill");
    eprintln!("pushes accepted again {:.2} s after the leader was killed", recovered.as_secs_f64());
    assert!(recovered < Duration::from_secs(60), "failover took {recovered:?}");

    story("the killed node restarts and catches up; every acknowledged push is everywhere");
    let (k, _) = killed.unwrap();
    c.nodes[k].restart();
    c.wait_all_ready();
    let last = *acked.iter().next_back().unwrap();
    c.nodes[k].wait_for(Duration::from_secs(60), "catch-up", || {
        seqs_in(&c.nodes[k].try_pushed_lines().unwrap_or_default(), "stream").contains(&last)
    });
    let lines = c.identical_pushed_lines();
    let present = seqs_in(&lines, "stream");
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged pushes lost: {lost:?}");
}

/// The election gate (a pre-vote before standing): a follower that hears no leader for
/// many election timeouts, because the leader and the other follower are stopped, finds
/// no majority that would vote for it, so its term stays; when the others come back the
/// leader keeps leading in the same term, and pushes go on at once. Without the gate the
/// follower stood again and again, and its higher term unseated the leader on return.
#[test]
fn a_follower_that_heard_no_leader_for_long_does_not_unseat_it_on_return() {
    let _one = exclusive();
    story("three nodes; the leader and one follower are stopped (SIGSTOP) for 12 s");
    let mut c = Cluster::start(3, &[]);
    assert_eq!(c.nodes[0].put("/metrics/job/before", "v 1\n").0, 200);
    let leader = c.leader();
    let term = c.status(leader)["term"].as_u64().expect("term");
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    c.nodes[leader].signal_and_wait("STOP");
    c.nodes[other].signal_and_wait("STOP");
    // Loaded-machine timing: election timeouts of 2-4 s, so several rounds pass.
    std::thread::sleep(Duration::from_secs(12));
    let alone = c.status(follower);
    assert_eq!(alone["term"].as_u64(), Some(term), "the lone follower raised its term: {alone}");

    story("the leader comes back, then the other follower: same leader, same term");
    c.nodes[leader].signal_and_wait("CONT");
    c.nodes[follower].wait_for(Duration::from_secs(30), "the leader heard again", || {
        c.status(follower)["leader"].as_u64() == Some(leader as u64 + 1)
    });
    c.nodes[other].signal_and_wait("CONT");
    let started = Instant::now();
    let (code, body) = c.nodes[follower].put("/metrics/job/after", "v 2\n");
    assert_eq!(code, 200, "{body}");
    eprintln!("a push through the returning follower took {:.2} s", started.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..3 {
        let status = c.status(i);
        assert_eq!(status["leader"].as_u64(), Some(leader as u64 + 1), "node {}: {status}", i + 1);
        assert_eq!(status["term"].as_u64(), Some(term), "node {} left term {term}: {status}", i + 1);
    }
    let log = c.nodes[follower].log();
    assert!(!log.contains("standing for election"), "the follower stood for election: {log}");
    assert!(log.contains("no majority would vote"), "the follower's pre-votes are not in its log: {log}");
}

#[test]
fn a_killed_follower_catches_up_from_a_snapshot_and_a_whole_restart_keeps_everything() {
    let _one = exclusive();
    story("three nodes that snapshot every 20 entries");
    let mut c = Cluster::start(3, &["--cluster.snapshot-logs=20"]);
    let leader = c.leader();
    let follower = (leader + 1) % 3;
    story(&format!("SIGKILL follower node {}; push 120 times while it is down", follower + 1));
    c.nodes[follower].signal_and_wait("KILL");
    for seq in 0..120u64 {
        let (code, body) = c.nodes[leader].put(&format!("/metrics/job/down/seq/{seq}"), &format!("v {seq}\n"));
        assert_eq!(code, 200, "{body}");
    }
    story("the follower restarts and serves identical output");
    c.nodes[follower].restart();
    c.wait_all_ready();
    c.nodes[follower].wait_for(Duration::from_secs(60), "catch-up", || {
        seqs_in(&c.nodes[follower].try_pushed_lines().unwrap_or_default(), "down").len() == 120
    });
    assert_eq!(seqs_in(&c.identical_pushed_lines(), "down").len(), 120);
    assert!(
        c.nodes[follower].log().contains("installed a snapshot"),
        "the follower's log was compacted away, so it must have caught up from a snapshot"
    );
    let sent = own_sample(&c.nodes[leader], "pushgateway_cluster_snapshot_bytes");
    assert!(sent > Some(1000.0), "the leader reports the snapshot it serialized: {sent:?} bytes");

    story("SIGKILL every node, restart them all: every acknowledged push is back");
    for node in c.nodes.iter_mut() {
        node.signal_and_wait("KILL");
    }
    for node in c.nodes.iter_mut() {
        node.restart();
    }
    c.wait_all_ready();
    let leader = c.leader();
    c.nodes[leader].wait_for(Duration::from_secs(60), "state restored", || {
        seqs_in(&c.nodes[leader].try_pushed_lines().unwrap_or_default(), "down").len() == 120
    });
    assert_eq!(seqs_in(&c.identical_pushed_lines(), "down").len(), 120);
}

#[test]
fn nodes_are_added_and_removed_while_pushes_flow() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let bases: Vec<String> = c.nodes.iter().map(|n| n.base.clone()).collect();
    story("a writer pushes through nodes 1 and 2 all along");
    let writer = {
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(40)).build().unwrap();
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let base = &bases[(seq % 2) as usize];
                let url = format!("{base}/metrics/job/flow/seq/{seq}");
                if let Ok(r) = client.put(url).body(format!("v {seq}\n")).send() {
                    if r.status().as_u16() == 200 {
                        acked.lock().unwrap().insert(seq);
                    }
                }
                seq += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    story("node 4 starts with --cluster.join and is added as a voter with the CLI");
    let peer4 = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--cluster.node-id=4".to_string(),
        format!("--cluster.listen-address={peer4}"),
        format!("--cluster.join={}", c.peers[0]),
        "--web.enable-admin-api".to_string(),
    ];
    args.extend(timing_unless_overridden(&c.extra));
    args.extend(c.extra.iter().cloned());
    c.nodes.push(Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap())));
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["cluster", "add", "--server", &c.nodes[1].base, "--id", "4", "--address", &peer4])
        .output()
        .unwrap();
    assert!(cli.status.success(), "cluster add: {}", String::from_utf8_lossy(&cli.stderr));
    c.nodes[3].wait_for(Duration::from_secs(90), "node 4 ready", || c.nodes[3].get("/-/ready").0 == 200);
    let voters: BTreeMap<String, serde_json::Value> = serde_json::from_value(c.status(3)["voters"].clone()).unwrap();
    assert_eq!(voters.keys().cloned().collect::<Vec<_>>(), ["1", "2", "3", "4"]);

    story("node 3 is removed through the admin API, then stopped");
    let (code, body) = c.nodes[0].request("POST", "/api/v1/admin/cluster/remove", JSON, br#"{"id":3}"#.to_vec());
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    c.nodes[2].signal_and_wait("TERM");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();

    story("the remaining nodes, node 4 included, hold every acknowledged push");
    let status = c.status(0);
    let voters: BTreeMap<String, serde_json::Value> = serde_json::from_value(status["voters"].clone()).unwrap();
    assert_eq!(voters.keys().cloned().collect::<Vec<_>>(), ["1", "2", "4"]);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 10, "too few pushes went through: {}", acked.len());
    let last = *acked.iter().next_back().unwrap();
    c.nodes[3].wait_for(Duration::from_secs(60), "node 4 caught up", || {
        seqs_in(&c.nodes[3].try_pushed_lines().unwrap_or_default(), "flow").contains(&last)
    });
    let present = seqs_in(&c.identical_pushed_lines(), "flow");
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged pushes lost: {lost:?}");
}

#[test]
fn an_18_mb_push_replicates_to_every_node() {
    let _one = exclusive();
    let c = Cluster::start(3, &["--cluster.propose-timeout=120s"]);
    story("an 18 MB body of 100 000 series, pushed through a follower");
    let leader = c.leader();
    let follower = (leader + 1) % 3;
    let padding = "x".repeat(155);
    let mut body = String::with_capacity(18_500_000);
    for i in 0..100_000 {
        body.push_str(&format!("big{{i=\"{i}\",pad=\"{padding}\"}} {i}\n"));
    }
    assert!(body.len() >= 18_000_000, "{}", body.len());
    let started = Instant::now();
    let (code, text) = c.nodes[follower].put("/metrics/job/big", &body);
    assert_eq!(code, 200, "{text}");
    eprintln!("18 MB push acknowledged after {:.1} s", started.elapsed().as_secs_f64());
    story("every node exposes all 100 000 series");
    for node in &c.nodes {
        let count = node.pushed_lines().iter().filter(|l| l.starts_with("big{")).count();
        assert_eq!(count, 100_000, "node {}", node.base);
    }
}

#[test]
fn a_single_node_grows_into_a_cluster() {
    let _one = exclusive();
    story("a node started without cluster flags takes a push");
    let mut first = Server::start_node(&[], Arc::new(tempfile::tempdir().unwrap()));
    first.wait_for(Duration::from_secs(60), "ready", || first.get("/-/ready").0 == 200);
    assert_eq!(first.put("/metrics/job/early", "e 1\n").0, 200);

    story("restarted with a peer listener and the admin API, it keeps its data");
    let peer1 = format!("127.0.0.1:{}", free_port());
    let mut args = vec![format!("--cluster.listen-address={peer1}"), "--web.enable-admin-api".to_string()];
    args.extend(timing_unless_overridden(&[]));
    first.signal_and_wait("TERM");
    first.restart_with(&args);
    first.wait_for(Duration::from_secs(60), "ready", || first.get("/-/ready").0 == 200);
    assert!(first.pushed_lines().contains(&"e{instance=\"\",job=\"early\"} 1".to_string()));

    story("nodes 2 and 3 join and are added as voters");
    let mut nodes = vec![first];
    for id in [2u64, 3] {
        let peer = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            format!("--cluster.node-id={id}"),
            format!("--cluster.listen-address={peer}"),
            format!("--cluster.join={peer1}"),
        ];
        args.extend(timing_unless_overridden(&[]));
        nodes.push(Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap())));
        let body = format!("{{\"id\":{id},\"address\":\"{peer}\"}}");
        let (code, answer) = nodes[0].request("POST", "/api/v1/admin/cluster/add", JSON, body.into_bytes());
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&answer));
    }
    let c = Cluster { nodes, peers: vec![peer1], extra: vec![] };
    c.wait_all_ready();
    assert_eq!(c.nodes[2].put("/metrics/job/late", "l 1\n").0, 200);
    let lines = c.identical_pushed_lines();
    assert!(lines.contains(&"e{instance=\"\",job=\"early\"} 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"l{instance=\"\",job=\"late\"} 1".to_string()), "{lines:?}");
}

#[test]
fn a_dead_node_is_replaced_by_a_new_id() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    let leader = c.leader();
    let dead = (leader + 2) % 3;
    story(&format!("node {} dies (SIGKILL) for good", dead + 1));
    c.nodes[dead].signal_and_wait("KILL");
    assert_eq!(c.nodes[leader].put("/metrics/job/before", "b 1\n").0, 200);

    story("node 4 (a new id, empty data) joins and is added; the dead id is removed with the CLI");
    let (node4, peer4) = start_joiner(4, &c.peers[leader], &[]);
    c.nodes.push(node4);
    let body = format!("{{\"id\":4,\"address\":\"{peer4}\"}}");
    let (code, answer) = c.nodes[leader].request("POST", "/api/v1/admin/cluster/add", JSON, body.into_bytes());
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&answer));
    let dead_id = (dead + 1).to_string();
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["cluster", "remove", "--server", &c.nodes[leader].base, "--id", &dead_id])
        .output()
        .unwrap();
    assert!(cli.status.success(), "cluster remove: {}", String::from_utf8_lossy(&cli.stdout));
    c.wait_all_ready();

    story("the cluster of three live voters takes pushes and serves them everywhere");
    let voters: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(c.status(leader)["voters"].clone()).unwrap();
    let mut want: Vec<String> = (1..=3).filter(|i| *i != dead + 1).map(|i| i.to_string()).collect();
    want.push("4".into());
    assert_eq!(voters.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(c.nodes[3].put("/metrics/job/after", "a 1\n").0, 200);
    let lines = c.identical_pushed_lines();
    assert!(lines.contains(&"b{instance=\"\",job=\"before\"} 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"a{instance=\"\",job=\"after\"} 1".to_string()), "{lines:?}");
}

/// The value of an unlabelled (or exactly labelled) sample in a node's own metrics.
fn own_sample(node: &Server, series: &str) -> Option<f64> {
    let (code, body) = node.get("/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn each_node_exposes_its_view_of_the_cluster() {
    let _one = exclusive();
    story("three nodes; a push through a follower");
    let c = Cluster::start(3, &[]);
    let leader = c.leader();
    let follower = (leader + 1) % 3;
    let (code, body) = c.nodes[follower].put("/metrics/job/view", "v 1\n");
    assert_eq!(code, 200, "{body}");
    let leader_id = leader as f64 + 1.0;
    let term = own_sample(&c.nodes[leader], "pushgateway_cluster_term").expect("term");
    assert!(term >= 1.0);
    let last = own_sample(&c.nodes[leader], "pushgateway_cluster_last_log_index").expect("last log index");
    story("the leader says leader, the others follower; all name the same leader, term and members");
    for (i, node) in c.nodes.iter().enumerate() {
        let role = |r: &str| own_sample(node, &format!("pushgateway_cluster_role{{role=\"{r}\"}}"));
        let (is_leader, is_follower) = (role("leader"), role("follower"));
        assert_eq!((is_leader, is_follower), if i == leader { (Some(1.0), Some(0.0)) } else { (Some(0.0), Some(1.0)) });
        assert_eq!(role("candidate"), Some(0.0));
        assert_eq!(own_sample(node, "pushgateway_cluster_has_leader"), Some(1.0));
        assert_eq!(own_sample(node, "pushgateway_cluster_leader_id"), Some(leader_id));
        assert_eq!(own_sample(node, "pushgateway_cluster_term"), Some(term));
        assert_eq!(own_sample(node, "pushgateway_cluster_voters"), Some(3.0));
        assert_eq!(own_sample(node, "pushgateway_cluster_learners"), Some(0.0));
        story(&format!("node {}: applied up to the leader's log, no lag", i + 1));
        node.wait_for(Duration::from_secs(30), "applied index", || {
            own_sample(node, "pushgateway_cluster_applied_index") >= Some(last)
                && own_sample(node, "pushgateway_cluster_apply_lag_entries") == Some(0.0)
        });
        assert!(own_sample(node, "pushgateway_cluster_log_entries") >= Some(1.0), "node {} keeps a log", i + 1);
        assert!(own_sample(node, "pushgateway_cluster_storage_bytes") > Some(0.0), "node {} stores", i + 1);
        assert_eq!(own_sample(node, "pushgateway_cluster_snapshot_bytes"), Some(0.0), "no peer needed a snapshot");
    }
    story("the follower forwarded the push and timed it; nothing failed; the leader forwarded nothing");
    let sample = |i: usize, name: &str| own_sample(&c.nodes[i], name);
    assert!(sample(follower, "pushgateway_cluster_forwarded_batches_total") >= Some(1.0));
    assert_eq!(sample(leader, "pushgateway_cluster_forwarded_batches_total"), Some(0.0));
    assert_eq!(sample(follower, "pushgateway_cluster_proposal_duration_seconds_count"), Some(1.0));
    assert_eq!(sample(follower, "pushgateway_cluster_proposal_duration_seconds_bucket{le=\"+Inf\"}"), Some(1.0));
    assert!(sample(follower, "pushgateway_cluster_proposal_duration_seconds_sum") > Some(0.0));
    assert_eq!(sample(leader, "pushgateway_cluster_proposal_duration_seconds_count"), Some(0.0));
    for reason in ["storage", "timeout", "unavailable"] {
        let name = format!("pushgateway_cluster_failed_proposals_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(follower, &name), Some(0.0), "{name}");
    }

    story("any node answers for every member, each asked over the peer channel");
    let members = |c: &Cluster, i: usize| {
        let (code, body) = c.nodes[i].get("/api/v1/cluster/members");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"].as_array().cloned().unwrap()
    };
    let seen = members(&c, follower);
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (i, m) in seen.iter().enumerate() {
        assert_eq!(m["id"], i as u64 + 1);
        assert_eq!(m["address"].as_str(), Some(c.peers[i].as_str()));
        assert_eq!(m["voter"], true);
        assert_eq!(m["status"]["node_id"], i as u64 + 1, "member {} answered for itself: {m}", i + 1);
        assert_eq!(m["status"]["role"], if i == leader { "leader" } else { "follower" });
        assert!(m["error"].is_null());
    }
    story("a stopped member is listed with why it did not answer");
    let mut c = c;
    let stopped = (leader + 2) % 3;
    c.nodes[stopped].signal_and_wait("KILL");
    let seen = members(&c, leader);
    assert!(seen[stopped]["status"].is_null() && seen[stopped]["error"].is_string(), "{seen:?}");
    assert_eq!(seen[leader]["status"]["role"], "leader");
}

#[test]
fn peers_without_the_cluster_secret_cannot_vote_append_or_join() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    let other = dir.path().join("other-secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::write(&other, "fedcba9876543210fedcba9876543210\n").unwrap();
    let with = |file: &std::path::Path| format!("--cluster.secret-file={}", file.display());
    let c = Cluster::start(1, &[&with(&secret)]);
    let term = c.status(0)["term"].as_u64();

    story("raw peer requests without the secret, or with another, are refused before they are read");
    let http = reqwest::blocking::Client::new();
    let vote = |authorization: Option<&str>| {
        let mut request = http.post(format!("http://{}/raft/vote", c.peers[0])).body(vec![0u8; 8]);
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(vote(None), 401);
    assert_eq!(vote(Some("Bearer fedcba9876543210fedcba9876543210")), 401);
    let routes = ["/raft/append", "/raft/vote", "/raft/snapshot", "/raft/propose", "/raft/read-index", "/raft/admin"];
    for route in routes.into_iter().chain(["/raft/version", "/raft/identity", "/raft/adopt"]) {
        for authorization in [None, Some("Bearer fedcba9876543210fedcba9876543210"), Some("Basic Zm9vOmJhcg==")] {
            let mut request = http.post(format!("http://{}{route}", c.peers[0])).body(vec![0xfd; 11]);
            if let Some(a) = authorization {
                request = request.header("authorization", a);
            }
            assert_eq!(request.send().unwrap().status().as_u16(), 401, "{route} with {authorization:?}");
        }
    }
    assert_eq!(
        vote(Some("Bearer 0123456789abcdef0123456789abcdef")),
        400,
        "with the secret it is read (and is garbage)"
    );
    assert_eq!(c.status(0)["term"].as_u64(), term, "no refused request changed the term");

    story("a node with another secret asks to join and is refused; with the secret it joins");
    let peer2 = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--cluster.node-id=2".to_string(),
        format!("--cluster.listen-address={peer2}"),
        format!("--cluster.join={}", c.peers[0]),
        with(&other),
    ];
    args.extend(timing_unless_overridden(&[]));
    let mut stranger = Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap()));
    stranger.wait_for(Duration::from_secs(60), "the join refused", || {
        stranger.log().contains("peer refused this node's --cluster.secret-file")
    });
    let learners = c.status(0)["learners"].clone();
    assert!(learners.as_object().is_none_or(|l| l.is_empty()), "a stranger became a learner: {learners}");
    stranger.signal_and_wait("TERM");
    args[3] = with(&secret);
    stranger.restart_with(&args);
    c.nodes[0].wait_for(Duration::from_secs(60), "node 2 a learner", || {
        c.status(0)["learners"].as_object().is_some_and(|l| l.contains_key("2"))
    });
}

/// Starts node `id` with an empty data directory and `--cluster.join=<via>` (plus the
/// test timing and `extra`); returns it and its peer address.
fn start_joiner(id: u64, via: &str, extra: &[String]) -> (Server, String) {
    let peer = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        format!("--cluster.node-id={id}"),
        format!("--cluster.listen-address={peer}"),
        format!("--cluster.join={via}"),
    ];
    args.extend(timing_unless_overridden(extra));
    args.extend(extra.iter().cloned());
    (Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap())), peer)
}

/// `pushgateway cluster <args>`; panics with its output unless it succeeds.
fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway")).arg("cluster").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cluster {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn after_losing_a_majority_a_survivor_is_forced_into_a_new_cluster_and_grows_again() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &["--cluster.propose-timeout=2s"]);
    assert_eq!(c.nodes[0].put("/metrics/job/before", "b 1\n").0, 200);
    let survivor = c.leader();
    let before = "b{instance=\"\",job=\"before\"} 1".to_string();
    assert!(c.identical_pushed_lines().contains(&before));

    story("two of three nodes are lost for good: no leader, pushes fail");
    for i in (0..3).filter(|&i| i != survivor) {
        c.nodes[i].signal_and_wait("KILL");
    }
    c.nodes[survivor].wait_for(Duration::from_secs(60), "no leader", || c.nodes[survivor].get("/-/ready").0 == 503);
    assert_ne!(c.nodes[survivor].put("/metrics/job/stuck", "s 1\n").0, 200);

    story("the survivor is stopped, forced into a one-member cluster, restarted with the same flags");
    c.nodes[survivor].signal_and_wait("TERM");
    let data = c.nodes[survivor].data_dir();
    let out = cli(&[
        "force-new-cluster",
        &format!("--storage.path={}", data.display()),
        &format!("--id={}", survivor + 1),
        &format!("--address={}", c.peers[survivor]),
    ]);
    assert!(out.contains("only voter"), "{out}");
    c.nodes[survivor].restart();
    c.nodes[survivor].wait_for(Duration::from_secs(60), "ready alone", || c.nodes[survivor].get("/-/ready").0 == 200);
    let status = c.status(survivor);
    let voters: BTreeMap<String, serde_json::Value> = serde_json::from_value(status["voters"].clone()).unwrap();
    assert_eq!(voters.keys().cloned().collect::<Vec<_>>(), [(survivor + 1).to_string()]);
    assert!(c.nodes[survivor].pushed_lines().contains(&before), "what was acknowledged is kept");
    assert_eq!(c.nodes[survivor].put("/metrics/job/after", "a 1\n").0, 200);

    story("a new node joins and is added: two voters, identical groups");
    let (newcomer, peer) = start_joiner(4, &c.peers[survivor], &c.extra);
    cli(&["add", "--server", &c.nodes[survivor].base, "--id", "4", "--address", &peer]);
    newcomer.wait_for(Duration::from_secs(90), "node 4 ready", || newcomer.get("/-/ready").0 == 200);
    let survivor_lines = c.nodes[survivor].pushed_lines();
    assert!(survivor_lines.iter().any(|l| l.starts_with("a{")), "{survivor_lines:?}");
    newcomer.wait_for(Duration::from_secs(60), "node 4 caught up", || {
        newcomer.try_pushed_lines() == Some(survivor_lines.clone())
    });
}

#[test]
fn a_checkpoint_restores_into_a_new_cluster_with_what_it_held() {
    let _one = exclusive();
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("backup-1");
    let confined = format!("--storage.checkpoint-dir={}", backups.path().display());
    let c = Cluster::start(3, &[&confined]);
    assert_eq!(c.nodes[0].put("/metrics/job/kept", "k 1\n").0, 200);

    story("a checkpoint of a follower while pushes go on, then a later push");
    let follower = (c.leader() + 1) % 3;
    let out = cli(&["checkpoint", "--server", &c.nodes[follower].base, "--path", &backup.display().to_string()]);
    assert!(out.contains("success"), "{out}");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["cluster", "checkpoint", "--server", &c.nodes[follower].base, "--path", &backup.display().to_string()])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a checkpoint never overwrites a directory");
    assert_eq!(c.nodes[0].put("/metrics/job/later", "l 1\n").0, 200);
    drop(c);

    story("restore: a copy of the checkpoint as a new node's data, forced into a cluster of its own");
    let home = Arc::new(tempfile::tempdir().unwrap());
    let data = home.path().join("data");
    let copied = std::process::Command::new("cp").arg("-a").arg(&backup).arg(&data).status().unwrap();
    assert!(copied.success());
    let peer = format!("127.0.0.1:{}", free_port());
    cli(&["force-new-cluster", &format!("--storage.path={}", data.display()), "--id=7", &format!("--address={peer}")]);
    let mut args = vec!["--cluster.node-id=7".to_string(), format!("--cluster.listen-address={peer}")];
    args.extend(timing_unless_overridden(&[]));
    let restored = Server::start_node(&args, home);
    restored.wait_for(Duration::from_secs(60), "restored node ready", || restored.get("/-/ready").0 == 200);
    let lines = restored.pushed_lines();
    assert!(lines.contains(&"k{instance=\"\",job=\"kept\"} 1".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("l{")), "a push after the checkpoint came back: {lines:?}");
    assert_eq!(restored.put("/metrics/job/new", "n 1\n").0, 200);
}

/// `--push.enable-utf8-names` on one node only: what it accepts is judged by the rule
/// carried in the entry, so every node stores it and serves the same groups; a node
/// without the flag still refuses quoted names itself.
#[test]
fn utf8_names_accepted_by_a_flagged_node_are_stored_by_all() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    story("node 1 restarted with --push.enable-utf8-names");
    let mut args = c.nodes[0].args().to_vec();
    args.push("--push.enable-utf8-names".to_string());
    c.nodes[0].signal_and_wait("TERM");
    c.nodes[0].restart_with(&args);
    c.wait_all_ready();

    story("a push with UTF-8 names through node 1");
    let (code, body) = c.nodes[0].put("/metrics/job/u/U__host_2e_name/h1", "{\"http.requests\",\"a.b\"=\"v\"} 5\n");
    assert_eq!(code, 200, "{body}");
    let want = "http_requests{a_b=\"v\",host_name=\"h1\",instance=\"\",job=\"u\"} 5".to_string();
    for node in &c.nodes {
        node.wait_for(Duration::from_secs(30), "the push everywhere", || node.pushed_lines().contains(&want));
        let (_, api) = node.get("/api/v1/metrics");
        let doc: serde_json::Value = serde_json::from_str(&api).unwrap();
        let group = doc["data"].as_array().unwrap().iter().find(|g| g["labels"]["job"] == "u").cloned().unwrap();
        assert_eq!(group["labels"]["host.name"], "h1", "{api}");
    }

    story("a node without the flag refuses quoted names before proposing anything");
    let (code, _) = c.nodes[1].put("/metrics/job/u/U__host_2e_name/h1", "{\"other.name\"} 1\n");
    assert_eq!(code, 400);
    for node in &c.nodes {
        assert!(node.pushed_lines().contains(&want), "the group is untouched");
    }
}

/// After losing a majority the survivor still answers scrapes, from what it has applied,
/// marked stale; pushes are refused. With `--cluster.stale-reads-after=0s` such reads fail.
#[test]
fn scrapes_survive_the_loss_of_a_majority_marked_stale() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &["--cluster.propose-timeout=2s"]);
    assert_eq!(c.nodes[0].put("/metrics/job/kept", "k 1\n").0, 200);
    let kept = "k{instance=\"\",job=\"kept\"} 1".to_string();
    assert!(c.identical_pushed_lines().contains(&kept));
    let fresh = reqwest::blocking::get(format!("{}/metrics", c.nodes[1].base)).unwrap();
    assert!(!fresh.headers().contains_key("x-pushgateway-stale-seconds"), "a confirmed read is not marked");

    story("two of three nodes die");
    let survivor = c.leader();
    for i in (0..3).filter(|&i| i != survivor) {
        c.nodes[i].signal_and_wait("KILL");
    }
    let node = &c.nodes[survivor];
    node.wait_for(Duration::from_secs(60), "not ready", || node.get("/-/ready").0 == 503);

    story("its scrapes answer with every series, marked stale");
    for path in ["/metrics", "/api/v1/metrics"] {
        let answer = reqwest::blocking::get(format!("{}{path}", node.base)).unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let age: f64 = answer.headers()["x-pushgateway-stale-seconds"].to_str().unwrap().parse().unwrap();
        assert!(age > 0.0, "{path}: {age}");
        let body = answer.text().unwrap();
        assert!(body.contains("kept"), "{path}: {body}");
    }
    assert!(node.pushed_lines().contains(&kept));
    let metrics = node.get("/metrics").1;
    let stale_reads = metrics.lines().find(|l| l.starts_with("pushgateway_cluster_stale_reads_total ")).unwrap();
    assert_ne!(stale_reads, "pushgateway_cluster_stale_reads_total 0", "{stale_reads}");
    assert!(metrics.lines().any(|l| l.starts_with("pushgateway_cluster_read_staleness_seconds ")));
    assert_ne!(node.put("/metrics/job/late", "l 1\n").0, 200, "no push without a majority");

    story("with --cluster.stale-reads-after=0s the same read fails");
    let mut args = node.args().to_vec();
    args.push("--cluster.stale-reads-after=0s".to_string());
    c.nodes[survivor].signal_and_wait("TERM");
    c.nodes[survivor].restart_with(&args);
    let node = &c.nodes[survivor];
    node.wait_for(Duration::from_secs(60), "serving", || node.get("/-/healthy").0 == 200);
    let (code, _) = node.get("/metrics");
    assert_eq!(code, 503, "strict reads fail without a majority");
}

/// A node that restarts where no leader is reachable serves every push it knew committed
/// (openraft applies its log up to the committed index it recorded, not only to its last
/// checkpoint), marked stale with the age counted from the last read it confirmed before
/// it stopped, not from its start, which would understate how far behind it may be.
#[test]
fn a_node_restarted_alone_serves_all_it_knew_committed_and_counts_its_age_from_before() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    // Once the format version is switched (a checkpoint at once), nothing else is applied.
    for i in 0..3 {
        let latest = model::version::SUPPORTED as u64;
        c.nodes[i].wait_for(Duration::from_secs(60), "the version switched", || {
            c.status(i)["format_version"].as_u64() == Some(latest)
        });
    }
    // One push: `b` is then in the log and applied, not in the state on disk (nothing
    // applied after it makes a checkpoint due).
    assert_eq!(c.nodes[1].put("/metrics/job/b", "x 1\n").0, 200);
    // A read that passes the read barrier (on a loaded machine one may take longer than
    // --cluster.stale-reads-after and be served stale: ask again).
    let node = &c.nodes[1];
    let mut fresh_at = None;
    node.wait_for(Duration::from_secs(60), "a confirmed read", || {
        let asked = Instant::now();
        let fresh = reqwest::blocking::get(format!("{}/metrics", node.base)).unwrap();
        let confirmed = !fresh.headers().contains_key("x-pushgateway-stale-seconds");
        assert!(fresh.text().unwrap().contains("job=\"b\""));
        fresh_at = Some(asked);
        confirmed
    });
    let fresh_at = fresh_at.unwrap();
    // The committed index and the read's time are recorded 100 ms after they change.
    std::thread::sleep(Duration::from_secs(2));

    story("every node is killed; one of them comes back alone four seconds later");
    for node in &mut c.nodes {
        node.signal_and_wait("KILL");
    }
    std::thread::sleep(Duration::from_secs(4));
    let args = c.nodes[1].args().to_vec();
    c.nodes[1].restart_with(&args);
    let node = &c.nodes[1];
    node.wait_for(Duration::from_secs(60), "serving", || node.get("/-/healthy").0 == 200);
    let answer = reqwest::blocking::get(format!("{}/metrics", node.base)).unwrap();
    assert_eq!(answer.status(), 200);
    let since_read = fresh_at.elapsed().as_secs_f64();
    let age: f64 = answer.headers()["x-pushgateway-stale-seconds"].to_str().unwrap().parse().unwrap();
    // Counted from the start it would be a few seconds less: the node was down four.
    assert!(
        (since_read - 2.0..since_read + 1.0).contains(&age),
        "age counted from the read confirmed before the stop, {since_read:.2} s ago: {age}"
    );
    let body = answer.text().unwrap();
    assert!(body.contains("job=\"b\""), "the last push it knew committed is served: {body}");

    story("stopped and started alone once more, it still serves it");
    c.nodes[1].signal_and_wait("TERM");
    c.nodes[1].restart_with(&args);
    let node = &c.nodes[1];
    node.wait_for(Duration::from_secs(60), "serving", || node.get("/-/healthy").0 == 200);
    let body = node.get("/metrics").1;
    assert!(body.contains("job=\"b\""), "the recorded index survived a restart that committed nothing: {body}");
}

#[test]
fn a_node_with_the_initial_members_flags_and_auto_join_but_not_listed_joins_as_a_voter() {
    let _one = exclusive();
    story("three initial members hold a group");
    let c = Cluster::start(3, &[]);
    assert_eq!(c.nodes[0].put("/metrics/job/before", "before_scale_up 1\n").0, 200);

    story(
        "a fourth node starts with the same --cluster.initial-members and --cluster.auto-join, as a scaled-up pod does",
    );
    let members: Vec<String> = c.peers.iter().enumerate().map(|(i, p)| format!("{}={p}", i + 1)).collect();
    let peer = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--cluster.node-id=4".to_string(),
        format!("--cluster.listen-address={peer}"),
        format!("--cluster.initial-members={}", members.join(",")),
        "--cluster.auto-join".to_string(),
    ];
    args.extend(timing_unless_overridden(&[]));
    let fourth = Server::start_node(&args, Arc::new(tempfile::tempdir().unwrap()));

    story("it becomes a voter and holds what was pushed before it came");
    c.nodes[0].wait_for(Duration::from_secs(90), "node 4 a voter", || {
        c.status(0)["voters"].as_object().is_some_and(|v| v.get("4").and_then(|a| a.as_str()) == Some(peer.as_str()))
    });
    fourth.wait_for(Duration::from_secs(60), "the group on node 4", || {
        fourth.try_pushed_lines().is_some_and(|lines| lines.iter().any(|l| l.starts_with("before_scale_up")))
    });
    assert_eq!(fourth.put("/metrics/job/after", "after_scale_up 1\n").0, 200);
    c.nodes[1].wait_for(Duration::from_secs(30), "a push through node 4 everywhere", || {
        c.nodes[1].try_pushed_lines().is_some_and(|lines| lines.iter().any(|l| l.starts_with("after_scale_up")))
    });
}
