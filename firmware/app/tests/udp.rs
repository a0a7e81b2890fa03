//! The UDP services over the simulated link, IPv4 and IPv6: echo sends each
//! datagram back, discard drops it, chargen answers with 0..=512 bytes of the
//! RFC 864 pattern, any other port gets ICMP port unreachable, and `NETSTAT`
//! shows one `udp` row per service.

mod common;

use std::net::SocketAddr;

use common::*;
use socklab_app::protocol::{
    chargen_byte, info, NetstatRow, SockName, CHARGEN_LINE_LEN, CHARGEN_PORT, DISCARD_PORT,
    ECHO_PORT, NO_STATE, UDP,
};
use socklab_app::services::{self, Transport, UDP_CHARGEN_MAX};
use socklab_app::smoltcp::iface::SocketHandle;
use socklab_app::smoltcp::socket::udp;
use socklab_app::smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet,
    IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet,
};

/// The client's UDP port.
const CLIENT_PORT: u16 = 40_000;
/// A UDP port the device has no socket on.
const CLOSED_PORT: u16 = 4242;

/// A client UDP socket bound to [`CLIENT_PORT`].
fn client_socket(net: &mut Net) -> SocketHandle {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16_384]);
    let mut socket = udp::Socket::new(buffer(), buffer());
    socket.bind(CLIENT_PORT).unwrap();
    net.sockets.add(socket)
}

/// Sends `data` to the device's `port` and runs until an answer came or
/// 3 simulated seconds passed (the first IPv6 datagram waits for neighbour
/// discovery).
fn send(net: &mut Net, handle: SocketHandle, v6: bool, port: u16, data: &[u8]) {
    let to = IpEndpoint::from(device(v6, port));
    net.sockets
        .get_mut::<udp::Socket>(handle)
        .send_slice(data, to)
        .unwrap();
    net.run_until(3_000, |net| {
        let socket = net.sockets.get::<udp::Socket>(handle);
        socket.can_recv()
            || (socket.send_queue() == 0
                && net
                    .captured
                    .iter()
                    .any(|(dir, f)| *dir == Dir::ToClient && port_unreachable(f)))
    });
}

/// The datagrams the client received, with their senders.
fn received(net: &mut Net, handle: SocketHandle) -> Vec<(SocketAddr, Vec<u8>)> {
    let socket = net.sockets.get_mut::<udp::Socket>(handle);
    let mut out = Vec::new();
    while let Ok((data, meta)) = socket.recv() {
        let addr = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
        out.push((addr, data.to_vec()));
    }
    out
}

#[test]
fn echo_sends_each_datagram_back_to_its_sender() {
    let mut net = Net::small();
    let handle = client_socket(&mut net);
    for v6 in [false, true] {
        for data in [&b"hello udp"[..], &[0xa5; 1400][..], b""] {
            send(&mut net, handle, v6, ECHO_PORT, data);
            assert_eq!(
                received(&mut net, handle),
                vec![(device(v6, ECHO_PORT), data.to_vec())],
                "echo, v6={v6}, {} bytes",
                data.len()
            );
        }
    }
}

#[test]
fn discard_answers_nothing() {
    let mut net = Net::small();
    let handle = client_socket(&mut net);
    net.set_capture(true);
    for v6 in [false, true] {
        send(&mut net, handle, v6, DISCARD_PORT, b"into the void");
    }
    assert!(received(&mut net, handle).is_empty());
    let answers = net
        .captured
        .iter()
        .filter(|(dir, frame)| {
            *dir == Dir::ToClient
                && (ip_protocol(frame) == Some(IpProtocol::Udp) || port_unreachable(frame))
        })
        .count();
    assert_eq!(answers, 0, "discard (or an ICMP error) answered");
}

#[test]
fn chargen_answers_each_datagram_with_up_to_512_pattern_bytes() {
    let mut net = Net::small();
    let handle = client_socket(&mut net);
    let mut lengths = Vec::new();
    for round in 0..40 {
        let v6 = round % 2 == 1;
        send(&mut net, handle, v6, CHARGEN_PORT, b"x");
        let got = received(&mut net, handle);
        assert_eq!(got.len(), 1, "one answer per datagram");
        let (from, data) = &got[0];
        assert_eq!(*from, device(v6, CHARGEN_PORT));
        assert!(data.len() <= UDP_CHARGEN_MAX, "{} bytes", data.len());
        if let Some(&first) = data.first() {
            // Each answer starts a line of the pattern.
            let line = u64::from(first - b' ');
            for (i, &byte) in data.iter().enumerate() {
                let expected = chargen_byte(line * CHARGEN_LINE_LEN as u64 + i as u64);
                assert_eq!(byte, expected, "byte {i} of a chargen answer");
            }
        }
        lengths.push(data.len());
    }
    lengths.sort_unstable();
    lengths.dedup();
    assert!(lengths.len() > 10, "lengths are not random: {lengths:?}");
}

/// The IP protocol of a frame the device sent, if it carries IP (IPv6:
/// the first header after the fixed one).
fn ip_protocol(frame: &[u8]) -> Option<IpProtocol> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => Some(Ipv4Packet::new_checked(eth.payload()).ok()?.next_header()),
        EthernetProtocol::Ipv6 => Some(Ipv6Packet::new_checked(eth.payload()).ok()?.next_header()),
        _ => None,
    }
}

/// True if `frame` is an ICMP or ICMPv6 port unreachable.
fn port_unreachable(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(eth.payload())
            .ok()
            .filter(|ip| ip.next_header() == IpProtocol::Icmp)
            .and_then(|ip| {
                let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
                Some(icmp.msg_type() == Icmpv4Message::DstUnreachable && icmp.msg_code() == 3)
            })
            .unwrap_or(false),
        EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(eth.payload())
            .ok()
            .filter(|ip| ip.next_header() == IpProtocol::Icmpv6)
            .and_then(|ip| {
                let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
                Some(icmp.msg_type() == Icmpv6Message::DstUnreachable && icmp.msg_code() == 4)
            })
            .unwrap_or(false),
        _ => false,
    }
}

#[test]
fn a_closed_udp_port_gets_icmp_port_unreachable() {
    let mut net = Net::small();
    let handle = client_socket(&mut net);
    for v6 in [false, true] {
        net.captured.clear();
        net.set_capture(true);
        send(&mut net, handle, v6, CLOSED_PORT, b"anyone?");
        net.set_capture(false);
        let unreachable = net
            .captured
            .iter()
            .filter(|(dir, frame)| *dir == Dir::ToClient && port_unreachable(frame))
            .count();
        assert_eq!(unreachable, 1, "v6={v6}: one port unreachable");
    }
    assert!(received(&mut net, handle).is_empty());
}

#[test]
fn netstat_shows_a_udp_row_per_service_and_info_the_sizes() {
    let mut net = Net::small();
    let (mut conn, _) = net.lab(false);
    let rows = net.netstat(&mut conn);
    let udp: Vec<NetstatRow<'_>> = rows
        .iter()
        .map(|row| NetstatRow::parse(row).unwrap())
        .filter(|row| row.proto == UDP)
        .collect();
    let ports: Vec<_> = udp.iter().map(|row| row.local.port()).collect();
    // One row per UDP port of the service table, in its order: the UDP
    // services' first.
    let table: Vec<_> = services::PORTS
        .iter()
        .filter(|p| p.transport == Transport::Udp)
        .map(|p| Some(p.port))
        .collect();
    assert_eq!(ports, table);
    assert_eq!(
        ports[..3],
        [Some(ECHO_PORT), Some(DISCARD_PORT), Some(CHARGEN_PORT)]
    );
    for row in &udp {
        assert_eq!(row.remote, SockName::Any(None));
        assert_eq!(row.state, NO_STATE);
        assert_eq!((row.rx_queued, row.tx_queued), (0, 0));
    }
    assert!(
        rows.iter().any(|row| row == "udp *:7 *:* - 0 0"),
        "{rows:?}"
    );
    let info = net.info(&mut conn);
    let value = |key: &str| info.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(value(info::UDP_SOCKETS).as_deref(), Some("3"));
    assert_eq!(value(info::UDP_CHARGEN_MAX).as_deref(), Some("512"));
    assert!(value(info::UDP_RX_BUFFER).is_some() && value(info::UDP_PACKETS).is_some());
}
