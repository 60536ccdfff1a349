//! Starting and stopping real server processes.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `pushgateway` process. Its log is kept and printed if the test fails.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    log: Arc<Mutex<String>>,
    dir: Arc<tempfile::TempDir>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Web address to reuse on restart (so clients keep their URL).
    web: String,
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
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let server = Server::spawn_unready(dir, args, env);
        server.wait_for(Duration::from_secs(60), "ready", || server.get("/-/ready").0 == 200);
        server
    }

    /// Starts the same process again (same data directory, flags and web address),
    /// without waiting for readiness.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a running server");
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push_str("---- restart ----\n");
        let (child, addr) = launch(&self.dir, &self.args, &self.env, &self.web, &self.log);
        self.child = Some(child);
        self.base = format!("http://{addr}");
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

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts without waiting for readiness (a cluster node is ready only with a quorum).
    pub fn start_node(args: &[String], dir: Arc<tempfile::TempDir>) -> Server {
        Server::spawn_unready(dir, args.to_vec(), vec![])
    }

    fn spawn_unready(dir: Arc<tempfile::TempDir>, args: Vec<String>, env: Vec<(String, String)>) -> Server {
        let log = Arc::new(Mutex::new(String::new()));
        let (child, addr) = launch(&dir, &args, &env, "127.0.0.1:0", &log);
        Server { child: Some(child), base: format!("http://{addr}"), log, dir, args, env, web: addr }
    }

    /// Polls `condition` until it holds; a timeout fails the test with the log.
    pub fn wait_for(&self, within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if condition() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log.lock().unwrap_or_else(|e| e.into_inner()));
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
        body.lines().filter(|l| !l.starts_with('#') && l.contains("job=\"")).map(str::to_string).collect()
    }

    /// Like [`Server::pushed_lines`], `None` while the node cannot serve a consistent
    /// read (for use inside [`Server::wait_for`]).
    pub fn try_pushed_lines(&self) -> Option<Vec<String>> {
        let (status, body) = self.get("/metrics");
        (status == 200)
            .then(|| body.lines().filter(|l| !l.starts_with('#') && l.contains("job=\"")).map(str::to_string).collect())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("process did not exit; log:\n{}", self.log.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- server log ({}) ----\n{}", self.base, self.log.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

impl Server {
    /// The log so far (for tests that print it on purpose).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts the binary; returns the child and the web address it reports.
fn launch(
    dir: &tempfile::TempDir,
    args: &[String],
    env: &[(String, String)],
    web: &str,
    log: &Arc<Mutex<String>>,
) -> (Child, String) {
    let data: PathBuf = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .arg(format!("--web.listen-address={web}"))
        .arg(format!("--storage.path={}", data.display()))
        .arg("--log.level=debug")
        .args(args)
        .env("RUST_LOG", "info,pushgateway=debug,cluster=debug")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pushgateway");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if line.contains("listening") {
                if let Some(addr) = line.split("address=").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
            sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&line);
            line.clear();
        }
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&rest);
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
        panic!("server did not report its address; log:\n{}", log.lock().unwrap_or_else(|e| e.into_inner()))
    });
    (child, addr)
}

/// A free loopback port (bound and released; the caller binds it again soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}
