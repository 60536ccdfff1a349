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
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with `args` on `127.0.0.1:0` and waits until it serves `/-/ready`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables for the process.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: PathBuf = dir.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pushgateway"))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--storage.path={}", data.display()))
            .arg("--log.level=debug")
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pushgateway");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(addr) = line.split("address=").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            sink.lock().unwrap().push_str(&rest);
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not report its address; log:\n{}", log.lock().unwrap()));
        let server = Server { child: Some(child), base: format!("http://{addr}"), log, _dir: dir };
        server.wait_for(Duration::from_secs(30), "ready", || server.get("/-/ready").0 == 200);
        server
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
        panic!("timed out waiting for {what}; log:\n{}", self.log.lock().unwrap());
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
        panic!("process did not exit; log:\n{}", self.log.lock().unwrap());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- server log ({}) ----\n{}", self.base, self.log.lock().unwrap());
        }
    }
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}
