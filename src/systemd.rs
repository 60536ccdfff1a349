//! Socket activation (`--web.systemd-socket`), by systemd's protocol (`sd_listen_fds(3)`):
//! the listening sockets are the descriptors from 3 on, `LISTEN_FDS` of them, meant for
//! this process when `LISTEN_PID` is its pid. As upstream's exporter-toolkit does, they
//! replace `--web.listen-address`.

use std::os::fd::FromRawFd;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// The listening sockets systemd passed to this process; an error names what is missing.
pub fn listeners() -> Result<Vec<std::net::TcpListener>, String> {
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            format!("--web.systemd-socket: {name} is not set: start the server from a systemd socket unit")
        })
    };
    let pid = var("LISTEN_PID")?;
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Err(format!("--web.systemd-socket: LISTEN_PID={pid} is not this process ({})", std::process::id()));
    }
    let count: i32 = var("LISTEN_FDS")?
        .trim()
        .parse()
        .map_err(|_| "--web.systemd-socket: LISTEN_FDS is not a number".to_string())?;
    if count < 1 {
        return Err("--web.systemd-socket: no socket activation file descriptors found".into());
    }
    (FIRST_FD..FIRST_FD + count)
        .map(|fd| {
            // SAFETY: systemd passed this descriptor to this process (LISTEN_PID is its
            // pid), open, and nothing else in the process owns it: it is taken once, here.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener
                .local_addr()
                .map_err(|e| format!("--web.systemd-socket: descriptor {fd} is not a TCP socket: {e}"))?;
            Ok(listener)
        })
        .collect()
}
