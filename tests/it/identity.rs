//! A node that comes back with an empty data directory under its old id (a recreated
//! Kubernetes volume, a replaced disk) rejoins by itself under a new incarnation, in the
//! place of the lost one, and nothing acknowledged is lost.

use std::collections::BTreeSet;
use std::time::Duration;

use std::sync::Arc;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::{free_port, Server};

const INCARNATION: u64 = 1 << 32;

/// The voters and learners of node `i`'s view, by Raft id.
fn members(c: &Cluster, i: usize) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let status = c.status(i);
    let ids = |key: &str| -> BTreeSet<u64> {
        status[key].as_object().map(|m| m.keys().filter_map(|k| k.parse().ok()).collect()).unwrap_or_default()
    };
    (ids("voters"), ids("learners"))
}

/// Wipes node `i`'s data directory while it is down, as a lost volume does.
fn wipe(c: &mut Cluster, i: usize) {
    c.nodes[i].signal_and_wait("KILL");
    let data = c.nodes[i].data_dir();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
}

#[test]
fn a_node_that_lost_its_data_rejoins_under_a_new_incarnation_by_itself() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    story("started together, every node is incarnation 0: none took itself for a lost one");
    assert_eq!(members(&c, 0), (BTreeSet::from([1, 2, 3]), BTreeSet::new()));
    story("pushes acknowledged by the three nodes");
    for n in 0..20 {
        let (code, body) = c.nodes[n % 3].put(&format!("/metrics/job/before/seq/{n}"), &format!("v {n}\n"));
        assert_eq!(code, 200, "{body}");
    }

    story("node 1, the lowest id (the one that initialized), loses its disk and restarts with the same flags");
    wipe(&mut c, 0);
    for n in 0..10 {
        let (code, body) = c.nodes[1 + n % 2].put(&format!("/metrics/job/while/seq/{n}"), &format!("v {n}\n"));
        assert_eq!(code, 200, "{body}");
    }
    c.nodes[0].restart();

    story("it rejoins as incarnation 1 and takes the place of incarnation 0, without an operator");
    let reborn = 1 + INCARNATION;
    c.nodes[1].wait_for(Duration::from_secs(120), "incarnation 1 a voter in place of 0", || {
        let (voters, learners) = members(&c, 1);
        voters == BTreeSet::from([reborn, 2, 3]) && learners.is_empty()
    });
    c.nodes[0].wait_for(Duration::from_secs(60), "node 1 ready", || c.nodes[0].get("/-/ready").0 == 200);
    assert_eq!(c.status(0)["node_id"].as_u64(), Some(reborn));
    let full = c.nodes[0].log();
    let log = full.rsplit("---- restart ----").next().unwrap_or_default();
    assert!(log.contains("this node lost its data"), "it said why it rejoins");
    assert!(!log.contains("initializing a fresh cluster"), "the lowest id initialized a new cluster");

    story("every acknowledged push is on every node, which are identical");
    let lines = c.identical_pushed_lines();
    for (job, count) in [("before", 20), ("while", 10)] {
        for n in 0..count {
            assert!(
                lines.iter().any(|l| l.starts_with("v{") && l.contains(&format!("job=\"{job}\",seq=\"{n}\""))),
                "{job} {n} lost: {lines:?}"
            );
        }
    }

    story("requests meant for the lost incarnation are refused by the new one");
    let http = reqwest::blocking::Client::new();
    let answer = http
        .post(format!("http://{}/raft/vote", c.peers[0]))
        .header("x-pushgateway-raft-target", "1")
        .body(vec![0u8; 8])
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 409);

    story("a follower loses its disk too, and a restart of everything keeps every incarnation");
    wipe(&mut c, 2);
    c.nodes[2].restart();
    let reborn3 = 3 + INCARNATION;
    c.nodes[1].wait_for(Duration::from_secs(120), "node 3's incarnation 1 a voter", || {
        members(&c, 1).0 == BTreeSet::from([reborn, 2, reborn3])
    });
    let (code, body) = c.nodes[2].put("/metrics/job/after/seq/0", "v 0\n");
    assert_eq!(code, 200, "{body}");
    c.restart_all();
    assert_eq!(members(&c, 0).0, BTreeSet::from([reborn, 2, reborn3]));
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().any(|l| l.starts_with("v{") && l.contains("job=\"after\"")), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("v{")).count(), 31);
}

/// A new cluster is initialized only once every initial member answers: the lowest id,
/// started alone, serves `/-/healthy` but is not ready and initializes nothing.
#[test]
fn a_new_cluster_waits_for_every_initial_member() {
    let _one = exclusive();
    let peers: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let members: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("{}={p}", i + 1)).collect();
    let args = |i: usize| {
        let mut args = vec![
            format!("--cluster.node-id={}", i + 1),
            format!("--cluster.listen-address={}", peers[i]),
            format!("--cluster.initial-members={}", members.join(",")),
        ];
        args.extend(testkit::cluster_timing("30s", &[]));
        args
    };
    story("node 1 alone: it waits for the others, healthy and not ready");
    let first = Server::start_node(&args(0), Arc::new(tempfile::tempdir().unwrap()));
    first.wait_for(Duration::from_secs(30), "the wait said", || first.log().contains("waiting for its peers"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(first.get("/-/healthy").0, 200);
    let (code, body) = first.get("/-/ready");
    assert_eq!(code, 503, "{body}");
    assert!(!first.log().contains("initializing a fresh cluster"), "initialized without its members");

    story("the others start: the cluster forms with all three as incarnation 0");
    story("a push made meanwhile waits for the node instead of failing");
    let url = format!("{}/metrics/job/early", first.base);
    let early = std::thread::spawn(move || {
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        http.put(url).body("early 1\n").send().map(|r| r.status().as_u16())
    });
    let others: Vec<Server> =
        (1..3).map(|i| Server::start_node(&args(i), Arc::new(tempfile::tempdir().unwrap()))).collect();
    for node in std::iter::once(&first).chain(&others) {
        node.wait_for(Duration::from_secs(90), "ready", || node.get("/-/ready").0 == 200);
    }
    assert_eq!(early.join().unwrap().unwrap(), 200, "the push made while the node started");
    let status: serde_json::Value = serde_json::from_str(&first.get("/api/v1/cluster").1).unwrap();
    let voters: BTreeSet<String> = status["voters"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(voters, BTreeSet::from(["1".to_string(), "2".to_string(), "3".to_string()]));
}
