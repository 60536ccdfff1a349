//! `--web.config.file` (TLS with client certificates, basic authentication), checked with
//! curl and certificates made by openssl, as a user would set it up (the README's
//! commands are run by `tests/deploy.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{start_refused_for, Server};

/// Runs openssl; panics with its output when it fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").current_dir(dir).args(args.split_whitespace()).output().expect("openssl");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

const EC_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

fn new_ca(dir: &Path, name: &str) {
    openssl(dir, &format!("req -x509 {EC_KEY} -days 30 -keyout {name}.key -out {name}.crt -subj /CN={name}"));
}

/// A certificate for `name` signed by `ca`, with the given extension (the server's: for
/// 127.0.0.1; a client's: for client authentication), and its key.
fn issue(dir: &Path, ca: &str, name: &str, extension: &str) {
    openssl(dir, &format!("req {EC_KEY} -keyout {name}.key -out {name}.csr -subj /CN={name}"));
    std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -days 30 \
             -out {name}.crt -extfile {name}.ext"
        ),
    );
}

/// A directory with a CA (`ca.crt`) and a server certificate it signed for 127.0.0.1
/// (`server.crt`, `server.key`).
fn with_server_certificate() -> Arc<tempfile::TempDir> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    new_ca(dir.path(), "ca");
    issue(dir.path(), "ca", "server", "subjectAltName=IP:127.0.0.1\n");
    dir
}

/// What curl got: its exit code, the status (0 without an answer), headers and body.
struct Answer {
    exit: i32,
    status: u16,
    head: String,
    body: String,
}

fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or(("", rest));
    Answer {
        exit: out.status.code().unwrap_or(-1),
        status: status.trim().parse().unwrap_or(0),
        head: head.to_lowercase(),
        body: body.to_string(),
    }
}

struct Tls {
    dir: PathBuf,
    url: String,
}

impl Tls {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// curl with the CA, optionally a client certificate (`client` or `rogue`) and a user.
    fn call(&self, cert: Option<&str>, user: Option<&str>, method: &str, path: &str, body: &str) -> Answer {
        let url = format!("{}{path}", self.url);
        let ca = self.file("ca.crt");
        let mut args = vec!["--cacert".to_string(), ca, "-X".into(), method.into(), url];
        if let Some(cert) = cert {
            args.extend([
                "--cert".into(),
                self.file(&format!("{cert}.crt")),
                "--key".into(),
                self.file(&format!("{cert}.key")),
            ]);
        }
        if let Some(user) = user {
            args.extend(["-u".into(), user.into()]);
        }
        if !body.is_empty() {
            args.extend(["--data-binary".into(), body.into()]);
        }
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

#[test]
fn tls_client_certificates_and_basic_auth_guard_every_path_and_refused_pushes_store_nothing() {
    let dir = with_server_certificate();
    let d = dir.path();
    issue(d, "ca", "client", "extendedKeyUsage=clientAuth\n");
    new_ca(d, "other-ca");
    issue(d, "other-ca", "rogue", "extendedKeyUsage=clientAuth\n");
    // Cost 4: a debug build's bcrypt is slow, and the cost does not change the check.
    let hash = bcrypt::hash("hunter2", 4).unwrap();
    let config = format!(
        "tls_server_config:\n  cert_file: {d}/server.crt\n  key_file: {d}/server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {d}/ca.crt\n\
         basic_auth_users:\n  alice: {hash}\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        d = d.display()
    );
    std::fs::write(d.join("web.yml"), config).unwrap();
    let server = Server::start_node(&[format!("--web.config.file={}", d.join("web.yml").display())], dir.clone());
    let tls = Tls { dir: d.to_path_buf(), url: server.base.replace("http://", "https://") };
    let alice = Some("alice:hunter2");
    server.wait_for(Duration::from_secs(60), "ready over TLS", || {
        tls.call(Some("client"), alice, "GET", "/-/ready", "").status == 200
    });

    // Without a client certificate, or with one from another CA: no TLS session at all.
    for cert in [None, Some("rogue")] {
        let a = tls.call(cert, alice, "PUT", "/metrics/job/refused", "x 1\n");
        assert_ne!(a.exit, 0, "{cert:?}: the handshake must fail");
        assert_eq!(a.status, 0, "{cert:?}: no answer");
    }
    // With the certificate but no, a wrong or an unknown user: 401, as upstream answers.
    for user in [None, Some("alice:wrong"), Some("mallory:hunter2")] {
        let a = tls.call(Some("client"), user, "PUT", "/metrics/job/refused", "x 1\n");
        assert_eq!(a.status, 401, "{user:?}: {}", a.body);
        assert_eq!(a.body, "Unauthorized\n");
        assert!(a.head.contains("www-authenticate: basic"), "{user:?}: {}", a.head);
        assert!(a.head.contains("x-frame-options: deny"), "configured headers on refusals too: {}", a.head);
    }
    for path in ["/-/healthy", "/metrics", "/api/v1/metrics", "/"] {
        assert_eq!(tls.call(Some("client"), None, "GET", path, "").status, 401, "{path} needs credentials");
    }
    // Plain HTTP to the TLS port gets Go's answer.
    let plain = curl(&[&server.base]);
    assert_eq!(plain.status, 400);
    assert_eq!(plain.body, "Client sent an HTTP request to an HTTPS server.\n");

    let a = tls.call(Some("client"), alice, "PUT", "/metrics/job/accepted", "x 1\n");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.head.contains("x-frame-options: deny"), "{}", a.head);
    let scrape = tls.call(Some("client"), alice, "GET", "/metrics", "");
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.contains("x{instance=\"\",job=\"accepted\"} 1"), "{}", scrape.body);
    assert!(!scrape.body.contains("refused"), "a refused push was stored: {}", scrape.body);

    // The subcommands reach such a node with the CA, a client certificate and a user.
    std::fs::write(d.join("password"), "hunter2\n").unwrap();
    let cli = |extra: &[String]| {
        let mut args = vec!["cluster".to_string(), "status".into(), "--server".into(), tls.url.clone()];
        args.extend(["--tls.ca-file".into(), tls.file("ca.crt")]);
        args.extend([
            "--tls.cert-file".into(),
            tls.file("client.crt"),
            "--tls.key-file".into(),
            tls.file("client.key"),
        ]);
        args.extend(extra.iter().cloned());
        Command::new(env!("CARGO_BIN_EXE_pushgateway")).args(&args).output().unwrap()
    };
    let user = ["--auth.username".to_string(), "alice".into(), "--auth.password-file".into(), tls.file("password")];
    let out = cli(&user);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"role\":\"leader\""), "{out:?}");
    let out = cli(&[]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("401"), "no user: {out:?}");
}

/// `text` as a YAML block scalar indented by four spaces (for inline PEM).
fn yaml_block(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// exporter-toolkit 0.16's keys (upstream 1.11): the key and client CA inline, the
/// certificate by a name relative to the web config file's directory, and
/// `client_allowed_sans` admitting only verified client certificates that name an allowed
/// DNS name or e-mail address exactly.
#[test]
fn inline_pem_relative_files_and_client_allowed_sans() {
    let dir = with_server_certificate();
    let d = dir.path();
    issue(d, "ca", "dns", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:allowed.example\n");
    issue(d, "ca", "mail", "extendedKeyUsage=clientAuth\nsubjectAltName=email:ops@example.org\n");
    issue(d, "ca", "near", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:Allowed.example,DNS:*.example\n");
    issue(d, "ca", "bare", "extendedKeyUsage=clientAuth\n");
    new_ca(d, "other-ca");
    issue(d, "other-ca", "rogue", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:allowed.example\n");
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    let config = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key: |\n{key}  client_ca: |\n{ca}  \
         client_auth_type: RequireAndVerifyClientCert\n  \
         client_allowed_sans: [allowed.example, ops@example.org]\n",
        key = yaml_block(&read("server.key")),
        ca = yaml_block(&read("ca.crt")),
    );
    std::fs::write(d.join("web.yml"), config).unwrap();
    let server = Server::start_node(&[format!("--web.config.file={}", d.join("web.yml").display())], dir.clone());
    let tls = Tls { dir: d.to_path_buf(), url: server.base.replace("http://", "https://") };
    server.wait_for(Duration::from_secs(60), "ready over TLS", || {
        tls.call(Some("dns"), None, "GET", "/-/ready", "").status == 200
    });

    for allowed in ["dns", "mail"] {
        let a = tls.call(Some(allowed), None, "PUT", &format!("/metrics/job/{allowed}"), "x 1\n");
        assert_eq!(a.status, 200, "{allowed}: {}", a.body);
    }
    // Another case, a wildcard, no SAN at all, another CA, no certificate: no TLS session.
    for refused in [Some("near"), Some("bare"), Some("rogue"), None] {
        let a = tls.call(refused, None, "PUT", "/metrics/job/refused", "x 1\n");
        assert_ne!(a.exit, 0, "{refused:?}: the handshake must fail");
        assert_eq!(a.status, 0, "{refused:?}: no answer");
    }
    let scrape = tls.call(Some("mail"), None, "GET", "/metrics", "");
    assert!(scrape.body.contains("x{instance=\"\",job=\"dns\"} 1"), "{}", scrape.body);
    assert!(!scrape.body.contains("refused"), "{}", scrape.body);
}

#[test]
fn a_web_config_file_that_cannot_be_served_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        ("missing.yml", None),
        ("unknown-key.yml", Some("bogus_key: 1\n")),
        ("not-a-hash.yml", Some("basic_auth_users:\n  alice: hunter2\n")),
        ("no-key.yml", Some("tls_server_config:\n  cert_file: server.crt\n")),
    ];
    for (name, text) in bad {
        let (code, stderr) = start_refused_for(dir.path(), "--web.config.file", name, text);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains("web.config.file"), "{name}");
    }
}

#[test]
fn users_and_certificates_rotate_without_a_restart_and_a_broken_file_keeps_the_last_good_one() {
    let dir = with_server_certificate();
    let d = dir.path();
    let web = |user: &str| {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let text = format!(
            "tls_server_config:\n  cert_file: {d}/server.crt\n  key_file: {d}/server.key\nbasic_auth_users:\n  {user}: {hash}\n",
            d = d.display()
        );
        std::fs::write(d.join("web.yml"), text).unwrap();
    };
    web("alice");
    let server = Server::start_node(&[format!("--web.config.file={}", d.join("web.yml").display())], dir.clone());
    let url = format!("{}/-/healthy", server.base.replace("http://", "https://"));
    let status = |ca: &str, user: &str| curl(&["--cacert", &d.join(ca).display().to_string(), "-u", user, &url]).status;
    server.wait_for(Duration::from_secs(60), "serving alice", || status("ca.crt", "alice:pw") == 200);

    // A new user list takes effect without a restart.
    web("bob");
    server.wait_for(Duration::from_secs(20), "bob instead of alice", || {
        status("ca.crt", "bob:pw") == 200 && status("ca.crt", "alice:pw") == 401
    });

    // A broken file is reported and the last good configuration kept.
    std::fs::write(d.join("web.yml"), "basic_auth_users: [not, a, map]\n").unwrap();
    // The files are looked at when a request or connection comes.
    server.wait_for(Duration::from_secs(20), "the broken file reported", || {
        status("ca.crt", "bob:pw");
        server.log().contains("no longer loads")
    });
    assert_eq!(status("ca.crt", "bob:pw"), 200);

    // A certificate renewed in place (here from another CA) is served from the next connection.
    web("bob");
    new_ca(d, "new-ca");
    issue(d, "new-ca", "server", "subjectAltName=IP:127.0.0.1\n");
    server.wait_for(Duration::from_secs(20), "the new certificate", || status("new-ca.crt", "bob:pw") == 200);
    assert_eq!(status("ca.crt", "bob:pw"), 0, "the old CA no longer verifies the server");
}

/// The admin calls a web page could otherwise reach: a POST without a JSON content type
/// (what a page can send anywhere without asking) is refused before it is read, and a
/// checkpoint is only ever written below `--storage.checkpoint-dir`.
#[test]
fn admin_calls_need_json_and_checkpoints_stay_in_their_directory() {
    let backups = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let confined = format!("--storage.checkpoint-dir={}", backups.path().display());
    let server = Server::start(&["--web.enable-admin-api", &confined]);
    let json = &[("Content-Type", "application/json")];
    let post = |headers: &[(&str, &str)], path: &str| {
        let body = serde_json::json!({ "path": path }).to_string().into_bytes();
        let (code, answer) = server.request("POST", "/api/v1/admin/cluster/checkpoint", headers, body);
        (code, String::from_utf8_lossy(&answer).into_owned())
    };

    for form in
        [vec![], vec![("Content-Type", "text/plain")], vec![("Content-Type", "application/x-www-form-urlencoded")]]
    {
        let (code, answer) = post(&form, "by-a-page");
        assert_eq!(code, 415, "{form:?}: {answer}");
        assert!(answer.contains("Content-Type: application/json"), "{answer}");
    }
    assert!(!backups.path().join("by-a-page").exists());

    let escape = outside.path().join("stolen").display().to_string();
    let sneaky = format!("{}/../x", backups.path().display());
    for path in [escape.as_str(), "../x", sneaky.as_str(), "", "/"] {
        let (code, answer) = post(json, path);
        assert_eq!(code, 400, "{path}: {answer}");
        assert!(answer.contains("checkpoint path"), "{answer}");
    }
    assert!(!outside.path().join("stolen").exists());

    let (code, answer) = post(json, "nightly");
    assert_eq!(code, 200, "{answer}");
    assert!(backups.path().join("nightly/db/CURRENT").exists(), "a RocksDB checkpoint");
    let inside = backups.path().join("weekly").display().to_string();
    assert_eq!(post(json, &inside).0, 200);
    let (code, answer) = post(&[("Content-Type", "application/json; charset=utf-8")], "again");
    assert_eq!(code, 200, "parameters of the media type are fine: {answer}");
}

#[test]
fn checkpoints_are_off_without_a_directory() {
    let server = Server::start(&["--web.enable-admin-api"]);
    let (code, answer) = server.request(
        "POST",
        "/api/v1/admin/cluster/checkpoint",
        &[("Content-Type", "application/json")],
        br#"{"path":"/tmp/anywhere"}"#.to_vec(),
    );
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("--storage.checkpoint-dir"), "{answer}");
}

/// `rate_limit` in the web config (exporter-toolkit's key): a bucket of `burst` requests
/// refilled one per `interval`, checked before anything else; beyond it, 429.
#[test]
fn the_web_config_rate_limit_answers_429_beyond_its_burst() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let file = dir.path().join("web.yml");
    std::fs::write(&file, "rate_limit:\n  burst: 3\n  interval: 1h\n").unwrap();
    let server = Server::start_node(&[format!("--web.config.file={}", file.display())], dir.clone());
    let http = reqwest::blocking::Client::new();
    // Requests answered while the node still starts take no token: count from the first
    // answer of the started server on.
    let codes: Vec<u16> = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            http.get(format!("{}/metrics", server.base)).send().unwrap().status().as_u16()
        })
        .collect();
    let first_refusal = codes.iter().position(|c| *c == 429).unwrap_or_else(|| panic!("{codes:?}"));
    assert!(first_refusal >= 3, "three tokens first: {codes:?}");
    assert!(codes[first_refusal..].iter().all(|c| *c == 429), "no refill within the hour: {codes:?}");
    let refused = http.get(format!("{}/metrics", server.base)).send().unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.text().unwrap(), "Too Many Requests\n");
}
