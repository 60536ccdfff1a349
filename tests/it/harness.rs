//! Starting and stopping real server processes: the `pushgateway` binary of this build as
//! a [`testkit::Process`], plus the HTTP helpers the tests use on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Process, Spec};

/// How long a started server has to report its web address.
const REPORT_ADDRESS_WITHIN: Duration = Duration::from_secs(60);

/// A running `pushgateway` process. Its log is kept and printed if the test fails.
pub struct Server {
    process: Process,
    pub base: String,
    dir: Arc<tempfile::TempDir>,
    /// The test's flags (without the ones [`command_line`] adds).
    args: Vec<String>,
    /// Web address to reuse on restart (so clients keep their URL).
    web: String,
    /// The `Authorization` header of requests that do not set their own (a node with
    /// `--web.access-config.file` answers nobody anonymous, not even `/-/ready`).
    authorization: Option<String>,
}

impl Server {
    /// Starts the binary with `args` on `127.0.0.1:0` and waits until it serves `/-/ready`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables for the process.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let server = Server::spawn_unready(dir, args, env);
        server.wait_for(Duration::from_secs(60), "ready", || server.get("/-/ready").0 == 200);
        server
    }

    /// Starts the same process again (same data directory, flags and web address),
    /// without waiting for readiness.
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "restart a running server");
        let args = command_line(&self.dir, &self.web, &self.args);
        self.process.restart_with_args(args).unwrap_or_else(|e| panic!("{e:#}"));
        self.base = format!("http://{}", reported_address(&self.process));
    }

    /// The test's flags (without the ones the harness adds).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Restarts with different flags (same data directory and web address).
    pub fn restart_with(&mut self, args: &[String]) {
        self.args = args.to_vec();
        self.restart();
    }

    /// Sends `sig` (`KILL`, `TERM`, `STOP`, `CONT`) and, unless it only pauses or
    /// resumes, waits for the process to exit.
    pub fn signal_and_wait(&mut self, sig: &str) {
        signal(self.pid(), sig);
        if sig != "STOP" && sig != "CONT" {
            self.wait_exit(Duration::from_secs(30));
        }
    }

    /// The node's `--storage.path`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Started and not yet seen to exit (see [`Process::is_running`]).
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Starts without waiting for readiness (a cluster node is ready only with a quorum).
    pub fn start_node(args: &[String], dir: Arc<tempfile::TempDir>) -> Server {
        Server::spawn_unready(dir, args.to_vec(), &[])
    }

    fn spawn_unready(dir: Arc<tempfile::TempDir>, args: Vec<String>, env: &[(&str, &str)]) -> Server {
        let mut spec = Spec::new(env!("CARGO_BIN_EXE_pushgateway"))
            .args(command_line(&dir, "127.0.0.1:0", &args))
            .env("RUST_LOG", "info,pushgateway=debug,cluster=debug")
            .label("pushgateway");
        for (k, v) in env {
            spec = spec.env(*k, *v);
        }
        let mut process = Process::start(spec).unwrap_or_else(|e| panic!("{e:#}"));
        let web = reported_address(&process);
        process.set_label(format!("pushgateway http://{web}"));
        Server { process, base: format!("http://{web}"), dir, args, web, authorization: None }
    }

    /// Polls `condition` until it holds; a timeout fails the test with the log.
    #[track_caller]
    pub fn wait_for(&self, within: Duration, what: &str, condition: impl FnMut() -> bool) {
        self.process.wait_until_or_panic(within, what, condition);
    }

    /// Sends `authorization` with every request that does not set its own header.
    pub fn set_authorization(&mut self, authorization: &str) {
        self.authorization = Some(authorization.to_string());
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Vec<u8>) {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut req = client.request(method.parse().expect("method"), format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(authorization) = &self.authorization {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
                req = req.header("Authorization", authorization);
            }
        }
        match req.send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.bytes().map(|b| b.to_vec()).unwrap_or_default())
            }
            Err(e) => (0, e.to_string().into_bytes()),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.request("GET", path, &[], Vec::new());
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub fn put(&self, path: &str, body: &str) -> (u16, String) {
        let (status, body) = self.request("PUT", path, &[], body.as_bytes().to_vec());
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Pushed series (lines with a `job` label) of a text scrape.
    pub fn pushed_lines(&self) -> Vec<String> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "scrape failed: {body}");
        pushed(&body)
    }

    /// Like [`Server::pushed_lines`], `None` while the node cannot serve a consistent
    /// read (for use inside [`Server::wait_for`]).
    pub fn try_pushed_lines(&self) -> Option<Vec<String>> {
        let (status, body) = self.get("/metrics");
        (status == 200).then(|| pushed(&body))
    }

    pub fn pid(&self) -> u32 {
        self.process.pid().expect("running")
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        self.process.wait_exit(within).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The log so far (for tests that print it on purpose).
    pub fn log(&self) -> String {
        self.process.log().text()
    }
}

/// The lines of a text scrape with a `job` label: what was pushed.
fn pushed(scrape: &str) -> Vec<String> {
    scrape.lines().filter(|l| !l.starts_with('#') && l.contains("job=\"")).map(str::to_string).collect()
}

/// The full command line of a test server: listening on `web`, data in `dir`, debug logs
/// (unless `args` give a `--log.level`), then the test's `args` (which may override the
/// others).
fn command_line(dir: &tempfile::TempDir, web: &str, args: &[String]) -> Vec<String> {
    let mut line =
        vec![format!("--web.listen-address={web}"), format!("--storage.path={}", dir.path().join("data").display())];
    if !args.iter().any(|a| a.starts_with("--log.level")) {
        line.push("--log.level=debug".to_string());
    }
    line.extend(args.iter().cloned());
    line
}

/// The web address the current run of `process` reports; fails the test with its log.
fn reported_address(process: &Process) -> String {
    testkit::web_address(process, REPORT_ADDRESS_WITHIN).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Starts the binary with `flag` naming the file `name` in `dir` (written with `text`
/// first; `None`: missing) and waits for it to exit, as a start-up refused for that file
/// does at once: its exit code and stderr.
pub fn start_refused_for(dir: &Path, flag: &str, name: &str, text: Option<&str>) -> (Option<i32>, String) {
    let path = dir.join(name);
    if let Some(text) = text {
        std::fs::write(&path, text).expect("write the file");
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .arg(format!("{flag}={}", path.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pushgateway");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pushgateway") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr).expect("read stderr");
    let status = status.unwrap_or_else(|| panic!("{flag} {name}: still running after 30 s: {stderr}"));
    (status.code(), stderr)
}

/// A free loopback port (bound and released; the caller binds it again soon).
pub fn free_port() -> u16 {
    testkit::free_port().expect("free port")
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: &str) {
    testkit::signal(pid, sig).unwrap_or_else(|e| panic!("kill -{sig} {pid} failed: {e}"));
}

/// Upstream's Pushgateway (the reference, 1.5.1 from Debian) on a free port, without a
/// state file, with `extra` flags; answers the process (killed when dropped) and its URL.
pub fn upstream(extra: &[&str]) -> (Process, String) {
    upstream_persisting("", extra)
}

/// [`upstream`] with `--persistence.file=file` (empty: none).
pub fn upstream_persisting(file: &str, extra: &[&str]) -> (Process, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let mut spec = Spec::new("/usr/bin/prometheus-pushgateway")
        .arg(format!("--web.listen-address={address}"))
        .arg(format!("--persistence.file={file}"))
        .label("upstream");
    for flag in extra {
        spec = spec.arg(*flag);
    }
    let process = Process::start(spec).unwrap();
    let http = reqwest::blocking::Client::new();
    testkit::wait_until(Duration::from_secs(30), "upstream ready", || {
        http.get(format!("http://{address}/-/ready")).send().is_ok_and(|r| r.status() == 200)
    })
    .unwrap();
    (process, format!("http://{address}"))
}
