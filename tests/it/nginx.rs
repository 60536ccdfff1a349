//! The nginx example (`deploy/nginx/nginx.conf`) in front of three real nodes: while a
//! follower is killed, the leader is killed and a node is paused, every scrape through it
//! answers with the pushed series within Prometheus's default scrape timeout, and pushes
//! through it are stored.

use std::time::{Duration, Instant};

use testkit::{Process, Spec};

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::{free_port, signal};

/// The example with each `pushgateway-N:9091` replaced by node N's address and its listen
/// port by `listen`; panics unless the example names exactly the three nodes.
fn nginx_config(listen: &str, nodes: &[String]) -> String {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/nginx.conf")).unwrap();
    let mut named = 0;
    let mut out = String::new();
    for line in template.lines() {
        let mut line = line.to_string();
        for (i, node) in nodes.iter().enumerate() {
            let name = format!("server pushgateway-{}:9091", i + 1);
            if line.contains(&name) {
                line = line.replace(&name, &format!("server {node}"));
                named += 1;
            }
        }
        if line.trim() == "listen 9091;" {
            line = format!("        listen {listen};");
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert_eq!(named, 3, "the example names the three nodes of the compose file");
    out
}

#[test]
fn scrapes_through_the_nginx_example_never_fail_while_nodes_are_killed_or_paused() {
    let _one = exclusive();
    let mut c = Cluster::start(3, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.base.trim_start_matches("http://").to_string()).collect();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_config(&listen, &nodes)).unwrap();
    let pid = dir.path().join("nginx.pid");
    let _nginx = Process::start(
        Spec::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir.path().display().to_string())
            .arg("-c")
            .arg(conf.display().to_string())
            .arg("-g")
            .arg(format!("daemon off; pid {};", pid.display()))
            .label("nginx"),
    )
    .unwrap();
    let lb = format!("http://{listen}");
    // Prometheus's default scrape timeout.
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    testkit::wait_until(Duration::from_secs(30), "nginx answers", || {
        http.get(format!("{lb}/-/healthy")).send().is_ok_and(|r| r.status() == 200)
    })
    .unwrap();
    let push = |series: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http
                .put(format!("{lb}/metrics/job/through_nginx/series/{series}"))
                .body(format!("{series} 1\n"))
                .send();
            match r {
                Ok(r) if r.status() == 200 => return,
                other if Instant::now() > deadline => panic!("push {series} through nginx: {other:?}"),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    };
    let mut scrapes = 0;
    let mut scrape_all = |expect: &[&str], what: &str| {
        for _ in 0..30 {
            let r = http.get(format!("{lb}/metrics")).send();
            let body = match r {
                Ok(r) if r.status() == 200 => r.text().unwrap(),
                other => panic!("{what}: a scrape through nginx failed: {other:?}"),
            };
            for series in expect {
                assert!(body.contains(&format!("{series}{{")), "{what}: {series} missing from a scrape");
            }
            scrapes += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    story("a push through nginx; scrapes while all run");
    push("first");
    scrape_all(&["first"], "all nodes up");

    let follower = (c.leader() + 1) % 3;
    story("a follower killed: scrapes keep answering, a push lands");
    c.nodes[follower].signal_and_wait("KILL");
    scrape_all(&["first"], "follower down");
    push("second");
    c.nodes[follower].restart();
    // Caught up: a consistent read through it holds the push it missed. (Killing the
    // leader before then would leave it serving, marked stale, what it had applied.)
    c.nodes[follower].wait_for(Duration::from_secs(60), "caught up", || {
        c.nodes[follower].try_pushed_lines().is_some_and(|lines| lines.iter().any(|l| l.starts_with("second{")))
    });

    let leader = c.leader();
    story("the leader killed: scrapes keep answering through the election, a push lands");
    c.nodes[leader].signal_and_wait("KILL");
    scrape_all(&["first", "second"], "leader down");
    push("third");
    c.nodes[leader].restart();
    c.nodes[leader].wait_for(Duration::from_secs(60), "caught up", || {
        c.nodes[leader].try_pushed_lines().is_some_and(|lines| lines.iter().any(|l| l.starts_with("third{")))
    });

    let paused = (c.leader() + 2) % 3;
    story("a node paused (it accepts connections and never answers): scrapes time out on it and move on");
    signal(c.nodes[paused].pid(), "STOP");
    scrape_all(&["first", "second", "third"], "a node paused");
    signal(c.nodes[paused].pid(), "CONT");
    assert_eq!(scrapes, 120);
}
