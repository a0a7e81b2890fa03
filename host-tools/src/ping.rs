//! ICMP echo ("ping") over a raw socket, IPv4 and IPv6, with a timeout; it
//! returns the round-trip time. Raw sockets need root (CAP_NET_RAW).
//!
//! The socket is opened on the calling thread, so inside
//! `Netns::run(|| ping(...))` it pings from that namespace.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// ICMPv4 echo request / reply types.
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV4_ECHO_REPLY: u8 = 0;
/// ICMPv6 echo request / reply types.
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// Why a ping got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// Raw sockets are for root only.
    #[error("ping needs a raw socket, which needs root (CAP_NET_RAW): run as root ({0})")]
    Permission(io::Error),
    /// No echo reply in time.
    #[error("no echo reply from {addr} within {timeout:?}")]
    Timeout {
        /// Who was pinged.
        addr: IpAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// The device cannot be pinged from the host (e.g. behind QEMU user networking).
    #[error("this device cannot be pinged from the host: {0}")]
    Unsupported(&'static str),
    /// Any other socket error.
    #[error("ping {addr}: {error}")]
    Io {
        /// Who was pinged.
        addr: IpAddr,
        /// The kernel's error.
        error: io::Error,
    },
}

/// Sends one echo request with a 56-byte payload to `addr` and waits up to
/// `timeout` for its reply; returns the round-trip time.
pub fn ping(addr: IpAddr, timeout: Duration) -> Result<Duration, PingError> {
    let seq = rand::random::<u16>();
    let mut payload = [0u8; 56];
    rand::fill(&mut payload[..]);
    ping_with(addr, seq, &payload, timeout)
}

/// Sends one echo request with sequence number `seq` and `payload`, and waits
/// for the reply carrying the same identifier, sequence number and payload.
pub fn ping_with(
    addr: IpAddr,
    seq: u16,
    payload: &[u8],
    timeout: Duration,
) -> Result<Duration, PingError> {
    let io_error = |error: io::Error| match error.kind() {
        io::ErrorKind::PermissionDenied => PingError::Permission(error),
        _ => PingError::Io { addr, error },
    };
    let (domain, protocol, request, reply) = match addr {
        IpAddr::V4(_) => (
            Domain::IPV4,
            Protocol::ICMPV4,
            ICMPV4_ECHO_REQUEST,
            ICMPV4_ECHO_REPLY,
        ),
        IpAddr::V6(_) => (
            Domain::IPV6,
            Protocol::ICMPV6,
            ICMPV6_ECHO_REQUEST,
            ICMPV6_ECHO_REPLY,
        ),
    };
    let socket = Socket::new(domain, Type::RAW, Some(protocol)).map_err(io_error)?;
    // A connected raw socket only receives packets from that address.
    socket
        .connect(&SockAddr::from(SocketAddr::new(addr, 0)))
        .map_err(io_error)?;
    let ident = rand::random::<u16>();
    let mut packet = echo_packet(request, ident, seq, payload);
    if addr.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    } // The kernel computes ICMPv6 checksums of raw ICMPv6 sockets itself.

    let start = Instant::now();
    socket.send(&packet).map_err(io_error)?;
    let deadline = start + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PingError::Timeout { addr, timeout });
        }
        socket.set_read_timeout(Some(left)).map_err(io_error)?;
        let n = match (&socket).read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(PingError::Timeout { addr, timeout })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        // IPv4 raw sockets deliver the IP header too; IPv6 ones do not.
        let icmp = match addr {
            IpAddr::V4(_) => strip_ipv4_header(&buf[..n]),
            IpAddr::V6(_) => Some(&buf[..n]),
        };
        if let Some(icmp) = icmp {
            if is_reply(icmp, reply, ident, seq, payload) {
                return Ok(start.elapsed());
            }
        }
    }
}

/// An ICMP echo message with a zero checksum.
fn echo_packet(kind: u8, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(8 + payload.len());
    packet.extend_from_slice(&[kind, 0, 0, 0]);
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

fn is_reply(icmp: &[u8], kind: u8, ident: u16, seq: u16, payload: &[u8]) -> bool {
    icmp.len() >= 8
        && icmp[0] == kind
        && icmp[1] == 0
        && icmp[4..6] == ident.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
        && &icmp[8..] == payload
}

fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
    let header_len = usize::from(packet.first()? & 0x0f) * 4;
    packet.get(header_len..)
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2 (before inversion).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // A packet with its checksum filled in sums to zero.
        let mut packet = echo_packet(ICMPV4_ECHO_REQUEST, 0x1234, 7, b"abc");
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&packet), 0);
    }

    #[test]
    fn replies_are_matched_by_id_seq_and_payload() {
        let reply = echo_packet(ICMPV4_ECHO_REPLY, 1, 2, b"xy");
        assert!(is_reply(&reply, ICMPV4_ECHO_REPLY, 1, 2, b"xy"));
        assert!(!is_reply(&reply, ICMPV4_ECHO_REPLY, 1, 3, b"xy"));
        assert!(!is_reply(&reply, ICMPV4_ECHO_REPLY, 9, 2, b"xy"));
        assert!(!is_reply(&reply, ICMPV4_ECHO_REPLY, 1, 2, b"xz"));
        assert!(!is_reply(&reply[..6], ICMPV4_ECHO_REPLY, 1, 2, b""));
        let mut ip = vec![0x45; 20];
        ip.extend_from_slice(&reply);
        assert_eq!(strip_ipv4_header(&ip), Some(&reply[..]));
    }

    /// Needs root: loopback answers pings in the kernel.
    #[test]
    fn loopback_answers() {
        assert!(
            crate::netns::is_root(),
            "this test needs root (raw ICMP sockets): run it with sudo"
        );
        let timeout = Duration::from_secs(2);
        ping("127.0.0.1".parse().unwrap(), timeout).unwrap();
        ping("::1".parse().unwrap(), timeout).unwrap();
    }
}
