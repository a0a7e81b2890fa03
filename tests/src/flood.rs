//! A SYN flooder for the reliability tests: raw IPv4/TCP SYNs (the IP header
//! written here, `IPPROTO_RAW`), from spoofed source addresses that nobody
//! owns, so no one ever answers the device's SYN-ACKs and every SYN a
//! listening socket takes pins it half-open until the handshake timeout.
//!
//! Needs root (a raw socket); open it inside the device's namespace.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// An IPv4 header without options and a TCP header without options.
pub const SYN_LEN: usize = 20 + 20;

/// One SYN from `src` to `dst`, checksums filled in.
pub fn syn_packet(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, id: u16) -> [u8; SYN_LEN] {
    let mut p = [0u8; SYN_LEN];
    // IPv4: version 4, IHL 5; total length; identification; DF; TTL 64; TCP.
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(SYN_LEN as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let ip_sum = checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    // TCP: ports, sequence number, data offset 5, SYN, window.
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.ip().octets());
    pseudo[4..8].copy_from_slice(&dst.ip().octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let tcp_sum = checksum(&[&pseudo, &p[20..]]);
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`
/// (each of even length).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for word in part.chunks(2) {
            let hi = u32::from(word[0]) << 8;
            let lo = word.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a flood did.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    /// SYNs handed to the kernel.
    pub sent: u64,
    /// Sends the kernel refused (e.g. no buffer space); not counted in `sent`.
    pub send_errors: u64,
    /// From the first SYN to the last.
    pub elapsed: Duration,
}

impl FloodReport {
    /// SYNs per second handed to the kernel.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Where the flood comes from: random hosts of `net`/24 other than the ones
/// in `exclude` (the device and the host side), random ports.
#[derive(Debug, Clone)]
pub struct Spoof {
    /// The /24 network (last octet ignored).
    pub net: Ipv4Addr,
    /// Host numbers (last octets) never used as a source.
    pub exclude: Vec<u8>,
}

impl Spoof {
    fn source(&self, rng: &mut StdRng) -> SocketAddrV4 {
        let [a, b, c, _] = self.net.octets();
        loop {
            let host: u8 = rng.gen_range(2..=254);
            if !self.exclude.contains(&host) {
                return SocketAddrV4::new(
                    Ipv4Addr::new(a, b, c, host),
                    rng.gen_range(1024..=65535),
                );
            }
        }
    }
}

/// Sends SYNs to `dst` as fast as the kernel takes them, until at least
/// `min_count` are sent and `min_time` has passed. Run it inside the
/// device's namespace (root).
pub fn flood(
    dst: SocketAddrV4,
    spoof: &Spoof,
    seed: u64,
    min_count: u64,
    min_time: Duration,
) -> io::Result<FloodReport> {
    // IPPROTO_RAW: the header is ours (IP_HDRINCL implied); send only.
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
    let to = SockAddr::from(dst);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut report = FloodReport {
        sent: 0,
        send_errors: 0,
        elapsed: Duration::ZERO,
    };
    while report.sent < min_count || started.elapsed() < min_time {
        let packet = syn_packet(spoof.source(&mut rng), dst, rng.gen(), rng.gen());
        match socket.send_to(&packet, &to) {
            Ok(_) => report.sent += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                report.send_errors += 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(e),
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn checksums_verify() {
        let src = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 7), 40000);
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 1), 6666);
        let p = syn_packet(src, dst, 0x1234_5678, 9);
        // A header with its checksum sums to 0xffff (checksum 0 over it).
        assert_eq!(checksum(&[&p[..20]]), 0);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src.ip().octets());
        pseudo[4..8].copy_from_slice(&dst.ip().octets());
        pseudo[9] = 6;
        pseudo[11] = 20;
        assert_eq!(checksum(&[&pseudo, &p[20..]]), 0);
        assert_eq!(p[33], 0x02, "SYN only");
    }
}
