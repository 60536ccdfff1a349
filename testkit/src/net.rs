//! Loopback addresses for the listeners a harness chooses before it starts a server.
//!
//! The port is bound and released, and the server binds it again soon after: another
//! process could take it in between. Ports are therefore chosen below the kernel's
//! ephemeral range (`net.ipv4.ip_local_port_range`), where the outgoing connections of the
//! harness's own clients, by far the busiest takers of ports here, never land; and one
//! process does not hand out the same port twice until it has gone through the whole range.
//! Only another harness choosing the same port in the same instant can still race. Where a
//! server can report what it bound, starting it on port 0 and reading the address
//! ([`crate::web_address`]) has no race at all.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// Lowest port handed out.
const FLOOR: u32 = 10_000;
/// A prime step through the range: it visits every port before repeating unless the
/// range's size is a multiple of it (22,768 ports by default).
const STRIDE: u32 = 7_919;

/// A free address on 127.0.0.1.
pub fn free_addr() -> io::Result<SocketAddr> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Read once per process: where this process starts in the range (apart from other
    // harnesses started at other times) and the range's end.
    static RANGE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    let (start, below) = *RANGE.get_or_init(|| {
        let nanos = std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.subsec_nanos());
        (std::process::id().wrapping_mul(2_654_435_761) ^ nanos, ephemeral_floor())
    });
    if below > FLOOR + STRIDE {
        let span = below - FLOOR;
        for _ in 0..256 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = FLOOR + (start.wrapping_add(n.wrapping_mul(STRIDE)) % span);
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)) {
                return listener.local_addr();
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The lowest port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_floor() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
        .min(65_536)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    Ok(free_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_address_is_loopback_and_can_be_bound() {
        let addr = free_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        TcpListener::bind(addr).unwrap();
        assert_ne!(free_port().unwrap(), 0);
    }

    /// Ports come from below the ephemeral range, and one process hands out no port twice
    /// in a row of many.
    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_not_repeated() {
        let below = ephemeral_floor();
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        if below > FLOOR + STRIDE {
            assert!(ports.iter().all(|p| u32::from(*p) >= FLOOR && u32::from(*p) < below), "{ports:?}");
        }
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }
}
