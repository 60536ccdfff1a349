//! What the replicated log makes possible beyond upstream, on three real nodes: groups that
//! expire (`__ttl__`, `--push.default-ttl`), several groups pushed all or none
//! (`/metrics/batch`), and delete by match (`PUT /api/v1/admin/delete`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::Server;

/// The groups (their labels) every running node holds; asserts the nodes agree.
fn groups(c: &Cluster) -> Vec<Value> {
    c.identical_pushed_lines();
    let (code, body) = c.nodes.iter().find(|n| n.is_running()).unwrap().get("/api/v1/metrics");
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["data"].as_array().unwrap().iter().map(|g| g["labels"].clone()).collect()
}

fn jobs(c: &Cluster) -> BTreeSet<String> {
    groups(c).iter().map(|l| l["job"].as_str().unwrap().to_string()).collect()
}

fn has_job(node: &Server, job: &str) -> Option<bool> {
    let (code, body) = node.get("/api/v1/metrics");
    if code != 200 {
        return None;
    }
    let doc: Value = serde_json::from_str(&body).ok()?;
    Some(doc["data"].as_array()?.iter().any(|g| g["labels"]["job"] == job))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_group_pushed_with_a_ttl_expires_on_every_node_at_one_log_index() {
    let _one = exclusive();
    story("three nodes; groups with a TTL of 5 s, of an hour, and without");
    let mut c = Cluster::start(3, &[]);
    let pushed_at = Instant::now();
    assert_eq!(c.nodes[1].put("/metrics/job/short/instance/a/__ttl__/5s", "g 1\n").0, 200);
    assert_eq!(c.nodes[2].put("/metrics/job/long/__ttl__@base64/MWg", "g 2\n").0, 200, "1h in base64");
    assert_eq!(c.nodes[0].put("/metrics/job/forever", "g 3\n").0, 200);
    assert_eq!(jobs(&c), set(&["forever", "long", "short"]), "__ttl__ is not a grouping label");

    story("the expiry shows in the JSON of every node, alike");
    let doc: Value = serde_json::from_str(&c.nodes[0].get("/api/v1/metrics").1).unwrap();
    let expiry = |job: &str| {
        doc["data"].as_array().unwrap().iter().find(|g| g["labels"]["job"] == job).unwrap()["expiry"].clone()
    };
    assert_eq!(expiry("short")["ttl"], "5s");
    assert_eq!(expiry("short")["source"], "push");
    assert_eq!(expiry("long")["ttl"], "1h0m0s");
    assert!(expiry("forever").is_null(), "no TTL, no default: never expires");
    let page = c.nodes[2].get("/").1;
    assert!(page.contains("expires: "), "the web page shows the expiry");

    story("not before its time: present on every node while younger than 5 s");
    while pushed_at.elapsed() < Duration::from_millis(3500) {
        for node in &c.nodes {
            assert_eq!(has_job(node, "short"), Some(true), "expired early on {}", node.base);
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    story("then gone from every node, removed by one entry at the same log index");
    for node in &c.nodes {
        node.wait_for(Duration::from_secs(30), "the short group to expire", || has_job(node, "short") == Some(false));
    }
    assert!(pushed_at.elapsed() >= Duration::from_secs(5));
    let indexes: BTreeSet<u64> = (0..3)
        .map(|i| {
            let removal = c.status(i)["removals"]["last_expiry"].clone();
            assert_eq!(removal["groups"], 1, "node {i}: {removal}");
            removal["index"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(indexes.len(), 1, "every node removed it at the same index: {indexes:?}");
    assert_eq!(jobs(&c), set(&["forever", "long"]));

    story("a restart of every node replays the log: the expiry is neither lost nor applied twice");
    c.restart_all();
    assert_eq!(jobs(&c), set(&["forever", "long"]));
    assert_eq!(c.nodes[0].put("/metrics/job/short/instance/a", "g 4\n").0, 200, "pushed again, without a TTL");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(jobs(&c), set(&["forever", "long", "short"]), "a push without __ttl__ does not expire");
    assert_eq!(
        c.nodes[1].request("DELETE", "/metrics/job/long/__ttl__/1h", &[], vec![]).0,
        202,
        "delete ignores __ttl__"
    );
    assert_eq!(jobs(&c), set(&["forever", "short"]));

    story("refusals: a TTL that is not a positive duration");
    for bad in ["/metrics/job/x/__ttl__/0s", "/metrics/job/x/__ttl__/soon", "/metrics/job/x/__ttl__/1m/__ttl__/2m"] {
        let (code, body) = c.nodes[0].put(bad, "g 1\n");
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("__ttl__"), "{body}");
    }
}

#[test]
fn the_default_ttl_expires_groups_without_their_own_and_a_leader_kill_loses_nothing_else() {
    let _one = exclusive();
    story("three nodes with --push.default-ttl=6s; a stream of pushes with a TTL of an hour");
    let mut c = Cluster::start(3, &["--push.default-ttl=6s"]);
    for i in 0..12 {
        let (code, body) = c.nodes[i % 3].put(&format!("/metrics/job/stale/shard/{i}"), "g 1\n");
        assert_eq!(code, 200, "{body}");
    }
    let stale_pushed = Instant::now();
    let doc: Value = serde_json::from_str(&c.nodes[0].get("/api/v1/metrics").1).unwrap();
    assert_eq!(doc["data"][0]["expiry"]["source"], "default");
    assert_eq!(doc["data"][0]["expiry"]["ttl"], "6s");

    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut killed: Option<usize> = None;
    let mut seq = 0u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    while stale_pushed.elapsed() < Duration::from_secs(14) || acked.len() < 30 {
        assert!(Instant::now() < deadline, "pushes were not accepted again after the kill");
        let target = (seq as usize) % 3;
        if killed != Some(target) {
            let (code, _) =
                c.nodes[target].put(&format!("/metrics/job/live/seq/{seq}/__ttl__/1h"), &format!("v {seq}\n"));
            if code == 200 {
                acked.insert(seq);
            } else {
                assert!(matches!(code, 503 | 504 | 0), "unexpected status {code}");
            }
        }
        if killed.is_none() && stale_pushed.elapsed() >= Duration::from_millis(5500) {
            let leader = c.leader();
            story(&format!("SIGKILL the leader (node {}) as the stale groups expire", leader + 1));
            c.nodes[leader].signal_and_wait("KILL");
            killed = Some(leader);
        }
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
    }

    story("the stale groups are gone everywhere, every acknowledged push is there");
    let k = killed.unwrap();
    c.nodes[k].restart();
    for node in &c.nodes {
        node.wait_for(Duration::from_secs(90), "ready", || node.get("/-/ready").0 == 200);
        node.wait_for(Duration::from_secs(30), "expiry", || has_job(node, "stale") == Some(false));
    }
    let last = *acked.iter().next_back().unwrap();
    c.nodes[k].wait_for(Duration::from_secs(60), "catch-up", || {
        c.nodes[k].try_pushed_lines().is_some_and(|l| l.iter().any(|l| l.contains(&format!("seq=\"{last}\""))))
    });
    let lines = c.identical_pushed_lines();
    let present: BTreeSet<u64> =
        lines.iter().filter_map(|l| l.split("seq=\"").nth(1)?.split('"').next()?.parse().ok()).collect();
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged pushes lost: {lost:?}");
    assert!(!lines.iter().any(|l| l.contains("job=\"stale\"")));
    let indexes: BTreeSet<Option<u64>> =
        (0..3).map(|i| c.status(i)["removals"]["last_expiry"]["index"].as_u64()).collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
}

#[test]
fn a_batch_of_groups_is_stored_whole_or_not_at_all() {
    let _one = exclusive();
    story("three nodes; one batch of three groups through a follower");
    let c = Cluster::start(3, &[]);
    let follower = (c.leader() + 1) % 3;
    let batch = "# GROUP /job/batch/shard/1\n# TYPE rows counter\nrows 10\n\
                 # GROUP /job/batch/shard/2/__ttl__/1h\n# TYPE rows counter\nrows 20\n\
                 # GROUP /job@base64/YmF0Y2g/shard/3\n# TYPE rows counter\nrows 30\n";
    let (code, body) = c.nodes[follower].put("/metrics/batch", batch);
    assert_eq!(code, 200, "{body}");
    let lines = c.identical_pushed_lines();
    for shard in 1..=3 {
        assert!(lines.iter().any(|l| l.starts_with("rows{") && l.contains(&format!("shard=\"{shard}\""))), "{lines:?}");
    }

    story("a batch with one inconsistent group is refused whole, naming the group");
    let bad = "# GROUP /job/batch/shard/1\n# TYPE rows counter\nrows 11\n\
               # GROUP /job/batch/shard/4\n# TYPE rows counter\nrows 40\n\
               # GROUP /job/other\n# TYPE rows gauge\nrows 1\n";
    let (code, body) = c.nodes[follower].request("POST", "/metrics/batch", &[], bad.as_bytes().to_vec());
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("group {job=\"other\"}") && body.contains("rows"), "{body}");
    let after = c.identical_pushed_lines();
    assert!(
        after.iter().any(|l| l.starts_with("rows{") && l.contains("shard=\"1\"") && l.ends_with(" 10")),
        "{after:?}"
    );
    assert!(!after.iter().any(|l| l.contains("shard=\"4\"")), "shard 4 was not stored: {after:?}");
    assert!(!after.iter().any(|l| l.starts_with("rows{") && l.contains("job=\"other\"")));

    story("refusals before proposing name their group, and store nothing");
    for (body, want) in [
        ("# GROUP /job/a\nx 1\n# GROUP /job/b\nnot a metric line\n", "group /job/b:"),
        ("# GROUP /job/a/__x/1\nx 1\n", "improper label name"),
        ("# GROUP /job/a\nx 1\n# GROUP /job/a\ny 1\n", "twice"),
        ("x 1\n# GROUP /job/a\n", "before the first"),
        ("x 1\n", "before the first"),
    ] {
        let (code, answer) = c.nodes[0].put("/metrics/batch", body);
        assert_eq!(code, 400, "{body}: {answer}");
        assert!(answer.contains(want), "{body}: {answer}");
    }
    assert_eq!(c.identical_pushed_lines(), after);
}

#[test]
fn delete_by_match_removes_the_matching_groups_from_every_node() {
    let _one = exclusive();
    story("three nodes; six groups");
    let c = Cluster::start(3, &[]);
    for (job, shard) in [("nightly", "1"), ("nightly", "2"), ("nightly", "10"), ("hourly", "1"), ("web", "a")] {
        assert_eq!(c.nodes[0].put(&format!("/metrics/job/{job}/shard/{shard}"), "g 1\n").0, 200);
    }
    assert_eq!(c.nodes[0].put("/metrics/job/nightly", "g 1\n").0, 200);
    let delete = |node: usize, query: &str| {
        let (code, body) = c.nodes[node].request("PUT", &format!("/api/v1/admin/delete?{query}"), &[], vec![]);
        (code, serde_json::from_slice::<Value>(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())))
    };
    let selector = |s: &str| format!("match[]={}", percent(s));

    story("a dry run lists, and deletes nothing");
    let (code, answer) = delete(1, &format!("{}&dry_run=true", selector(r#"{job="nightly",shard=~"[0-9]"}"#)));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["data"]["groups"], 2, "{answer}");
    assert_eq!(groups(&c).len(), 6);

    story("deleted: one entry, its count, the same on every node");
    let (code, answer) =
        delete(2, &format!("{}&{}", selector(r#"{job="nightly",shard=~"[0-9]"}"#), selector(r#"{job=~"hour.*"}"#)));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["data"]["groups"], 3, "{answer}");
    let left: BTreeSet<String> = groups(&c).iter().map(|l| l.to_string()).collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().any(|l| l.contains("\"10\"")) && left.iter().any(|l| l.contains("web")));
    let indexes: BTreeSet<Option<u64>> =
        (0..3).map(|i| c.status(i)["removals"]["last_delete_matching"]["index"].as_u64()).collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(indexes.iter().next().unwrap().is_some());

    story("refusals: no selector, a bad one, one that would match everything, the wrong method");
    for query in
        [String::new(), selector("{job=~\"(\"}"), selector("{job=~\".*\"}"), selector("up{job=\"web\"}"), "x=1".into()]
    {
        let (code, answer) = delete(0, &query);
        assert_eq!(code, 400, "{query}: {answer}");
    }
    assert_eq!(c.nodes[0].request("DELETE", "/api/v1/admin/delete?match[]=%7Bjob%3D%22web%22%7D", &[], vec![]).0, 405);
    assert_eq!(groups(&c).len(), 3);
}

/// Percent-encodes a query value.
fn percent(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
