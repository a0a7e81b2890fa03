//! The `virtio_net_hdr` that precedes every frame on a TAP opened with
//! `IFF_VNET_HDR`: checksum and TCP segmentation offload, both ways.
//!
//! Device → host: smoltcp (feature `segmentation-offload`) builds TCP
//! segments up to [`MAX_SUPER_FRAME`] bytes and leaves the TCP checksum to the
//! device; [`prepare_tx`] puts the pseudo-header sum into the checksum field
//! and describes the frame (`NEEDS_CSUM`, and for a segment longer than the
//! MSS `gso_type`/`gso_size`) so that the kernel completes and segments it.
//!
//! Host → device: the kernel hands over frames up to 64 KB whose checksum is
//! only partly computed (`NEEDS_CSUM`: made on this host, never on a wire);
//! [`accept_rx`] completes what smoltcp will check, and itself verifies the
//! TCP checksum of every frame that came complete, so that no corrupted
//! segment is accepted.

use socklab_app::smoltcp::wire::{
    checksum, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet,
    TcpPacket,
};

/// Size of the header we negotiate (`TUNSETVNETHDRSZ`): the original
/// `virtio_net_hdr` without `num_buffers`.
pub const HEADER_LEN: usize = 10;
/// Largest frame the device hands to the kernel in one write (Ethernet
/// header included): a capture's 65535-byte snap length holds it whole.
pub const MAX_SUPER_FRAME: usize = 65_535;
/// Largest frame the kernel hands to the device in one read: an IP packet of
/// 65535 bytes behind an Ethernet header and a VLAN tag.
pub const MAX_RX_FRAME: usize = 14 + 4 + 65_535;

/// `flags`: the checksum from `csum_start` to the end is still to be computed
/// and stored at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `gso_type`: a single frame, no segmentation.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP/IPv4 segment to be cut into `gso_size` pieces.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: a TCP/IPv6 segment to be cut into `gso_size` pieces.
pub const GSO_TCPV6: u8 = 4;

/// IPv6 extension headers walked to find the upper layer.
const MAX_EXTENSION_HEADERS: usize = 8;
/// `flags`: the kernel has verified the checksum.
pub const F_DATA_VALID: u8 = 2;

/// Offset of the checksum within a TCP header.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// One `virtio_net_hdr` (all fields little-endian on the wire).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VnetHeader {
    pub flags: u8,
    pub gso_type: u8,
    /// Bytes of headers (Ethernet, IP, TCP) before the payload of a GSO frame.
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS) of a GSO frame.
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> VnetHeader {
        let word = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        VnetHeader {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        }
    }

    /// Writes the header.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }
}

/// Where a frame's IP packet sits: the transport protocol, the offset of
/// its transport header, and the end of the IP packet within the frame.
struct Layout {
    protocol: IpProtocol,
    transport_start: usize,
    end: usize,
}

/// Finds the IP packet of an Ethernet frame (no extension headers: smoltcp
/// sends none with TCP, and the kernel's offloaded frames have none).
fn layout(frame: &[u8]) -> Option<Layout> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let eth_len = EthernetFrame::<&[u8]>::header_len();
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            Some(Layout {
                protocol: ip.next_header(),
                transport_start: eth_len + usize::from(ip.header_len()),
                end: eth_len + usize::from(ip.total_len()),
            })
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            let end = eth_len + ip.header_len() + usize::from(ip.payload_len());
            // Past the extension headers that carry their own length, to the
            // upper layer (a fragment header ends the walk: smoltcp drops
            // IPv6 fragments).
            let (mut protocol, mut start) = (ip.next_header(), eth_len + ip.header_len());
            for _ in 0..MAX_EXTENSION_HEADERS {
                if !matches!(
                    protocol,
                    IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts
                ) {
                    break;
                }
                let ext = frame.get(start..start + 2)?;
                protocol = IpProtocol::from(ext[0]);
                start += (usize::from(ext[1]) + 1) * 8;
            }
            (start <= end).then_some(Layout {
                protocol,
                transport_start: start,
                end,
            })
        }
        _ => None,
    }
}

/// Describes a frame smoltcp built for the kernel. A TCP segment (whose
/// checksum smoltcp left at 0) gets the pseudo-header sum in its checksum
/// field and `NEEDS_CSUM`; one with a payload longer than `mss` is also marked
/// for segmentation. Every other frame goes as it is.
pub fn prepare_tx(frame: &mut [u8], mss: Option<u16>) -> VnetHeader {
    let Some(at) = layout(frame) else {
        return VnetHeader::default();
    };
    if at.protocol != IpProtocol::Tcp || at.end > frame.len() {
        return VnetHeader::default();
    }
    let eth_len = EthernetFrame::<&[u8]>::header_len();
    let tcp_len = (at.end - at.transport_start) as u32;
    let (pseudo, gso_type) = {
        let eth = EthernetFrame::new_unchecked(&frame[..]);
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let ip = Ipv4Packet::new_unchecked(&frame[eth_len..]);
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                let sum = checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, tcp_len);
                (sum, GSO_TCPV4)
            }
            _ => {
                let ip = Ipv6Packet::new_unchecked(&frame[eth_len..]);
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                let sum = checksum::pseudo_header_v6(&src, &dst, IpProtocol::Tcp, tcp_len);
                (sum, GSO_TCPV6)
            }
        }
    };
    let Ok(mut tcp) = TcpPacket::new_checked(&mut frame[at.transport_start..at.end]) else {
        return VnetHeader::default();
    };
    tcp.set_checksum(pseudo);
    let headers = at.transport_start + usize::from(tcp.header_len());
    let mut header = VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_NONE,
        csum_start: at.transport_start as u16,
        csum_offset: TCP_CHECKSUM_OFFSET,
        ..VnetHeader::default()
    };
    if let Some(mss) = mss.filter(|&mss| at.end - headers > usize::from(mss)) {
        header.gso_type = gso_type;
        header.gso_size = mss;
        header.hdr_len = headers as u16;
    }
    header
}

/// Why a frame from the kernel was not handed to smoltcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// `NEEDS_CSUM` on a frame whose IP packet is incomplete (shorter than
    /// its header says) or whose checksum place lies outside that packet.
    Malformed,
    /// A TCP segment whose checksum is wrong.
    BadChecksum,
}

/// Makes a frame from the kernel fit for smoltcp, which checks no TCP
/// checksum on an offloading TAP (the board does, here):
///
/// * `NEEDS_CSUM` (the checksum field holds the pseudo-header sum): the
///   kernel made the packet on this host and skipped the checksum because
///   it never crossed a wire. A TCP checksum is completed only if
///   `complete_tcp` (for a capture); any other protocol's always, for
///   smoltcp checks those.
/// * `DATA_VALID`: the kernel verified it.
/// * neither: the checksum is complete, and a TCP segment's is verified
///   here; a wrong one is refused.
pub fn accept_rx(header: &VnetHeader, frame: &mut [u8], complete_tcp: bool) -> Result<(), RxError> {
    let at = layout(frame);
    if header.flags & F_NEEDS_CSUM == 0 {
        return match at {
            Some(at) if at.protocol == IpProtocol::Tcp && header.flags & F_DATA_VALID == 0 => {
                verify_tcp(frame, &at)
            }
            _ => Ok(()),
        };
    }
    let at = at.ok_or(RxError::Malformed)?;
    let start = usize::from(header.csum_start);
    let field = start + usize::from(header.csum_offset);
    if start < at.transport_start || field + 2 > at.end {
        return Err(RxError::Malformed);
    }
    if at.protocol == IpProtocol::Tcp && !complete_tcp {
        return Ok(());
    }
    let mut sum = !checksum::data(&frame[start..at.end]);
    if sum == 0 && at.protocol == IpProtocol::Udp {
        // A computed UDP checksum of zero is sent as all ones (RFC 768).
        sum = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Checks the TCP checksum of a frame laid out as `at`.
fn verify_tcp(frame: &[u8], at: &Layout) -> Result<(), RxError> {
    let eth_len = EthernetFrame::<&[u8]>::header_len();
    let (src, dst): (IpAddress, IpAddress) = match EthernetFrame::new_unchecked(frame).ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_unchecked(&frame[eth_len..]);
            (ip.src_addr().into(), ip.dst_addr().into())
        }
        _ => {
            let ip = Ipv6Packet::new_unchecked(&frame[eth_len..]);
            (ip.src_addr().into(), ip.dst_addr().into())
        }
    };
    let tcp = frame
        .get(at.transport_start..at.end)
        .and_then(|bytes| TcpPacket::new_checked(bytes).ok())
        .ok_or(RxError::Malformed)?;
    if tcp.verify_checksum(&src, &dst) {
        Ok(())
    } else {
        Err(RxError::BadChecksum)
    }
}

/// Computes the whole TCP checksum of a frame smoltcp built with the
/// checksum left to the device (for a capture that shows valid checksums).
pub fn complete_tcp_checksum(frame: &mut [u8]) {
    let header = prepare_tx(frame, None);
    // Only fails for a frame prepare_tx did not mark, which needs nothing.
    let _ = accept_rx(&header, frame, true);
}

#[cfg(test)]
mod test {
    use super::*;
    use socklab_app::smoltcp::phy::ChecksumCapabilities;
    use socklab_app::smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, Ipv6Address, Ipv6Repr,
        TcpControl, TcpRepr, TcpSeqNumber,
    };

    const MSS: u16 = 1460;

    /// An Ethernet frame with one TCP segment of `payload`, checksum 0 as
    /// smoltcp leaves it with the checksum offloaded.
    fn tcp_frame(v6: bool, payload: &[u8]) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 7,
            dst_port: 40000,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(1),
            ack_number: Some(TcpSeqNumber(2)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let (ethertype, ip_len) = if v6 {
            (EthernetProtocol::Ipv6, 40)
        } else {
            (EthernetProtocol::Ipv4, 20)
        };
        let total = 14 + ip_len + tcp.buffer_len();
        let mut frame = vec![0u8; total];
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype,
        };
        eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        let mut caps = ChecksumCapabilities::default();
        caps.tcp = socklab_app::smoltcp::phy::Checksum::None;
        let (src, dst): (IpAddress, IpAddress) = if v6 {
            let (s, d) = (
                Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 0x100),
            );
            Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut frame[14..]));
            (s.into(), d.into())
        } else {
            let (s, d) = (
                Ipv4Address::new(192, 168, 69, 1),
                Ipv4Address::new(192, 168, 69, 100),
            );
            Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            }
            .emit(
                &mut Ipv4Packet::new_unchecked(&mut frame[14..]),
                &ChecksumCapabilities::default(),
            );
            (s.into(), d.into())
        };
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[14 + ip_len..]),
            &src,
            &dst,
            &caps,
        );
        frame
    }

    fn tcp_checksum_ok(frame: &[u8], v6: bool) -> bool {
        let ip_len = if v6 { 40 } else { 20 };
        let tcp = TcpPacket::new_checked(&frame[14 + ip_len..]).unwrap();
        let (src, dst): (IpAddress, IpAddress) = if v6 {
            let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
            (ip.src_addr().into(), ip.dst_addr().into())
        } else {
            let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
            (ip.src_addr().into(), ip.dst_addr().into())
        };
        tcp.verify_checksum(&src, &dst)
    }

    #[test]
    fn header_round_trip() {
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 74,
            gso_size: 1440,
            csum_start: 54,
            csum_offset: 16,
        };
        let mut bytes = [0u8; HEADER_LEN];
        header.write(&mut bytes);
        assert_eq!(bytes, [1, 4, 74, 0, 0xa0, 5, 54, 0, 16, 0]);
        assert_eq!(VnetHeader::parse(&bytes), header);
    }

    #[test]
    fn tx_then_rx_completion_gives_a_valid_checksum() {
        for v6 in [false, true] {
            let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
            let mut frame = tcp_frame(v6, &payload);
            let header = prepare_tx(&mut frame, Some(MSS));
            let ip_len = if v6 { 40 } else { 20 };
            assert_eq!(header.flags, F_NEEDS_CSUM);
            assert_eq!(header.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(header.gso_size, MSS);
            assert_eq!(usize::from(header.csum_start), 14 + ip_len);
            assert_eq!(usize::from(header.hdr_len), 14 + ip_len + 20);
            assert!(!tcp_checksum_ok(&frame, v6));
            // What the kernel would do with the frame: the same as our receive path.
            accept_rx(&header, &mut frame, true).unwrap();
            assert!(tcp_checksum_ok(&frame, v6), "v6={v6}");
            // Complete now: accepted as it is, and refused once corrupted.
            let plain = VnetHeader::default();
            assert_eq!(accept_rx(&plain, &mut frame, false), Ok(()));
            // What a capture shows: the same, complete checksum.
            let mut captured = tcp_frame(v6, &payload);
            complete_tcp_checksum(&mut captured);
            assert!(tcp_checksum_ok(&captured, v6));
            // A flipped bit afterwards is caught.
            frame[14 + ip_len + 30] ^= 4;
            assert!(!tcp_checksum_ok(&frame, v6));
            assert_eq!(
                accept_rx(&plain, &mut frame, false),
                Err(RxError::BadChecksum)
            );
            let valid = VnetHeader {
                flags: F_DATA_VALID,
                ..plain
            };
            assert_eq!(accept_rx(&valid, &mut frame, false), Ok(()));
        }
    }

    #[test]
    fn a_partial_tcp_checksum_is_trusted_unless_completion_is_asked() {
        let mut frame = tcp_frame(true, b"made on this host");
        let header = prepare_tx(&mut frame, None);
        let partial = frame.clone();
        assert_eq!(accept_rx(&header, &mut frame, false), Ok(()));
        assert_eq!(frame, partial);
        assert_eq!(accept_rx(&header, &mut frame, true), Ok(()));
        assert!(tcp_checksum_ok(&frame, true));
    }

    #[test]
    fn a_segment_within_the_mss_is_not_segmented() {
        let mut frame = tcp_frame(false, b"hello");
        let header = prepare_tx(&mut frame, Some(MSS));
        assert_eq!(header.flags, F_NEEDS_CSUM);
        assert_eq!(header.gso_type, GSO_NONE);
        let header = prepare_tx(&mut frame, None);
        assert_eq!(header.gso_type, GSO_NONE);
    }

    #[test]
    fn non_tcp_frames_carry_no_offload() {
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(prepare_tx(&mut arp, Some(MSS)), VnetHeader::default());
        assert_eq!(prepare_tx(&mut [0u8; 3], None), VnetHeader::default());
    }

    #[test]
    fn rx_rejects_checksum_places_outside_the_packet_and_truncation() {
        let mut frame = tcp_frame(false, b"some data");
        let mut header = prepare_tx(&mut frame, None);
        header.csum_offset = 4000;
        assert_eq!(
            accept_rx(&header, &mut frame, true),
            Err(RxError::Malformed)
        );
        header.csum_offset = 16;
        header.csum_start = 3;
        assert_eq!(
            accept_rx(&header, &mut frame, true),
            Err(RxError::Malformed)
        );
        header.csum_start = 34;
        let len = frame.len();
        assert!(accept_rx(&header, &mut frame[..len - 4], true).is_err());
        assert_eq!(
            accept_rx(&header, &mut [0u8; 20], true),
            Err(RxError::Malformed)
        );
        let plain = VnetHeader::default();
        assert_eq!(accept_rx(&plain, &mut [0u8; 20], false), Ok(()));
    }
}
