//! Hostile input against three real nodes: requests whose cost would grow with the
//! product of their dimensions, or whose size would exhaust a node, are refused with a
//! 4xx that names the limit, store nothing on any node, and do not hold up a normal push
//! made through another node meanwhile.
//!
//! Bounds here are liveness bounds, not speed: before the limits existed, the first
//! request stalled the whole cluster for about two minutes on this machine.

use std::time::{Duration, Instant};

use testkit::hostile::{attacks, Attack};

use crate::cluster::{exclusive, story, Cluster};

/// A push of `body` through node `i`, answered with its status and body text.
fn send(c: &Cluster, i: usize, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let (code, body) = c.nodes[i].request("PUT", path, headers, body);
    (code, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn oversized_and_pathological_pushes_are_refused_and_stall_nothing() {
    let _one = exclusive();
    let c = Cluster::start(3, &[]);
    let leader = c.leader();
    let other = (leader + 1) % 3;
    for (n, attack) in attacks().into_iter().enumerate() {
        let Attack { what, path, headers, body, flag } = &attack;
        story(what);
        // The attack through every node at once, and meanwhile a normal push.
        let (code, text, took) = std::thread::scope(|scope| {
            let attacks: Vec<_> = (0..3)
                .map(|i| {
                    let c = &c;
                    scope.spawn(move || {
                        let started = Instant::now();
                        (send(c, i, path, headers, body.clone()), started.elapsed())
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(20));
            let started = Instant::now();
            let (code, text) = send(&c, other, &format!("/metrics/job/normal/n/{n}"), &[], b"normal 1\n".to_vec());
            let took = started.elapsed();
            for (i, attack) in attacks.into_iter().enumerate() {
                let ((code, text), after) = attack.join().expect("attack thread");
                assert_eq!(code, 400, "{what} through node {i}: {text}");
                assert!(text.contains(flag), "{what}: the message names {flag}: {text}");
                eprintln!("   node {i}: 400 after {:.2} s", after.as_secs_f64());
            }
            (code, text, took)
        });
        assert_eq!(code, 200, "a normal push while {what}: {text}");
        eprintln!("   a normal push through node {other} meanwhile: {:.2} s", took.as_secs_f64());
        assert!(took < Duration::from_secs(10), "a normal push took {took:?} while {what}");
    }
    story("nothing of the refused pushes is stored, on any node");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().all(|l| !l.contains("poison")), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("normal{")).count(), attacks().len(), "{lines:?}");
    story("memory stayed bounded on every node");
    for node in &c.nodes {
        let peak = peak_rss_bytes(node.pid());
        eprintln!("   node pid {}: peak resident memory {} MiB", node.pid(), peak >> 20);
        assert!(peak < 1 << 30, "peak resident memory {peak} bytes");
    }
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number") * 1024
}

/// The scrape line of `series` (name and labels as rendered) on `node`, as a number.
fn sample(c: &Cluster, node: usize, series: &str) -> Option<f64> {
    let (code, body) = c.nodes[node].get("/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_full_store_refuses_growth_alike_on_every_node_and_keeps_serving() {
    let _one = exclusive();
    let c = Cluster::start(3, &["--store.max-groups=12", "--store.max-series=40"]);
    c.leader();
    story("twelve groups, pushed through every node in turn, fill the group quota");
    for g in 0..12 {
        let (code, text) = send(&c, g % 3, &format!("/metrics/job/fill/g/{g}"), &[], b"m 1\n".to_vec());
        assert_eq!(code, 200, "group {g}: {text}");
    }
    story("a thirteenth group is refused with 507 through every node, naming the quota");
    for i in 0..3 {
        let (code, text) = send(&c, i, "/metrics/job/fill/g/new", &[], b"m 1\n".to_vec());
        assert_eq!(code, 507, "through node {i}: {text}");
        assert!(text.contains("--store.max-groups") && text.contains("would hold 13 groups"), "{text}");
    }
    story("the groups already there are still replaced");
    let (code, text) = send(&c, 1, "/metrics/job/fill/g/0", &[], b"m 2\n".to_vec());
    assert_eq!(code, 200, "{text}");
    story("growing a group past the series quota is refused and recorded as a failed push");
    let wide: String = (0..40).map(|i| format!("m{{s=\"{i}\"}} 1\n")).collect();
    let (code, text) = send(&c, 2, "/metrics/job/fill/g/1", &[], wide.into_bytes());
    assert_eq!(code, 507, "{text}");
    assert!(text.contains("--store.max-series") && text.contains("would hold 51 series"), "{text}");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().all(|l| !l.contains("g=\"new\"") && !l.contains("s=\"")), "{lines:?}");
    let failed = |l: &&String| l.starts_with("push_failure_time_seconds{g=\"1\",") && !l.ends_with(" 0");
    assert_eq!(lines.iter().filter(failed).count(), 1, "the failure is recorded: {lines:?}");
    story("every node reports the same usage against the same quotas");
    for i in 0..3 {
        assert_eq!(sample(&c, i, "pushgateway_store_usage{resource=\"groups\"}"), Some(12.0));
        assert_eq!(sample(&c, i, "pushgateway_store_usage{resource=\"series\"}"), Some(12.0));
        assert_eq!(sample(&c, i, "pushgateway_store_quota{resource=\"groups\"}"), Some(12.0));
    }
    story("deleting a group makes room for another");
    let (code, text) = c.nodes[0].request("DELETE", "/metrics/job/fill/g/5", &[], vec![]);
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&text));
    let (code, text) = send(&c, 0, "/metrics/job/fill/g/new", &[], b"m 1\n".to_vec());
    assert_eq!(code, 200, "{text}");
}

/// Reads what the server sends until it closes the connection (or `within` passes).
fn until_closed(stream: &mut std::net::TcpStream, within: Duration) -> String {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn clients_that_hold_connections_are_cut_off_and_refused_alike_on_every_node() {
    use std::io::Write;
    let _one = exclusive();
    let c =
        Cluster::start(3, &["--web.max-connections=6", "--web.header-read-timeout=2s", "--web.body-read-timeout=2s"]);
    c.leader();
    let addr = |i: usize| c.nodes[i].base.trim_start_matches("http://").to_string();
    let connect = |i: usize| std::net::TcpStream::connect(addr(i)).expect("connect");

    story("a body promised and never sent is answered 408 on every node, and nothing is stored");
    let stalled: Vec<_> = (0..3)
        .map(|i| {
            let mut s = connect(i);
            let head = "PUT /metrics/job/poison HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nstalled 1\n";
            s.write_all(head.as_bytes()).expect("write");
            (i, s, Instant::now())
        })
        .collect();
    for (i, mut s, started) in stalled {
        let answer = until_closed(&mut s, Duration::from_secs(30));
        assert!(answer.starts_with("HTTP/1.1 408"), "node {i}: {answer}");
        eprintln!("   node {i}: 408 after {:.1} s", started.elapsed().as_secs_f64());
    }

    story("a head sent a byte at a time is cut off");
    let mut slow = connect(0);
    let started = Instant::now();
    for byte in b"PUT /metrics/job/poison HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n" {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = until_closed(&mut slow, Duration::from_secs(30));
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(20), "cut off after {:?}", started.elapsed());

    story("six silent connections fill node 0's cap: a seventh is refused with 503, node 1 serves on");
    let held: Vec<_> = (0..6).map(|_| connect(0)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut seventh = connect(0);
    let answer = until_closed(&mut seventh, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("(--web.max-connections)"), "{answer}");
    let (code, text) = send(&c, 1, "/metrics/job/normal", &[], b"normal 1\n".to_vec());
    assert_eq!(code, 200, "{text}");

    story("the silent connections are closed by the header timeout, and node 0 serves again");
    for mut s in held {
        until_closed(&mut s, Duration::from_secs(30));
    }
    let (code, text) = send(&c, 0, "/metrics/job/normal", &[], b"normal 2\n".to_vec());
    assert_eq!(code, 200, "{text}");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().all(|l| !l.contains("poison")), "{lines:?}");
}

/// Bodies a peer could send that announce more than they hold, or are garbage, on every
/// peer route of every node: each is answered 4xx before anything is allocated or
/// applied, and the cluster keeps its leader and goes on taking pushes.
#[test]
fn malformed_peer_requests_are_refused_and_change_nothing() {
    let _one = exclusive();
    let c = Cluster::start(3, &[]);
    let leader = c.leader();
    let term_before = c.nodes[leader].get("/api/v1/cluster").1;
    // The request that killed a node: a string announced as 2^60 bytes, in 11 bytes.
    let mut huge_string = vec![0xfd];
    huge_string.extend_from_slice(&(1u64 << 60).to_le_bytes());
    huge_string.extend_from_slice(b"ab");
    let mut huge_vec = vec![0xfd];
    huge_vec.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("a 2^60-byte string in 11 bytes", huge_string),
        ("a 2^40-element vector", huge_vec),
        ("garbage", (0..200u32).map(|i| (i * 37 % 251) as u8).collect()),
        ("nothing", Vec::new()),
        ("1 MiB of 0xff", vec![0xff; 1 << 20]),
    ];
    let routes = [
        "/raft/append",
        "/raft/vote",
        "/raft/snapshot",
        "/raft/propose",
        "/raft/admin",
        "/raft/version",
        "/raft/identity",
        "/raft/adopt",
    ];
    // A connection per request: a body refused before it is read closes its connection,
    // which a pooled client could otherwise pick up for the next request.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (i, peer) in c.peers.iter().enumerate() {
        for route in routes {
            for (what, body) in &bodies {
                // An empty body is the whole of a valid question on these routes.
                if body.is_empty() && ["/raft/version", "/raft/identity", "/raft/adopt"].contains(&route) {
                    continue;
                }
                let answer = client.post(format!("http://{peer}{route}")).body(body.clone()).send();
                let status = match answer {
                    Ok(r) => r.status().as_u16(),
                    // A body over a route's cap is answered 413 before it is read; the
                    // client may see the connection close while it is still sending.
                    Err(_) if body.len() > 64 * 1024 => continue,
                    Err(e) => panic!("node {i} {route} with {what}: {e}"),
                };
                assert!((400..500).contains(&status), "node {i} {route} with {what}: {status}, not a refusal");
            }
        }
        assert!(c.nodes[i].is_running(), "node {i} is still running");
    }
    story("every node still serves, and the cluster takes pushes under the same leader");
    let (code, text) = send(&c, (leader + 1) % 3, "/metrics/job/after/p/1", &[], b"after 1\n".to_vec());
    assert_eq!(code, 200, "{text}");
    assert_eq!(c.leader(), leader);
    let term = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["term"].clone();
    assert_eq!(term(&c.nodes[leader].get("/api/v1/cluster").1), term(&term_before), "no election happened");
    let lines = c.identical_pushed_lines();
    assert!(lines.iter().any(|l| l.starts_with("after{")), "{lines:?}");
}

/// `cluster add` promotes a node that joined by itself (with the secret); an address
/// that never joined is refused and never contacted.
#[test]
fn adding_a_node_that_never_joined_is_refused() {
    let _one = exclusive();
    let c = Cluster::start(3, &["--cluster.propose-timeout=2s"]);
    let leader = c.leader();
    // A listener that records whether anyone connects to it.
    let bait = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let address = bait.local_addr().unwrap().to_string();
    let body = format!("{{\"id\":9,\"address\":\"{address}\"}}");
    let (code, answer) =
        c.nodes[(leader + 1) % 3].request("POST", "/api/v1/admin/cluster/add", crate::cluster::JSON, body.into_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("has not joined") && answer.contains("--cluster.join"), "{answer}");
    assert!(bait.accept().is_err(), "the refused address was contacted");
    let members = c.nodes[leader].get("/api/v1/cluster").1;
    assert!(!members.contains(&address), "{members}");
}
