//! How a harness learns where a `pushgateway` started on port 0 serves: from its log.

use std::time::Duration;

use crate::process::Process;

/// The web address (`127.0.0.1:41234`) that `process`, a `pushgateway` of the current run
/// (not one before a restart), reports in its `listening ... address=<addr>` log line,
/// waiting for it up to `within`.
///
/// The server logs that line once it has bound each web listener, so the address is the
/// one actually bound (no race for a port chosen in advance) and the listener accepts
/// connections from then on; it does not mean the node is ready. An error when the process
/// exits first or does not report in time, with its log.
pub fn web_address(process: &Process, within: Duration) -> anyhow::Result<String> {
    process.wait_for_line(within, "the address it listens on", |line| {
        let (_, rest) = line.split_once("address=").filter(|_| line.contains("listening"))?;
        rest.split_whitespace().next().map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Spec;

    #[test]
    fn the_address_is_the_current_runs() {
        let line =
            |addr: &str| format!("echo '2025-01-01T00:00:00Z  INFO pushgateway: listening tls=false address={addr}'");
        let first = format!("echo 'INFO node started storage=x'; {}; exec sleep 30", line("127.0.0.1:1111"));
        let mut p = Process::start(Spec::new("sh").args(["-c", &first])).unwrap();
        assert_eq!(web_address(&p, Duration::from_secs(30)).unwrap(), "127.0.0.1:1111");
        p.kill();
        p.restart_with_args(vec!["-c".into(), format!("sleep 0.2; {}; exec sleep 30", line("127.0.0.1:2222"))])
            .unwrap();
        assert_eq!(web_address(&p, Duration::from_secs(30)).unwrap(), "127.0.0.1:2222");
    }
}
