//! Mutations of frames aimed at one layer, and the fix that makes a
//! mutated frame pass its lengths and checksums again.

use socklab_app::smoltcp::wire::{
    Icmpv4Packet, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
};

/// A part of a frame, for mutations aimed at one header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// From the Ethernet header on.
    Ethernet,
    /// From the IP (or ARP) header on.
    Network,
    /// From the TCP, UDP or ICMP header on.
    Transport,
    /// From the transport's payload on.
    Payload,
}

/// One change to a frame. Positions wrap around the frame's length, so
/// every mutation applies to every frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Flips bit `bit % 8` of byte `at`.
    Flip { at: usize, bit: u8 },
    /// Writes the low bytes of `value`, big-endian, `offset` bytes into
    /// `layer`: one byte if `width % 3` is 0, two if 1, four if 2.
    Field {
        layer: Layer,
        offset: usize,
        width: u8,
        value: u32,
    },
    /// Inserts `bytes` before byte `at`.
    Insert { at: usize, bytes: Vec<u8> },
    /// Deletes `len` bytes from `at`.
    Delete { at: usize, len: usize },
    /// Keeps the first `len` bytes.
    Truncate { len: usize },
}

/// Length of an Ethernet header.
pub const ETH_LEN: usize = 14;

/// Where `layer` starts in `frame` (may be past its end).
fn layer_start(frame: &[u8], layer: Layer) -> usize {
    let byte = |i: usize| frame.get(i).copied().unwrap_or(0) as usize;
    let ethertype = (byte(12) << 8) | byte(13);
    let (transport, protocol) = match ethertype {
        0x0800 => (ETH_LEN + (byte(ETH_LEN) & 0x0f) * 4, byte(ETH_LEN + 9)),
        0x86dd => (ETH_LEN + 40, byte(ETH_LEN + 6)),
        _ => (ETH_LEN, 0),
    };
    let payload = match protocol {
        6 => transport + (byte(transport + 12) >> 4) * 4,
        _ => transport + 8,
    };
    match layer {
        Layer::Ethernet => 0,
        Layer::Network => ETH_LEN,
        Layer::Transport => transport,
        Layer::Payload => payload,
    }
}

/// Applies `mutation` to `frame`.
pub fn mutate(frame: &mut Vec<u8>, mutation: &Mutation) {
    let len = frame.len();
    match mutation {
        Mutation::Flip { at, bit } => {
            if len > 0 {
                frame[at % len] ^= 1 << (bit % 8);
            }
        }
        Mutation::Field {
            layer,
            offset,
            width,
            value,
        } => {
            let width = match width % 3 {
                0 => 1,
                1 => 2,
                _ => 4,
            };
            let start = layer_start(frame, *layer) + offset;
            let bytes = &value.to_be_bytes()[4 - width..];
            for (i, &b) in bytes.iter().enumerate() {
                if let Some(slot) = frame.get_mut(start + i) {
                    *slot = b;
                }
            }
        }
        Mutation::Insert { at, bytes } => {
            let at = at % (len + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len: n } => {
            if len > 0 {
                let at = at % len;
                frame.drain(at..(at + n).min(len));
            }
        }
        Mutation::Truncate { len: n } => frame.truncate(*n),
    }
}

/// Makes a mutated frame acceptable again: IP lengths set to the frame's
/// (`lengths`) and IPv4, TCP, UDP, ICMP and ICMPv6 checksums recomputed
/// (`checksums`), so that the damage reaches TCP and the services instead
/// of dying on a checksum. Leaves what it cannot parse as it is.
pub fn fix_frame(frame: &mut [u8], lengths: bool, checksums: bool) {
    if frame.len() < ETH_LEN {
        return;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = &mut frame[ETH_LEN..];
    let (src, dst, protocol, payload) = match ethertype {
        0x0800 => {
            if ip.len() < 20 {
                return;
            }
            let header = usize::from(ip[0] & 0x0f) * 4;
            if header < 20 || header > ip.len() {
                return;
            }
            if lengths {
                let total = ip.len().min(usize::from(u16::MAX)) as u16;
                Ipv4Packet::new_unchecked(&mut *ip).set_total_len(total);
            }
            let mut packet = Ipv4Packet::new_unchecked(&mut *ip);
            if checksums {
                packet.fill_checksum();
            }
            let total = usize::from(packet.total_len()).min(ip.len());
            if total < header {
                return;
            }
            let packet = Ipv4Packet::new_unchecked(&*ip);
            let (src, dst) = (packet.src_addr(), packet.dst_addr());
            let protocol = packet.next_header();
            (
                IpAddress::Ipv4(src),
                IpAddress::Ipv4(dst),
                protocol,
                &mut ip[header..total],
            )
        }
        0x86dd => {
            if ip.len() < 40 {
                return;
            }
            if lengths {
                let payload = (ip.len() - 40).min(usize::from(u16::MAX)) as u16;
                Ipv6Packet::new_unchecked(&mut *ip).set_payload_len(payload);
            }
            let packet = Ipv6Packet::new_unchecked(&*ip);
            let end = (40 + usize::from(packet.payload_len())).min(ip.len());
            let (src, dst) = (packet.src_addr(), packet.dst_addr());
            let protocol = packet.next_header();
            (
                IpAddress::Ipv6(src),
                IpAddress::Ipv6(dst),
                protocol,
                &mut ip[40..end],
            )
        }
        _ => return,
    };
    let len = payload.len();
    if protocol == IpProtocol::Udp && len >= 8 && lengths {
        UdpPacket::new_unchecked(&mut *payload).set_len(len.min(usize::from(u16::MAX)) as u16);
    }
    if !checksums {
        return;
    }
    match protocol {
        IpProtocol::Tcp if payload.len() >= 20 => {
            TcpPacket::new_unchecked(payload).fill_checksum(&src, &dst)
        }
        IpProtocol::Udp if payload.len() >= 8 => {
            // The checksum covers the length the header gives.
            let mut udp = UdpPacket::new_unchecked(&mut *payload);
            if (8..=len).contains(&usize::from(udp.len())) {
                udp.fill_checksum(&src, &dst)
            }
        }
        IpProtocol::Icmp if payload.len() >= 4 => {
            Icmpv4Packet::new_unchecked(payload).fill_checksum()
        }
        IpProtocol::Icmpv6 if payload.len() >= 4 => {
            if let (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) = (src, dst) {
                Icmpv6Packet::new_unchecked(payload).fill_checksum(&s, &d)
            }
        }
        _ => {}
    }
}
