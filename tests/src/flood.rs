//! A SYN flooder for the reliability tests: raw IPv4/TCP SYNs (the IP header
//! ours, written with `smoltcp::wire`, sent on an `IPPROTO_RAW` socket) from
//! spoofed source addresses that nobody owns, so no one ever answers the
//! device's SYN-ACKs and every SYN a listening socket takes pins it half-open
//! until the handshake timeout.
//!
//! Needs root (a raw socket); open it inside the device's namespace.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// An IPv4 header without options and a TCP header without options.
pub const SYN_LEN: usize = 20 + 20;

/// One SYN from `src` to `dst` (IPv4 identification `id`, DF, TTL 64, window
/// 64240, no options), written with `smoltcp::wire`, checksums filled in.
pub fn syn_packet(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, id: u16) -> [u8; SYN_LEN] {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 64240,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut p = [0u8; SYN_LEN];
    let mut packet = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.emit(&mut packet, &caps);
    packet.set_ident(id);
    packet.fill_checksum();
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(*src.ip()),
        &IpAddress::Ipv4(*dst.ip()),
        &caps,
    );
    p
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
            let host: u8 = rng.random_range(2..=254);
            if !self.exclude.contains(&host) {
                return SocketAddrV4::new(
                    Ipv4Addr::new(a, b, c, host),
                    rng.random_range(1024..=65535),
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
        let packet = syn_packet(spoof.source(&mut rng), dst, rng.random(), rng.random());
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
    fn syn_is_well_formed_and_checksums_verify() {
        let src = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 7), 40000);
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 1), 6666);
        let p = syn_packet(src, dst, 0x1234_5678, 9);
        let ip = Ipv4Packet::new_checked(&p[..]).expect("an IPv4 packet");
        assert!(ip.verify_checksum());
        assert_eq!((ip.ident(), ip.dont_frag(), ip.hop_limit()), (9, true, 64));
        assert_eq!(usize::from(ip.total_len()), SYN_LEN);
        let tcp = TcpPacket::new_checked(ip.payload()).expect("a TCP segment");
        let (s, d) = (IpAddress::Ipv4(*src.ip()), IpAddress::Ipv4(*dst.ip()));
        assert!(tcp.verify_checksum(&s, &d));
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 6666));
        assert_eq!(tcp.seq_number(), TcpSeqNumber(0x1234_5678));
        assert_eq!(p[33], 0x02, "SYN only");
    }
}
