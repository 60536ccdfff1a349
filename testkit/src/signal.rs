//! Signals by name, as the harnesses and `kill(1)` spell them.

use std::io;

/// Sends the signal `name` (`KILL`, `TERM`, `STOP`, `CONT`, `INT`, `HUP`, `QUIT`, `USR1`,
/// `USR2`; a `SIG` prefix is accepted) to process `pid`, with `kill(2)`.
///
/// Contract: an unknown name, or pid 0 (which `kill(2)` reads as "my process group"),
/// is an `InvalidInput` error and signals nothing; a process that is gone is the OS error
/// (`ESRCH`). The caller answers for `pid` still being its child: signal only a child not
/// yet reaped, as [`crate::Process::signal`] does, or the pid may have been reused.
pub fn signal(pid: u32, name: &str) -> io::Result<()> {
    let number = match name.strip_prefix("SIG").unwrap_or(name) {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown signal {name:?}"))),
    };
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not a process id: {pid}")))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    match unsafe { libc::kill(pid, number) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_and_pid_zero_signal_nothing() {
        assert_eq!(signal(std::process::id(), "NOPE").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(signal(0, "TERM").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(signal(u32::MAX, "TERM").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
