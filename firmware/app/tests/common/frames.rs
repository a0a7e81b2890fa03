//! Hand-made frames from the client to the device (TCP SYN, ping) and
//! parsers of what the device sent, all through `smoltcp::wire`.

use std::net::{IpAddr, SocketAddr};

use socklab_app::config;
use socklab_app::smoltcp::phy::ChecksumCapabilities;
use socklab_app::smoltcp::wire::{
    EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet,
    Icmpv6Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber,
};

use super::CLIENT_MAC;

/// Wraps an IP packet of `payload_len` bytes, written by `emit`, in an
/// Ethernet frame from the client to the device.
pub fn ip_frame(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    payload_len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let eth_len = EthernetFrame::<&[u8]>::header_len();
    let (ethertype, ip_len) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EthernetProtocol::Ipv4, 20),
        (IpAddr::V6(_), IpAddr::V6(_)) => (EthernetProtocol::Ipv6, 40),
        _ => panic!("mixed address families"),
    };
    let mut frame = vec![0u8; eth_len + ip_len + payload_len];
    let eth = EthernetRepr {
        src_addr: CLIENT_MAC,
        dst_addr: config::DEFAULT_MAC,
        ethertype,
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    let ip = &mut frame[eth_len..];
    match (src, dst) {
        (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
            let repr = Ipv4Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit: 64,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut *ip), &caps);
        }
        (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
            let repr = Ipv6Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit: 64,
            };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut *ip));
        }
        _ => unreachable!(),
    }
    emit(&mut ip[ip_len..]);
    frame
}

/// A bare SYN from the client's `src` to the device's `dst`: a handshake
/// that the client's own stack knows nothing of.
pub fn syn_frame(src: SocketAddr, dst: SocketAddr, seq: i32) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq),
        ack_number: None,
        window_len: 64_000,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip_frame(
        src.ip(),
        dst.ip(),
        IpProtocol::Tcp,
        repr.buffer_len(),
        |buf| {
            repr.emit(
                &mut TcpPacket::new_unchecked(buf),
                &s,
                &d,
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// An ICMP (v4) or ICMPv6 echo request from the client's `src` to `dst`.
pub fn ping_frame(src: IpAddr, dst: IpAddr, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let repr = Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            ip_frame(src, dst, IpProtocol::Icmp, repr.buffer_len(), |buf| {
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps)
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            ip_frame(src, dst, IpProtocol::Icmpv6, repr.buffer_len(), |buf| {
                repr.emit(&s, &d, &mut Icmpv6Packet::new_unchecked(buf), &caps)
            })
        }
        _ => panic!("mixed address families"),
    }
}

/// The IP packet of an Ethernet frame: source, destination, protocol, payload.
pub fn ip_of(frame: &[u8]) -> Option<(IpAddr, IpAddr, IpProtocol, &[u8])> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let payload = &frame[EthernetFrame::<&[u8]>::header_len()..];
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(payload).ok()?;
            let header = ip.header_len() as usize;
            let total = ip.total_len() as usize;
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                &payload[header..total],
            ))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(payload).ok()?;
            let len = ip.payload_len() as usize;
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                &payload[40..40 + len],
            ))
        }
        _ => None,
    }
}

/// The TCP header fields of a frame that the tests look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeen {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// RST flag.
    pub rst: bool,
    /// FIN flag.
    pub fin: bool,
}

/// The TCP segment in `frame`, if it holds one.
pub fn tcp_of(frame: &[u8]) -> Option<TcpSeen> {
    let (src, dst, protocol, payload) = ip_of(frame)?;
    if protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).ok()?;
    Some(TcpSeen {
        src: SocketAddr::new(src, tcp.src_port()),
        dst: SocketAddr::new(dst, tcp.dst_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        rst: tcp.rst(),
        fin: tcp.fin(),
    })
}

/// An ICMP or ICMPv6 echo reply in `frame`: (source, destination, ident,
/// sequence number, data).
pub fn echo_reply_of(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16, Vec<u8>)> {
    let caps = ChecksumCapabilities::default();
    let (src, dst, protocol, payload) = ip_of(frame)?;
    match (protocol, src, dst) {
        (IpProtocol::Icmp, _, _) => {
            let packet = Icmpv4Packet::new_checked(payload).ok()?;
            match Icmpv4Repr::parse(&packet, &caps).ok()? {
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => Some((src, dst, ident, seq_no, data.to_vec())),
                _ => None,
            }
        }
        (IpProtocol::Icmpv6, IpAddr::V6(s), IpAddr::V6(d)) => {
            let packet = Icmpv6Packet::new_checked(payload).ok()?;
            match Icmpv6Repr::parse(&s, &d, &packet, &caps).ok()? {
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => Some((src, dst, ident, seq_no, data.to_vec())),
                _ => None,
            }
        }
        _ => None,
    }
}
