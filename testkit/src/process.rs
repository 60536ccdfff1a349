//! A child process under a harness's control: started from a [`Spec`], its stdout and
//! stderr read line by line into a [`Log`], signalled by name, killed and reaped, waited
//! for, and started again with the same arguments (and, for a server, the same data).

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::log::Log;
use crate::wait::{wait_for_some, wait_until};

/// What to run: program, arguments, extra environment (on top of the harness's own), where
/// the log is also written, and the name messages use for it.
#[derive(Clone, Debug)]
pub struct Spec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log_file: Option<PathBuf>,
    label: Option<String>,
}

impl Spec {
    pub fn new(program: impl Into<PathBuf>) -> Spec {
        Spec { program: program.into(), args: Vec::new(), env: Vec::new(), log_file: None, label: None }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Spec {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable; a later one of the same name wins.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Spec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Also append the log to `path` (see [`Log::with_file`]).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Spec {
        self.log_file = Some(path.into());
        self
    }

    /// The name messages give the process (default: the program's path).
    pub fn label(mut self, label: impl Into<String>) -> Spec {
        self.label = Some(label.into());
        self
    }
}

/// How long reaping waits for the output readers to reach the end of the pipes. The pipes
/// close when the process dies, unless a child of its own keeps them open (a shell's
/// background job); then the readers are left to finish on their own.
const DRAIN_WITHIN: Duration = Duration::from_secs(2);

/// A started program. Dropping it kills and reaps it; when the thread is panicking (a test
/// failing), the log is shown on stderr: its text when it lives only in memory, else the
/// file that holds it.
pub struct Process {
    label: String,
    spec: Spec,
    log: Log,
    child: Option<Child>,
    /// Where the current run's output starts in the log.
    run_start: usize,
    /// The threads reading stdout and stderr of the current run.
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    /// Starts `spec`'s program with stdin from /dev/null and its output read into the log.
    pub fn start(spec: Spec) -> anyhow::Result<Process> {
        let log = match &spec.log_file {
            Some(path) => Log::with_file(path).with_context(|| format!("open {}", path.display()))?,
            None => Log::in_memory(),
        };
        let label = spec.label.clone().unwrap_or_else(|| spec.program.display().to_string());
        let mut process = Process { label, spec, log, child: None, run_start: 0, readers: Vec::new() };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.run_start = self.log.len();
        let mut child = Command::new(&self.spec.program)
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {} ({})", self.label, self.spec.program.display()))?;
        let stdout = child.stdout.take().map(|s| read_lines(s, self.log.clone()));
        let stderr = child.stderr.take().map(|s| read_lines(s, self.log.clone()));
        match (stdout, stderr) {
            (Some(Ok(out)), Some(Ok(err))) => self.readers = vec![out, err],
            (out, err) => {
                // Without a reader the process would block on a full pipe: it must not run.
                let _ = child.kill();
                let _ = child.wait();
                let failed = [out, err].into_iter().flatten().find_map(Result::err);
                bail!("read the output of {}: {}", self.label, failed.map_or("no pipe".into(), |e| e.to_string()));
            }
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Renames the process in messages (a server is best named by the address it reported).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// The arguments of the current (or last) run.
    pub fn args(&self) -> &[String] {
        &self.spec.args
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Started and not yet reaped by [`Process::kill`] or [`Process::wait_exit`]. A
    /// process that died on its own still counts until then, so that a harness notices
    /// the crash (its requests fail, its log says why) instead of skipping the process.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends the signal `name` (see [`crate::signal`]); an error when the process is not
    /// running. Only a child not yet reaped is signalled, so the pid is still its own.
    pub fn signal(&self, name: &str) -> io::Result<()> {
        let pid =
            self.pid().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} not running", self.label)))?;
        crate::signal(pid, name)
    }

    /// SIGKILL (a stopped process dies too) and reap; the log then holds all the process
    /// wrote. Nothing happens when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.drain();
        }
    }

    /// Waits for the process to exit (on its own or from a signal sent before) and reaps
    /// it; the log then holds all it wrote. Returns its exit code, `None` when a signal
    /// ended it. An error when it is not running, or still runs after `within` (then it
    /// is left running, and the message shows the log).
    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        let what = format!("{} to exit", self.label);
        let Some(child) = self.child.as_mut() else { bail!("{} is not running", self.label) };
        match wait_for_some(within, &what, || child.try_wait().ok().flatten()) {
            Ok(status) => {
                self.child = None;
                self.drain();
                Ok(status.code())
            }
            Err(timed_out) => bail!("{timed_out}; {}", self.shown_log()),
        }
    }

    /// Starts the program again with the same arguments and environment, appending to the
    /// same log after a `---- restart ----` line. An error when it is still running.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("restart of {}, which is running", self.label);
        }
        self.log.push("---- restart ----");
        self.spawn()
    }

    /// [`Process::restart`] of another program (an upgrade), kept for later restarts.
    pub fn restart_program(&mut self, program: impl Into<PathBuf>, args: Vec<String>) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("restart of {}, which is running", self.label);
        }
        self.spec.program = program.into();
        self.restart_with_args(args)
    }

    /// [`Process::restart`] with other arguments, kept for later restarts.
    pub fn restart_with_args(&mut self, args: Vec<String>) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("restart of {}, which is running", self.label);
        }
        self.spec.args = args;
        self.restart()
    }

    /// Waits until a line of the current run (not of a run before a restart) gives
    /// `parse` a value, and returns it. Fails at once when the process has closed its
    /// output (exited) without such a line, and after `within`; the message shows the log.
    pub fn wait_for_line<T>(
        &self,
        within: Duration,
        what: &str,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let outcome = wait_for_some(within, what, || {
            // Closed first: once the readers are done, the text read next is all of it.
            let closed = self.readers.iter().all(JoinHandle::is_finished);
            let text = self.log.since(self.run_start);
            match text.lines().find_map(&mut parse) {
                Some(value) => Some(Some(value)),
                None if closed => Some(None),
                None => None,
            }
        });
        match outcome {
            Ok(Some(value)) => Ok(value),
            Ok(None) => bail!("{} closed its output (exited?) before {what}; {}", self.label, self.shown_log()),
            Err(timed_out) => bail!("{timed_out}; {}", self.shown_log()),
        }
    }

    /// [`crate::wait_until`] for tests: a timeout panics with a message that shows this
    /// process's log. The panic is reported at the caller's line.
    #[track_caller]
    pub fn wait_until_or_panic(&self, within: Duration, what: &str, condition: impl FnMut() -> bool) {
        if let Err(timed_out) = wait_until(within, what, condition) {
            panic!("{timed_out}; {}", self.shown_log());
        }
    }

    /// Resident set size in bytes (`VmRSS` of /proc), while running.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    }

    /// The log as messages show it: the text when it lives only in memory, else the file
    /// (a long run's log belongs in its file, not in a message).
    fn shown_log(&self) -> String {
        match self.log.file() {
            Some(path) => format!("log of {}: {}", self.label, path.display()),
            None => format!("log of {}:\n{}", self.label, self.log),
        }
    }

    /// Lets the readers of the reaped run finish (see [`DRAIN_WITHIN`]).
    fn drain(&mut self) {
        let _ = wait_until(DRAIN_WITHIN, "the output to close", || self.readers.iter().all(JoinHandle::is_finished));
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {}", self.shown_log());
        }
    }
}

/// A thread that pushes each line of `stream` to `log` until end of file (or a read error).
/// Bytes that are not UTF-8 are replaced, not a reason to stop reading.
fn read_lines(stream: impl Read + Send + 'static, log: Log) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("testkit-output".into()).spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            log.push(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;
    use std::time::Instant;

    use super::*;

    const BOUND: Duration = Duration::from_secs(30);

    fn sh(script: &str) -> Spec {
        Spec::new("sh").args(["-c", script]).label("sh")
    }

    /// The state letter of /proc/<pid>/stat (`T` stopped, `S` sleeping).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
    }

    #[test]
    fn both_streams_are_captured_and_the_exit_code_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sh.log");
        let spec = sh("echo to-stdout; echo to-stderr >&2; printf no-newline; exit 3").env("X", "1").log_file(&path);
        let mut p = Process::start(spec).unwrap();
        assert_eq!(p.wait_exit(BOUND).unwrap(), Some(3));
        assert!(!p.is_running());
        let text = p.log().text();
        assert!(text.contains("to-stdout\n") && text.contains("to-stderr\n"), "{text}");
        assert!(text.contains("no-newline\n"), "a last line without a newline is whole: {text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the file has what memory has");
    }

    #[test]
    fn term_ends_a_process_with_no_exit_code_and_a_reaped_one_is_not_signalled() {
        let mut p = Process::start(Spec::new("sleep").arg("30")).unwrap();
        assert!(p.rss_bytes().is_some_and(|b| b > 0));
        p.signal("TERM").unwrap();
        assert_eq!(p.wait_exit(BOUND).unwrap(), None, "death by a signal has no exit code");
        assert!(p.pid().is_none() && p.signal("TERM").is_err());
        assert!(p.wait_exit(BOUND).is_err(), "nothing to wait for");
    }

    #[test]
    fn stop_pauses_cont_resumes_kill_reaps() {
        let mut p = Process::start(Spec::new("sleep").arg("30")).unwrap();
        let pid = p.pid().unwrap();
        p.signal("STOP").unwrap();
        wait_until(BOUND, "stopped", || state(pid) == 'T').unwrap();
        p.signal("SIGCONT").unwrap();
        wait_until(BOUND, "resumed", || state(pid) != 'T').unwrap();
        p.signal("STOP").unwrap();
        p.kill();
        assert!(!p.is_running());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "killed while stopped, and reaped");
    }

    #[test]
    fn a_restart_runs_again_and_lines_are_read_per_run() {
        let mut p = Process::start(sh("echo first; exec sleep 30")).unwrap();
        p.wait_for_line(BOUND, "first", |l| (l == "first").then_some(())).unwrap();
        assert!(p.restart().is_err(), "a running process is not started twice");
        p.kill();
        p.restart_with_args(vec!["-c".into(), "echo second; exec sleep 30".into()]).unwrap();
        p.wait_for_line(BOUND, "second", |l| (l == "second").then_some(())).unwrap();
        let before =
            p.wait_for_line(Duration::from_millis(100), "the first run's line", |l| (l == "first").then_some(()));
        assert!(before.is_err(), "a line of an earlier run is not this run's");
        assert!(p.log().text().starts_with("first\n---- restart ----\nsecond\n"), "{}", p.log());
        p.kill();
        p.restart().unwrap();
        assert_eq!(p.args()[1], "echo second; exec sleep 30", "restart keeps the last arguments");
    }

    #[test]
    fn waiting_for_a_line_fails_at_once_when_the_process_exits_without_it() {
        let p = Process::start(sh("echo something-else")).unwrap();
        let started = Instant::now();
        let err =
            p.wait_for_line(Duration::from_secs(60), "a line", |l| l.contains("never").then_some(())).unwrap_err();
        assert!(started.elapsed() < BOUND, "did not wait out the bound");
        let message = format!("{err:#}");
        assert!(message.contains("before a line") && message.contains("something-else"), "{message}");
    }

    #[test]
    fn a_timeout_in_a_test_panics_with_the_log() {
        let p = Process::start(sh("echo marker-line; exec sleep 30")).unwrap();
        p.wait_for_line(BOUND, "the marker", |l| (l == "marker-line").then_some(())).unwrap();
        let started = Instant::now();
        let panic = std::panic::catch_unwind(AssertUnwindSafe(|| {
            p.wait_until_or_panic(Duration::from_millis(100), "the impossible", || false)
        }))
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("waiting for the impossible") && message.contains("marker-line"), "{message}");
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error_naming_it() {
        let err = Process::start(Spec::new("/nonexistent/program").label("ghost")).err().unwrap();
        assert!(format!("{err:#}").contains("start ghost (/nonexistent/program)"), "{err:#}");
    }

    #[test]
    fn a_process_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Process>();
    }
}
