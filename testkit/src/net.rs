//! Loopback addresses for the listeners a harness chooses before it starts a server.
//!
//! The port is bound and released, and the server binds it again soon after: another
//! process could take it in between, a race every harness here accepts. Where a server
//! can report what it bound, starting it on port 0 and reading the address
//! ([`crate::web_address`]) has no race.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// A free address on 127.0.0.1.
pub fn free_addr() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
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
}
