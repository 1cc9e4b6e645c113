//! Binding the callback listener. The default, `[::]:8080`, takes IPv6 clients (Adjust's ranges
//! include `2a0b:14c0::/32`) and IPv4 clients alike: the latter arrive as IPv4-mapped addresses
//! (`::ffff:a.b.c.d`) and are seen as IPv4 everywhere after accept. On a host without IPv6, the
//! unspecified IPv6 address falls back to `0.0.0.0` with a warning instead of failing to start.
//!
//! The listen backlog is [`BACKLOG`] (the kernel caps it at `net.core.somaxconn`), not the
//! standard library's 128: a burst of new connections (Adjust's retries after an outage, a
//! restart behind a load balancer) waits in the accept queue instead of being dropped and
//! retried by the client a second or more later.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Connections the kernel may hold for the sink before it accepts them.
pub const BACKLOG: i32 = 4096;

/// Binds `addr` with a backlog of [`BACKLOG`]; `[::]:port` falls back to `0.0.0.0:port` when
/// the host has no IPv6.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = bind_any(addr)?;
    // Listening again on a listening socket sets its backlog anew.
    socket2::SockRef::from(&listener).listen(BACKLOG)?;
    Ok(listener)
}

fn bind_any(addr: SocketAddr) -> io::Result<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(listener) => {
            if is_any_v6(addr) && v6_only_by_default() {
                tracing::warn!(
                    listen = %addr,
                    "this host binds IPv6 sockets to IPv6 only (net.ipv6.bindv6only = 1): IPv4 \
                     clients do not reach the callback listener; use --listen 0.0.0.0:PORT for them"
                );
            }
            Ok(listener)
        }
        Err(e) if falls_back(addr, &e) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::warn!(
                listen = %addr,
                error = %e,
                instead = %v4,
                "IPv6 is not available on this host: the callback listener takes IPv4 only"
            );
            TcpListener::bind(v4)
        }
        Err(e) => Err(e),
    }
}

fn is_any_v6(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(v6) if v6.ip().is_unspecified())
}

/// Whether a failed bind of `addr` is retried on IPv4: only for `[::]`, and not for what would
/// fail on IPv4 just the same (the port is taken, or not ours to bind).
fn falls_back(addr: SocketAddr, e: &io::Error) -> bool {
    is_any_v6(addr)
        && !matches!(
            e.kind(),
            io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
        )
}

/// Linux's `net.ipv6.bindv6only` (0, the usual value, makes `[::]` dual-stack).
fn v6_only_by_default() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn only_the_unspecified_ipv6_address_falls_back_and_not_for_a_taken_port() {
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        let unsupported = io::Error::from_raw_os_error(97);
        assert!(falls_back(any6, &unsupported));
        assert!(falls_back(any6, &io::ErrorKind::AddrNotAvailable.into()));
        assert!(!falls_back(any6, &io::ErrorKind::AddrInUse.into()));
        assert!(!falls_back(any6, &io::ErrorKind::PermissionDenied.into()));
        assert!(!falls_back("[::1]:8080".parse().unwrap(), &unsupported));
        assert!(!falls_back("0.0.0.0:8080".parse().unwrap(), &unsupported));
    }

    #[test]
    fn a_burst_of_connections_waits_in_the_backlog_while_none_is_accepted() {
        // More than the standard library's backlog of 128, fewer than the usual open-file
        // limit of 1,024 for this test process.
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 600.min(somaxconn);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::with_capacity(burst);
        for i in 0..burst {
            match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
            {
                Ok(c) => clients.push(c),
                Err(e) => panic!("connection {i} of {burst} not taken into the backlog: {e}"),
            }
        }
        assert_eq!(clients.len(), burst);
    }

    #[test]
    fn the_default_address_takes_ipv4_clients() {
        let listener = bind("[::]:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        if listener.local_addr().unwrap().is_ipv6() && v6_only_by_default() {
            return; // IPv4 does not reach an IPv6 socket on this host (warned about at start)
        }
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut served, peer) = listener.accept().unwrap();
        assert_eq!(
            super::super::gate::canonical_peer(peer).ip(),
            std::net::IpAddr::from([127, 0, 0, 1]),
            "seen as IPv4: {peer}"
        );
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        served.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
    }
}
