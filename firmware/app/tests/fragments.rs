//! IP datagrams bigger than the link: an 8000-byte ping arrives in IPv4
//! fragments, is reassembled, and its reply leaves in fragments that add up
//! to the same datagram.

mod common;

use std::net::IpAddr;

use common::*;
use socklab_app::protocol::info;
use socklab_app::smoltcp::phy::ChecksumCapabilities;
use socklab_app::smoltcp::wire::{EthernetFrame, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet};

/// Ethernet header bytes.
const ETH: usize = 14;
/// IPv4 header bytes (no options).
const IP: usize = 20;
/// Fragment payload bytes that fit a 1500-byte MTU (a multiple of 8).
const FRAGMENT: usize = 1480;

/// Splits an Ethernet frame holding one IPv4 datagram into fragments.
fn fragment(frame: &[u8]) -> Vec<Vec<u8>> {
    let payload = &frame[ETH + IP..];
    payload
        .chunks(FRAGMENT)
        .enumerate()
        .map(|(i, chunk)| {
            let mut out = frame[..ETH + IP].to_vec();
            out.extend_from_slice(chunk);
            let mut ip = Ipv4Packet::new_unchecked(&mut out[ETH..]);
            ip.set_total_len((IP + chunk.len()) as u16);
            ip.set_frag_offset((i * FRAGMENT) as u16);
            ip.set_more_frags((i + 1) * FRAGMENT < payload.len());
            ip.set_dont_frag(false);
            ip.fill_checksum();
            out
        })
        .collect()
}

/// Reassembles the IPv4 fragments among `frames` (one datagram): its payload.
fn reassemble<'f>(frames: impl Iterator<Item = &'f [u8]>) -> Option<Vec<u8>> {
    let mut pieces: Vec<(usize, Vec<u8>, bool)> = Vec::new();
    for frame in frames {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            continue;
        };
        if ip.next_header() != IpProtocol::Icmp {
            continue;
        }
        assert!(ip.verify_checksum(), "bad IPv4 header checksum");
        let len = ip.total_len() as usize - ip.header_len() as usize;
        assert!(frame.len() <= LINK_MTU, "a frame over the link MTU");
        pieces.push((
            ip.frag_offset() as usize,
            ip.payload()[..len].to_vec(),
            ip.more_frags(),
        ));
    }
    pieces.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (offset, bytes, _) in &pieces {
        assert_eq!(*offset, data.len(), "a gap in the fragments: {pieces:?}");
        data.extend_from_slice(bytes);
    }
    (!pieces.last()?.2).then_some(data)
}

#[test]
fn a_ping_of_8000_bytes_is_reassembled_and_answered_in_fragments() {
    let mut net = Net::small();
    let data: Vec<u8> = (0..8000u32).map(|i| (i * 7 % 251) as u8).collect();
    let request = ping_frame(
        IpAddr::V4(CLIENT_V4),
        IpAddr::V4(device_v4()),
        0x1234,
        1,
        &data,
    );
    let fragments = fragment(&request);
    assert_eq!(fragments.len(), 6);
    // The device needs the client's MAC: a first exchange teaches it.
    let (mut c, _) = net.lab(false);
    net.set_capture(true);
    for frame in fragments {
        net.inject(frame);
    }
    net.run(100);
    let reply = reassemble(net.frames_to_client()).expect("no whole reply");
    let fragments_back = net
        .frames_to_client()
        .filter(|f| {
            EthernetFrame::new_checked(*f).ok().and_then(|e| {
                Ipv4Packet::new_checked(e.payload())
                    .ok()
                    .map(|ip| ip.next_header())
            }) == Some(IpProtocol::Icmp)
        })
        .count();
    let icmp = Icmpv4Packet::new_checked(&reply[..]).expect("an ICMP message");
    match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).expect("valid ICMP") {
        Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data: back,
        } => {
            assert_eq!((ident, seq_no), (0x1234, 1));
            assert_eq!(back, &data[..], "the reply's data differs");
        }
        other => panic!("not an echo reply: {other:?}"),
    }
    println!("8000-byte ping: 6 fragments in, {fragments_back} fragments back, data identical");
    assert_eq!(fragments_back, 6);
    let info = net.info(&mut c);
    let get = |key: &str| {
        info.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get(info::REASSEMBLY_BUFFER), "16384");
    assert_eq!(get(info::FRAGMENTATION_BUFFER), "16384");
}
