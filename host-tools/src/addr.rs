//! Parses the `ADDR` argument of the client commands: `host`, `host:port`,
//! `[v6]:port` or a bare IPv6 address; the port defaults to the lab's 6666.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use socklab_app::protocol::LAB_PORT;

/// Why an `ADDR` argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Nothing was given.
    #[error("empty address: give a host such as 192.168.69.1, 192.168.69.1:7 or [fdaa::1]:6666")]
    Empty,
    /// A `[` without its `]`, or something other than `:port` after it.
    #[error(
        "malformed bracketed address {0:?}: write an IPv6 address as [fdaa::1] or [fdaa::1]:6666"
    )]
    Brackets(String),
    /// The text between brackets is not an IPv6 address.
    #[error("{0:?} is not an IPv6 address (only IPv6 addresses go between brackets)")]
    NotIpv6(String),
    /// The port is missing, not a number, or out of range.
    #[error("invalid port {port:?} in {addr:?}: a port is a number from 0 to 65535")]
    Port {
        /// The whole argument.
        addr: String,
        /// The part that should have been a port.
        port: String,
    },
    /// A host name that does not resolve.
    #[error("cannot resolve host {host:?}: {reason}; give an IP address such as 192.168.69.1")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

/// Parses `ADDR` with the lab port (6666) as the default port.
///
/// ```
/// use socklab_host::addr::parse_addr;
/// assert_eq!(parse_addr("192.168.69.1").unwrap().to_string(), "192.168.69.1:6666");
/// assert_eq!(parse_addr("[fdaa::1]:7").unwrap().to_string(), "[fdaa::1]:7");
/// assert_eq!(parse_addr("fdaa::1").unwrap().to_string(), "[fdaa::1]:6666");
/// ```
pub fn parse_addr(s: &str) -> Result<SocketAddr, AddrError> {
    parse_addr_or(s, LAB_PORT)
}

/// Parses `ADDR` with `default_port` for a missing port. Host names are
/// resolved with the system resolver; the first address wins.
pub fn parse_addr_or(s: &str, default_port: u16) -> Result<SocketAddr, AddrError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AddrError::Empty);
    }
    // `[v6]` or `[v6]:port`.
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AddrError::Brackets(s.to_owned()))?;
        let ip: std::net::Ipv6Addr = host
            .parse()
            .map_err(|_| AddrError::NotIpv6(host.to_owned()))?;
        let port = match after {
            "" => default_port,
            _ => match after.strip_prefix(':') {
                Some(port) => parse_port(s, port)?,
                None => return Err(AddrError::Brackets(s.to_owned())),
            },
        };
        return Ok(SocketAddr::new(IpAddr::V6(ip), port));
    }
    // A bare IP address: IPv4, or IPv6 (two or more colons).
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if s.matches(':').count() > 1 {
        return Err(AddrError::NotIpv6(s.to_owned()));
    }
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, parse_port(s, port)?),
        None => (s, default_port),
    };
    if host.is_empty() {
        return Err(AddrError::Empty);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    resolve(host, port)
}

fn parse_port(addr: &str, port: &str) -> Result<u16, AddrError> {
    port.parse().map_err(|_| AddrError::Port {
        addr: addr.to_owned(),
        port: port.to_owned(),
    })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, AddrError> {
    let error = |reason: String| AddrError::Resolve {
        host: host.to_owned(),
        reason,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| error(e.to_string()))?
        .next()
        .ok_or_else(|| error("no address found".to_owned()))
}

#[cfg(test)]
mod test {
    use super::*;

    fn ok(s: &str) -> String {
        parse_addr(s).unwrap().to_string()
    }

    #[test]
    fn ipv4_with_and_without_port() {
        assert_eq!(ok("192.168.69.1"), "192.168.69.1:6666");
        assert_eq!(ok("192.168.69.1:7"), "192.168.69.1:7");
        assert_eq!(ok(" 10.0.2.15:19 "), "10.0.2.15:19");
    }

    #[test]
    fn ipv6_bare_and_bracketed() {
        assert_eq!(ok("fdaa::1"), "[fdaa::1]:6666");
        assert_eq!(ok("::1"), "[::1]:6666");
        assert_eq!(ok("[fdaa::1]"), "[fdaa::1]:6666");
        assert_eq!(ok("[fdaa::1]:9"), "[fdaa::1]:9");
    }

    #[test]
    fn default_port_is_configurable() {
        assert_eq!(
            parse_addr_or("192.168.69.1", 7).unwrap().to_string(),
            "192.168.69.1:7"
        );
    }

    #[test]
    fn names_resolve() {
        assert_eq!(parse_addr("localhost:7").unwrap().port(), 7);
        assert!(parse_addr("localhost").unwrap().ip().is_loopback());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse_addr(""), Err(AddrError::Empty));
        assert_eq!(parse_addr(":6666"), Err(AddrError::Empty));
        assert!(matches!(
            parse_addr("[fdaa::1"),
            Err(AddrError::Brackets(_))
        ));
        assert!(matches!(
            parse_addr("[fdaa::1]x"),
            Err(AddrError::Brackets(_))
        ));
        assert!(matches!(
            parse_addr("[1.2.3.4]:5"),
            Err(AddrError::NotIpv6(_))
        ));
        assert!(matches!(
            parse_addr("fdaa::1::2"),
            Err(AddrError::NotIpv6(_))
        ));
        assert!(matches!(
            parse_addr("1.2.3.4:"),
            Err(AddrError::Port { .. })
        ));
        assert!(matches!(
            parse_addr("1.2.3.4:x"),
            Err(AddrError::Port { .. })
        ));
        assert!(matches!(
            parse_addr("1.2.3.4:65536"),
            Err(AddrError::Port { .. })
        ));
        assert!(matches!(
            parse_addr("[::1]:-1"),
            Err(AddrError::Port { .. })
        ));
        let message = parse_addr("1.2.3.4:99999").unwrap_err().to_string();
        assert!(message.contains("0 to 65535"), "{message}");
    }
}
