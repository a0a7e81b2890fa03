//! The daytime service (RFC 867) over the simulated link, IPv4 and IPv6: a
//! TCP client gets one line with the device's uptime and the device's FIN,
//! the socket serves the next client, a UDP datagram gets one datagram with
//! the line back, and `INFO`, `NETSTAT` and the service table list it.

mod common;

use common::*;
use socklab_app::protocol::{info, Daytime, NetstatRow, SockName, DAYTIME_PORT, TCP, UDP};
use socklab_app::services::{self, ServicePort, Transport};
use socklab_app::smoltcp::iface::SocketHandle;
use socklab_app::smoltcp::socket::{tcp, udp};
use socklab_app::smoltcp::wire::IpEndpoint;

/// The client's UDP port.
const CLIENT_PORT: u16 = 40_013;

/// The uptime `INFO` reports now, ms.
fn uptime(net: &mut Net) -> u64 {
    let (mut lab, _) = net.lab(false);
    let info = net.info(&mut lab);
    net.send_line(&lab, "QUIT");
    let (_, value) = info
        .iter()
        .find(|(k, _)| k == info::UPTIME_MS)
        .expect("uptime in INFO");
    value.parse().unwrap()
}

/// Connects to the daytime port, reads its one line, and waits for the
/// device's close; returns the line.
fn ask_tcp(net: &mut Net, v6: bool) -> String {
    let mut conn = net.open(device(v6, DAYTIME_PORT));
    let line = net.line(&mut conn);
    // The device closes after the line: the client sees its FIN.
    let closed = net.run_until(LINE_WAIT_MS, |net| !net.socket(&conn).may_recv());
    assert!(closed, "no FIN after the daytime line");
    assert!(net.try_line(&mut conn).is_none(), "more than one line");
    net.socket(&conn).close();
    assert!(net.wait_closed(&conn, LINE_WAIT_MS));
    net.remove(conn);
    line
}

#[test]
fn tcp_sends_one_line_with_the_uptime_then_closes() {
    let mut net = Net::small();
    net.run(1_234);
    for v6 in [false, true] {
        let before = uptime(&mut net);
        let line = ask_tcp(&mut net, v6);
        let after = uptime(&mut net);
        assert!(
            line.ends_with('\r'),
            "RFC 867 lines end with CR LF: {line:?}"
        );
        let daytime = Daytime::parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
        assert_eq!(daytime.board, "unknown");
        assert!(
            (before..=after).contains(&daytime.uptime_ms),
            "{before} <= {} <= {after}: {line:?}",
            daytime.uptime_ms
        );
    }
}

#[test]
fn tcp_serves_client_after_client_and_two_at_once() {
    let mut net = Net::small();
    for _ in 0..5 {
        ask_tcp(&mut net, false);
    }
    // Both sockets answer at once; everything a client sends is dropped.
    let mut a = net.open(device(false, DAYTIME_PORT));
    let mut b = net.open(device(true, DAYTIME_PORT));
    net.send(&a, b"ignored\r\n");
    for conn in [&mut a, &mut b] {
        assert!(Daytime::parse(&net.line(conn)).is_ok());
    }
    for conn in [a, b] {
        net.socket(&conn).close();
        assert!(net.wait_closed(&conn, LINE_WAIT_MS));
        net.remove(conn);
    }
    // Every daytime socket listens again.
    net.run(100);
    let (mut lab, _) = net.lab(false);
    let rows = net.netstat(&mut lab);
    let listening = rows
        .iter()
        .map(|r| NetstatRow::parse(r).unwrap())
        .filter(|r| {
            r.proto == TCP && r.local == SockName::Any(Some(DAYTIME_PORT)) && r.state == "LISTEN"
        })
        .count();
    assert_eq!(listening, services::DAYTIME_SOCKETS, "{rows:#?}");
}

#[test]
fn a_client_that_never_closes_is_cut_after_the_closing_timeout() {
    let mut net = Net::small();
    let mut conn = net.open(device(false, DAYTIME_PORT));
    assert!(Daytime::parse(&net.line(&mut conn)).is_ok());
    // The client keeps its side open: the device's close times out.
    let closing_ms = socklab_app::Timeouts::default().closing_ms;
    net.run(closing_ms + 1_000);
    // The device gave up: its reset closed the client's socket.
    assert_eq!(net.state(&conn), tcp::State::Closed);
    let (mut lab, _) = net.lab(false);
    let info = net.info(&mut lab);
    let timed_out = info.iter().find(|(k, _)| k == info::CONN_TIMED_OUT);
    assert_eq!(timed_out.map(|(_, v)| v.as_str()), Some("1"));
    let rows = net.netstat(&mut lab);
    let on_port = rows
        .iter()
        .map(|r| NetstatRow::parse(r).unwrap())
        .filter(|r| r.proto == TCP && r.local == SockName::Any(Some(DAYTIME_PORT)))
        .count();
    assert_eq!(on_port, services::DAYTIME_SOCKETS, "{rows:#?}");
}

/// A client UDP socket.
fn client_socket(net: &mut Net) -> SocketHandle {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 4096]);
    let mut socket = udp::Socket::new(buffer(), buffer());
    socket.bind(CLIENT_PORT).unwrap();
    net.sockets.add(socket)
}

#[test]
fn udp_answers_each_datagram_with_one_line() {
    let mut net = Net::small();
    let handle = client_socket(&mut net);
    for v6 in [false, true] {
        for data in [&b""[..], b"what time is it?"] {
            let to = IpEndpoint::from(device(v6, DAYTIME_PORT));
            net.sockets
                .get_mut::<udp::Socket>(handle)
                .send_slice(data, to)
                .unwrap();
            let answered = net.run_until(3_000, |net| {
                net.sockets.get::<udp::Socket>(handle).can_recv()
            });
            assert!(answered, "no daytime datagram (v6={v6})");
            let socket = net.sockets.get_mut::<udp::Socket>(handle);
            let (answer, meta) = socket.recv().unwrap();
            assert_eq!(meta.endpoint, to);
            let text = std::str::from_utf8(answer).unwrap();
            let line = text.strip_suffix("\r\n").expect("CR LF");
            assert!(Daytime::parse(line).is_ok(), "{text:?}");
            assert!(!socket.can_recv(), "one datagram per datagram");
        }
    }
}

#[test]
fn info_netstat_and_the_port_table_list_it() {
    let mut net = Net::small();
    ask_tcp(&mut net, false);
    let (mut lab, _) = net.lab(false);
    let info = net.info(&mut lab);
    let value = |key| info.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(
        value(info::DAYTIME_SOCKETS),
        Some(services::DAYTIME_SOCKETS.to_string())
    );
    assert_eq!(value(info::DAYTIME_ANSWERS).as_deref(), Some("1"));
    let rows: Vec<_> = net.netstat(&mut lab);
    let udp_rows = rows
        .iter()
        .map(|r| NetstatRow::parse(r).unwrap())
        .filter(|r| r.proto == UDP && r.local == SockName::Any(Some(DAYTIME_PORT)))
        .count();
    assert_eq!(udp_rows, 1, "{rows:#?}");
    assert!(services::PORTS.contains(&ServicePort {
        service: "daytime",
        transport: Transport::Tcp,
        port: DAYTIME_PORT,
    }));
    assert!(services::PORTS.contains(&ServicePort {
        service: "daytime",
        transport: Transport::Udp,
        port: DAYTIME_PORT,
    }));
    assert!(services::TCP_PORTS.contains(&DAYTIME_PORT));
    assert_eq!(services::service_name(DAYTIME_PORT), "daytime");
}
