//! `--web.access-config.file`: roles and push scopes of users and bearer tokens, on three
//! nodes that share one file, rewritten while they run; and a file that cannot be served
//! stopping start-up.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::cluster::{exclusive, story, Cluster};
use crate::harness::start_refused_for;

/// The read-only token of the file (its SHA-256 is what the file lists).
const READ_TOKEN: &str = "s3cret-scrape-token";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the access file: `ci` (password `ci-pw`) may push to the jobs `ci_jobs` only,
/// `ops` (`ops-pw`) may do anything, the token [`READ_TOKEN`] may read.
fn write_access_file(path: &Path, ci_jobs: &[&str]) {
    // Cost 4: a debug build's bcrypt is slow, and the cost does not change the check.
    let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
    let rules: String = ci_jobs.iter().map(|job| format!("      - job: \"{job}\"\n")).collect();
    let text = format!(
        "users:\n  ci:\n    password: \"{ci}\"\n    roles: [push]\n    push:\n{rules}  \
         ops:\n    password: \"{ops}\"\n    roles: [push, read, admin]\n\
         tokens:\n  - name: prometheus\n    sha256: \"{token}\"\n    roles: [read]\n",
        ci = hash("ci-pw"),
        ops = hash("ops-pw"),
        token = sha256_hex(READ_TOKEN),
    );
    // Written aside and renamed, as a configuration tool replaces a file.
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn roles_and_push_scopes_hold_on_every_node_and_follow_the_file() {
    let _one = exclusive();
    story("three nodes share one access file: ci may push to job a, ops may do anything, a token may read");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.yml");
    write_access_file(&file, &["a"]);
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  alice: {}\n", bcrypt::hash("alice-pw", 4).unwrap())).unwrap();
    let access_flag = format!("--web.access-config.file={}", file.display());
    let web_flag = format!("--web.config.file={}", web.display());
    let mut c = Cluster::spawn(3, &[&access_flag, &web_flag]);
    let ops = basic("ops", "ops-pw");
    for node in &mut c.nodes {
        node.set_authorization(&ops);
    }
    c.wait_all_ready();
    let ci = basic("ci", "ci-pw");
    let bearer = format!("Bearer {READ_TOKEN}");
    let call = |node: usize, method: &str, path: &str, auth: &str, body: &str| {
        let (code, answer) = c.nodes[node].request(method, path, &[("Authorization", auth)], body.as_bytes().to_vec());
        (code, String::from_utf8_lossy(&answer).into_owned())
    };

    story("ops seeds job b, ci pushes to job a");
    assert_eq!(call(0, "PUT", "/metrics/job/b", &ops, "seed 1\n").0, 200);
    let (code, answer) = call(1, "PUT", "/metrics/job/a", &ci, "x 1\n");
    assert_eq!(code, 200, "{answer}");

    story("ci may push, not read: the scrape and the JSON API answer 403 on every node");
    for node in 0..3 {
        for path in ["/metrics", "/api/v1/metrics"] {
            let (code, answer) = call(node, "GET", path, &ci, "");
            assert_eq!(code, 403, "node {node} {path}: {answer}");
            assert_eq!(answer, "user \"ci\" may not read: that needs the read role, and its roles are [push]\n");
        }
    }

    story("ci may not wipe");
    let (code, answer) = call(2, "PUT", "/api/v1/admin/wipe", &ci, "");
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("user \"ci\" may not use the admin API"), "{answer}");

    story("ci may not push to or delete job b: PUT, POST and DELETE answer 403 naming the group and the rule");
    for (method, change) in [("PUT", "push to"), ("POST", "push to"), ("DELETE", "delete")] {
        let (code, answer) = call(2, method, "/metrics/job/b", &ci, "seed 666\n");
        assert_eq!(code, 403, "{method}: {answer}");
        assert_eq!(
            answer,
            format!("user \"ci\" may not {change} group {{job=\"b\"}}: its push rules allow job \"a\"\n")
        );
    }
    let (code, answer) = call(0, "PUT", "/metrics/job/a/shard/1", &ci, "x 2\n");
    assert_eq!(code, 200, "other labels are free under a rule on the job alone: {answer}");

    story("ci may not batch a group of job b with one of job a, nor delete by match");
    let batch = "# GROUP /job/a/shard/9\nx 666\n# GROUP /job/b\nseed 666\n";
    let (code, answer) = call(1, "PUT", "/metrics/batch", &ci, batch);
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("may not push to group {job=\"b\"}"), "{answer}");
    let (code, answer) = call(1, "PUT", "/api/v1/admin/delete?match[]=%7Bjob%3D%22b%22%7D", &ci, "");
    assert_eq!(code, 403, "{answer}");

    story("job b is unchanged on every node, job a holds ci's pushes");
    let lines = c.identical_pushed_lines();
    assert!(lines.contains(&"seed{instance=\"\",job=\"b\"} 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"x{instance=\"\",job=\"a\"} 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"x{instance=\"\",job=\"a\",shard=\"1\"} 2".to_string()), "{lines:?}");
    // The refused pushes' value: a line ending in it (a push time may hold the digits).
    assert!(!lines.iter().any(|l| l.ends_with(" 666")), "a refused push was stored: {lines:?}");

    story("the read token scrapes every node, and may not push");
    for node in 0..3 {
        let (code, answer) = call(node, "GET", "/metrics", &bearer, "");
        assert_eq!(code, 200, "node {node}: {answer}");
        assert!(answer.contains("seed{instance=\"\",job=\"b\"} 1"), "{answer}");
    }
    assert_eq!(call(0, "GET", "/api/v1/metrics", &bearer, "").0, 200);
    let (code, answer) = call(0, "PUT", "/metrics/job/a", &bearer, "x 3\n");
    assert_eq!(code, 403, "{answer}");
    assert!(answer.starts_with("token \"prometheus\" may not push or delete"), "{answer}");

    story("an unknown token, a wrong password, an unknown user, no credentials: 401 with WWW-Authenticate");
    let http = reqwest::blocking::Client::new();
    let wrong = [
        Some("Bearer not-the-token".to_string()),
        Some(basic("ci", "wrong")),
        Some(basic("mallory", "ci-pw")),
        Some(format!("Basic {}", sha256_hex(READ_TOKEN))),
        None,
    ];
    for auth in wrong {
        let mut request = http.put(format!("{}/metrics/job/a", c.nodes[0].base)).body("x 4\n");
        if let Some(auth) = &auth {
            request = request.header("Authorization", auth);
        }
        let answer = request.send().unwrap();
        assert_eq!(answer.status().as_u16(), 401, "{auth:?}");
        assert_eq!(answer.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Basic"));
        assert_eq!(answer.text().unwrap(), "Unauthorized\n");
    }

    story("the subcommands send a token from --auth.token-file");
    std::fs::write(dir.path().join("token"), format!("{READ_TOKEN}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(["cluster", "status", "--server", &c.nodes[1].base, "--auth.token-file"])
        .arg(dir.path().join("token"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"leader\""), "{out:?}");

    story("alice of --web.config.file keeps every role");
    let alice = basic("alice", "alice-pw");
    assert_eq!(call(1, "GET", "/api/v1/status", &alice, "").0, 200);
    assert_eq!(call(1, "POST", "/metrics/job/c", &alice, "y 1\n").0, 200);

    story("ops (admin) wipes; every node is empty");
    assert_eq!(call(0, "PUT", "/api/v1/admin/wipe", &ops, "").0, 202);
    for node in &c.nodes {
        node.wait_for(Duration::from_secs(60), "the wipe applied", || {
            node.try_pushed_lines().is_some_and(|lines| lines.is_empty())
        });
    }

    story("the file rewritten, ci may push to job b too: taken by every node without a restart");
    write_access_file(&file, &["a", "b"]);
    let rewritten = Instant::now();
    for node in 0..3 {
        c.nodes[node].wait_for(Duration::from_secs(20), "ci allowed job b", || {
            call(node, "PUT", "/metrics/job/b", &ci, "seed 2\n").0 == 200
        });
    }
    eprintln!("taken by every node {:?} after the rewrite", rewritten.elapsed());
    assert_eq!(call(0, "GET", "/metrics", &ci, "").0, 403, "still no read role");
}

#[test]
fn an_access_file_that_cannot_be_served_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let bad: Vec<(&str, Option<String>, &str)> = vec![
        ("missing.yml", None, "No such file"),
        ("unknown-key.yml", Some("groups: {}\n".into()), "unknown field `groups`"),
        ("not-a-hash.yml", Some("users:\n  ci:\n    password: pw\n    roles: [push]\n".into()), "not a bcrypt hash"),
        ("bad-sha256.yml", Some("tokens:\n  - {name: t, sha256: x, roles: [read]}\n".into()), "sha256 must be 64"),
        (
            "bad-role.yml",
            Some(format!("users:\n  ci: {{password: \"{hash}\", roles: [root]}}\n")),
            "unknown role \"root\"",
        ),
    ];
    for (name, text, why) in bad {
        let (code, stderr) = start_refused_for(dir.path(), "--web.access-config.file", name, text.as_deref());
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains("--web.access-config.file") && stderr.contains(why), "{name}: {stderr}");
    }
}
