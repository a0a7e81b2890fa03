//! ICMP echo ("ping") over a raw socket, IPv4 and IPv6, with a timeout; it
//! returns the round-trip time. Raw sockets need root (CAP_NET_RAW).
//!
//! Echo requests are built and replies parsed (checksums included) with
//! `smoltcp::wire`, the device's own packet code.
//!
//! The socket is opened on the calling thread, so a [`Pinger`] opened inside
//! `Netns::run(|| Pinger::open(...))` pings from that namespace.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use socklab_app::smoltcp::phy::ChecksumCapabilities;
use socklab_app::smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, Ipv4Packet};

/// Bytes of payload in each echo request, as ping(8) sends.
pub const PAYLOAD_LEN: usize = 56;
/// Bytes of the ICMP echo header before the payload.
pub const ECHO_HEADER_LEN: usize = 8;

/// Why a ping got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// Raw sockets are for root only.
    #[error("ping needs a raw socket, which needs root (CAP_NET_RAW): run it with sudo ({0})")]
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

/// A raw ICMP socket connected to one address: send echo requests, wait for
/// their replies.
#[derive(Debug)]
pub struct Pinger {
    socket: Socket,
    addr: IpAddr,
    /// This side's address toward `addr` (the IPv6 checksum covers it).
    local: IpAddr,
    /// The identifier of this pinger's requests.
    ident: u16,
}

impl Pinger {
    /// Opens a raw ICMP socket toward `addr` (in the calling thread's
    /// namespace). Fails with [`PingError::Permission`] without root.
    pub fn open(addr: IpAddr) -> Result<Self, PingError> {
        let io_error = |error| io_error(addr, error);
        let (domain, protocol) = match addr {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let socket = Socket::new(domain, Type::RAW, Some(protocol)).map_err(io_error)?;
        // A connected raw socket only receives packets from that address.
        socket
            .connect(&SockAddr::from(SocketAddr::new(addr, 0)))
            .map_err(io_error)?;
        let local = socket
            .local_addr()
            .map_err(io_error)?
            .as_socket()
            .map(|a| a.ip())
            .ok_or_else(|| io_error(io::Error::other("the socket has no IP address")))?;
        Ok(Pinger {
            socket,
            addr,
            local,
            ident: rand::random(),
        })
    }

    /// Who this pinger pings.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Sends one echo request with sequence number `seq` and `payload`, and
    /// waits up to `timeout` for the reply carrying the same identifier,
    /// sequence number and payload; returns the round-trip time.
    pub fn echo(&self, seq: u16, payload: &[u8], timeout: Duration) -> Result<Duration, PingError> {
        let addr = self.addr;
        let packet = self.request(seq, payload);
        let start = Instant::now();
        self.socket.send(&packet).map_err(|e| io_error(addr, e))?;
        let deadline = start + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PingError::Timeout { addr, timeout });
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| io_error(addr, e))?;
            let n = match (&self.socket).read(&mut buf) {
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
                Err(e) => return Err(io_error(addr, e)),
            };
            if self.is_reply(&buf[..n], seq, payload) {
                return Ok(start.elapsed());
            }
        }
    }

    /// An echo request, checksum filled in by smoltcp.
    fn request(&self, seq: u16, data: &[u8]) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        match (self.local, self.addr) {
            (IpAddr::V6(local), IpAddr::V6(addr)) => {
                let repr = Icmpv6Repr::EchoRequest {
                    ident: self.ident,
                    seq_no: seq,
                    data,
                };
                let mut bytes = vec![0; repr.buffer_len()];
                repr.emit(
                    &local,
                    &addr,
                    &mut Icmpv6Packet::new_unchecked(&mut bytes[..]),
                    &caps,
                );
                bytes
            }
            _ => {
                let repr = Icmpv4Repr::EchoRequest {
                    ident: self.ident,
                    seq_no: seq,
                    data,
                };
                let mut bytes = vec![0; repr.buffer_len()];
                repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]), &caps);
                bytes
            }
        }
    }

    /// True if `received` (an IPv4 packet with its header, as IPv4 raw
    /// sockets deliver it, or a bare ICMPv6 message) is the valid reply to
    /// request `seq` with `payload`.
    fn is_reply(&self, received: &[u8], seq: u16, payload: &[u8]) -> bool {
        is_reply(self.addr, self.local, received, self.ident, seq, payload)
    }
}

/// See [`Pinger::is_reply`]; checksums are checked.
fn is_reply(
    from: IpAddr,
    to: IpAddr,
    received: &[u8],
    ident: u16,
    seq: u16,
    payload: &[u8],
) -> bool {
    let caps = ChecksumCapabilities::default();
    let want = |i: u16, s: u16, data: &[u8]| i == ident && s == seq && data == payload;
    match (from, to) {
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            let Ok(packet) = Icmpv6Packet::new_checked(received) else {
                return false;
            };
            matches!(
                Icmpv6Repr::parse(&from, &to, &packet, &caps),
                Ok(Icmpv6Repr::EchoReply { ident, seq_no, data }) if want(ident, seq_no, data)
            )
        }
        _ => {
            let Ok(ip) = Ipv4Packet::new_checked(received) else {
                return false;
            };
            let Ok(packet) = Icmpv4Packet::new_checked(ip.payload()) else {
                return false;
            };
            matches!(
                Icmpv4Repr::parse(&packet, &caps),
                Ok(Icmpv4Repr::EchoReply { ident, seq_no, data }) if want(ident, seq_no, data)
            )
        }
    }
}

fn io_error(addr: IpAddr, error: io::Error) -> PingError {
    match error.kind() {
        io::ErrorKind::PermissionDenied => PingError::Permission(error),
        _ => PingError::Io { addr, error },
    }
}

/// A random payload of [`PAYLOAD_LEN`] bytes.
pub fn random_payload() -> [u8; PAYLOAD_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    rand::fill(&mut payload[..]);
    payload
}

/// Sends one echo request with a random payload to `addr` and waits up to
/// `timeout` for its reply; returns the round-trip time.
pub fn ping(addr: IpAddr, timeout: Duration) -> Result<Duration, PingError> {
    Pinger::open(addr)?.echo(rand::random(), &random_payload(), timeout)
}

#[cfg(test)]
mod test {
    use super::*;

    fn reply_v4(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
        let repr = Icmpv4Repr::EchoReply {
            ident,
            seq_no: seq,
            data,
        };
        let mut icmp = vec![0; repr.buffer_len()];
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(&mut icmp[..]),
            &ChecksumCapabilities::default(),
        );
        // A minimal IPv4 header in front, as a raw socket delivers it.
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (ip.len() + icmp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&icmp);
        ip
    }

    #[test]
    fn replies_are_matched_by_id_seq_payload_and_checksum() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let reply = reply_v4(1, 2, b"xy");
        assert!(is_reply(a, b, &reply, 1, 2, b"xy"));
        assert!(!is_reply(a, b, &reply, 1, 3, b"xy"));
        assert!(!is_reply(a, b, &reply, 9, 2, b"xy"));
        assert!(!is_reply(a, b, &reply, 1, 2, b"xz"));
        assert!(!is_reply(a, b, &reply[..24], 1, 2, b""));
        let mut bad = reply.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            !is_reply(a, b, &bad, 1, 2, b"xx"),
            "a bad checksum is no reply"
        );
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
