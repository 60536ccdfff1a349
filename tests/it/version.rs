//! The cluster version: the leader raises the replicated-format version once every member
//! understands it, never from a peer's say-so, and a node that understands less is not
//! let in afterwards.

use std::io::{Read, Write};
use std::time::Duration;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::Server;

/// The highest replicated-format version this build understands.
const LATEST: u64 = model::version::SUPPORTED as u64;

/// The replicated-format version in force on node `i`, as it reports it.
fn format_version(c: &Cluster, i: usize) -> Option<u64> {
    let (code, body) = c.nodes[i].get("/api/v1/cluster");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["format_version"].as_u64()
}

/// A peer listener of a build from before the cluster version: every route it lacks is
/// a 404, as `/raft/version` is there.
fn old_build_peer() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    address
}

/// A raw peer request, with the body in bincode as a peer sends it; the answer's bytes
/// as text (the messages in it are readable).
fn peer_post(peer: &str, route: &str, body: Vec<u8>) -> (u16, String) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let answer = client.post(format!("http://{peer}{route}")).body(body).send().unwrap();
    (answer.status().as_u16(), String::from_utf8_lossy(&answer.bytes().unwrap()).into_owned())
}

/// A fresh cluster starts at version 1 and its first leader raises it right away; a push
/// taken in between would be judged by version 1's rules (its own families only), so the
/// leader is ready only once it has looked.
#[test]
fn a_fresh_node_is_ready_only_once_its_version_has_risen() {
    for attempt in 0..3 {
        story(&format!("attempt {attempt}: a fresh single node, asked as soon as it is ready"));
        let server = Server::start(&[]);
        let (code, body) = server.get("/api/v1/cluster");
        assert_eq!(code, 200, "{body}");
        let version = serde_json::from_str::<serde_json::Value>(&body).unwrap()["format_version"].as_u64();
        assert_eq!(version, Some(LATEST), "ready at a lower version: {body}");

        story("the first push is judged by this build's own families: one of version 2's as a counter is refused");
        let (code, body) = server.put("/metrics/job/first", QUOTA_AS_COUNTER);
        assert_eq!(code, 400, "{body}");
        assert!(body.contains("pushgateway_store_quota has type COUNTER but should have GAUGE"), "{body}");
    }
}

/// A push of one of version 2's own families as a counter: refused from version 2 on.
const QUOTA_AS_COUNTER: &str = "# TYPE pushgateway_store_quota counter\npushgateway_store_quota 1\n";

/// A push sent to a fresh node before it is ready (a client that does not ask, or one
/// forwarded by a follower) is held by the leader until the version has risen, not
/// proposed and judged by version 1's rules.
#[test]
fn a_push_sent_before_a_fresh_node_is_ready_waits_for_its_version() {
    for attempt in 0..3 {
        story(&format!("attempt {attempt}: a fresh single node, pushed to from its first moment"));
        let server = Server::start_node(&[], std::sync::Arc::new(tempfile::tempdir().unwrap()));
        let (code, body) = loop {
            // 0: not listening yet; 503: starting, nothing proposed.
            match server.put("/metrics/job/early", QUOTA_AS_COUNTER) {
                (0 | 503, _) => std::thread::sleep(Duration::from_millis(5)),
                answered => break answered,
            }
        };
        assert_eq!(code, 400, "judged by version 1's own families: {body}");
    }
}

#[test]
fn the_leader_raises_the_version_once_every_member_understands_it() {
    let _one = exclusive();
    story("three nodes of this build: the version rises from 1 to 2 by itself");
    let mut c = Cluster::start(3, &[]);
    for i in 0..3 {
        c.nodes[i].wait_for(Duration::from_secs(60), "this build's version", || format_version(&c, i) == Some(LATEST));
    }
    let (code, body) = c.nodes[0].put("/metrics/job/after_switch", "v 1\n");
    assert_eq!(code, 200, "{body}");

    story("each member answers what it understands on the peer route");
    let (code, body) = peer_post(&c.peers[1], "/raft/version", Vec::new());
    assert_eq!((code, body.as_bytes()), (200, &[LATEST as u8][..]), "bincode of this build's version");

    story("a version switch forwarded by a peer is refused, whatever version it names");
    let leader = c.leader();
    // Vec<EncodedCommand> of one command, SetVersion (variant 3) { version }.
    for version in [2u8, LATEST as u8, 9] {
        let (code, body) = peer_post(&c.peers[leader], "/raft/propose", vec![1, 2, 3, version]);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("a forwarded version switch"), "version {version}: {body}");
    }
    for i in 0..3 {
        assert_eq!(format_version(&c, i), Some(LATEST), "node {}", i + 1);
    }

    story("a node that understands only version 1 asks to join: refused, and never a member");
    let old = old_build_peer();
    // AdminRequest::Add (variant 0) { id: 9, addr, learner_only: true }.
    let mut add = vec![0u8, 9, old.len() as u8];
    add.extend_from_slice(old.as_bytes());
    add.push(1);
    let (code, body) = peer_post(&c.peers[leader], "/raft/admin", add);
    assert_eq!(code, 200, "{body}");
    let refusal = format!("understands replicated format version 1, and the cluster is at version {LATEST}");
    assert!(body.contains(&refusal), "{body}");
    let (_, status) = c.nodes[leader].get("/api/v1/cluster");
    assert!(!status.contains(&old), "the old build became a member: {status}");

    story("the version in force survives a restart of every node");
    c.restart_all();
    for i in 0..3 {
        assert_eq!(format_version(&c, i), Some(LATEST), "node {} after its restart", i + 1);
    }
    assert!(c.identical_pushed_lines().iter().any(|l| l.starts_with("v{")));
}
