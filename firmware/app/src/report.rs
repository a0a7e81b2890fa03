//! What the device says about itself: `NETSTAT` rows and `INFO` lines,
//! formatted one at a time so a long reply can wait for buffer room.

use core::fmt::Write;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::socket::udp;
use smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};

use crate::bulk::Bulk;
use crate::config::Config;
use crate::counters::Counters;
use crate::events::Events;
use crate::iperf2::IPERF2_TX_BUFFER;
use crate::iperf3::{IPERF3_MAX_PARAMS, IPERF3_TIMEOUT_MS};
use crate::limits;
use crate::line::LineWriter;
use crate::pool::Pool;
use crate::protocol::{info, EventRow, NetstatRow, SockName, NO_STATE, TCP, UDP, VERSION};
use crate::sizes::Sizes;
use crate::sock::{socket_addr, state_name};
use crate::udp::{UDP_CHARGEN_MAX, UDP_PACKETS, UDP_RX_BUFFER, UDP_SOCKETS, UDP_TX_BUFFER};

/// The lab's sockets as `NETSTAT` lists them: how many places, and the
/// socket of each (`None` for a place without one).
pub(crate) type LabSockets<'l> = (usize, &'l dyn Fn(usize) -> Option<SocketHandle>);

/// The other services' sockets `NETSTAT` lists: TCP (iperf), then UDP.
pub(crate) type Others<'h> = (&'h [SocketHandle], &'h [SocketHandle]);

/// A snapshot of the device taken at the start of a poll.
pub(crate) struct View<'v> {
    pub config: &'v Config,
    pub sizes: Sizes,
    pub mac: EthernetAddress,
    pub mtu: usize,
    pub ipv4: Option<Ipv4Cidr>,
    pub ipv6: Ipv6Cidr,
    pub ipv4_source: &'static str,
    pub uptime_ms: i64,
    pub counters: Counters,
    /// Closing-pool sockets busy now: (lab, bulk).
    pub closing_in_use: (usize, usize),
    pub events: &'v Events,
    pub http_requests: u64,
}

/// Formats the first kept event with a sequence number at or after `next`;
/// returns the sequence number after it, or `None` when there is none left.
pub(crate) fn event_row(view: &View<'_>, next: u64, out: &mut LineWriter<'_>) -> Option<u64> {
    let event = view.events.first_from(next)?;
    let row = EventRow {
        seq: event.seq,
        at_ms: event.at_ms,
        socket: event.socket,
        port: event.port,
        from: state_name(event.from),
        to: state_name(event.to),
        peer: event.remote,
    };
    let _ = write!(out, "{row}");
    Some(event.seq + 1)
}

/// Formats row `next` of `NETSTAT`: the lab's sockets in slot order (the
/// backlog after the slots), the bulk services', the other services' (iperf
/// and UDP, `others`), then the closing pool's busy
/// ones (a free pool socket serves nobody and is not shown). Returns the
/// position after it, or `None` when there is none left.
pub(crate) fn netstat_row(
    sockets: &SocketSet<'_>,
    (lab_len, lab): LabSockets<'_>,
    (bulk, (others, udp_handles), pool): (&Bulk, Others<'_>, &Pool<'_>),
    next: usize,
    out: &mut LineWriter<'_>,
) -> Option<usize> {
    let mut position = next;
    let after_bulk = lab_len + bulk.len();
    let after_others = after_bulk + others.len();
    let after_udp = after_others + udp_handles.len();
    if (after_others..after_udp).contains(&position) {
        let socket = sockets.get::<udp::Socket>(udp_handles[position - after_others]);
        let row = NetstatRow {
            proto: UDP,
            local: SockName::Any(Some(socket.endpoint().port).filter(|p| *p != 0)),
            remote: SockName::Any(None),
            state: NO_STATE,
            rx_queued: socket.recv_queue(),
            tx_queued: socket.send_queue(),
        };
        let _ = write!(out, "{row}");
        return Some(position + 1);
    }
    let handle = loop {
        let candidate = if position < lab_len {
            lab(position)
        } else if position < after_bulk {
            Some(bulk.handle(position - lab_len))
        } else if position < after_others {
            Some(others[position - after_bulk])
        } else {
            pool.busy_handle(position.max(after_udp) - after_udp)?
        };
        position += 1;
        if let Some(handle) = candidate {
            break handle;
        }
    };
    let tcp = sockets.get::<tcp::Socket>(handle);
    let state = tcp.state();
    let row = match (state, tcp.local_endpoint(), tcp.remote_endpoint()) {
        (State::Listen, _, _) | (_, None, _) | (_, _, None) => NetstatRow {
            proto: TCP,
            local: SockName::Any(Some(tcp.listen_endpoint().port).filter(|p| *p != 0)),
            remote: SockName::Any(None),
            state: state_name(state),
            rx_queued: 0,
            tx_queued: 0,
        },
        (_, Some(local), Some(remote)) => NetstatRow {
            proto: TCP,
            local: SockName::Addr(socket_addr(local)),
            remote: SockName::Addr(socket_addr(remote)),
            state: state_name(state),
            rx_queued: tcp.recv_queue(),
            tx_queued: tcp.send_queue(),
        },
    };
    let _ = write!(out, "{row}");
    Some(position)
}

/// Formats `INFO` line number `index`, the key [`info::KEYS`]`[index]` and
/// its value; false past the last one.
pub(crate) fn info_line(
    view: &View<'_>,
    lab_in_use: usize,
    lab_queued: usize,
    index: usize,
    out: &mut LineWriter<'_>,
) -> bool {
    let Some(&key) = info::KEYS.get(index) else {
        return false;
    };
    write!(out, "{key}=").is_ok() && info_value(view, (lab_in_use, lab_queued), key, out).is_ok()
}

/// Formats the value of `INFO` key `key`.
fn info_value(
    view: &View<'_>,
    (lab_in_use, lab_queued): (usize, usize),
    key: &str,
    out: &mut LineWriter<'_>,
) -> core::fmt::Result {
    let s = &view.sizes;
    let c = &view.counters;
    let t = &view.config.timeouts;
    let m = view.mac.0;
    match key {
        info::BOARD => write!(out, "{}", view.config.board),
        info::VERSION => write!(out, "{VERSION}"),
        info::MAC => write!(
            out,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ),
        info::IPV4 => match view.ipv4 {
            Some(cidr) => write!(out, "{cidr}"),
            None => write!(out, "{}", info::NONE),
        },
        info::IPV6 => write!(out, "{}", view.ipv6),
        info::IPV4_SOURCE => write!(out, "{}", view.ipv4_source),
        info::MTU => write!(out, "{}", view.mtu),
        info::UPTIME_MS => write!(out, "{}", view.uptime_ms),
        info::LAB_SLOTS => write!(out, "{}", s.lab_slots),
        info::LAB_IN_USE => write!(out, "{lab_in_use}"),
        info::LAB_RX_BUFFER => write!(out, "{}", s.lab_rx),
        info::LAB_TX_BUFFER => write!(out, "{}", s.lab_tx),
        info::BULK_SLOTS => write!(out, "{}", s.bulk_slots),
        info::BULK_RX_BUFFER => write!(out, "{}", s.bulk_rx),
        info::BULK_TX_BUFFER => write!(out, "{}", s.bulk_tx),
        info::SOCKETS => write!(
            out,
            "{}",
            s.tcp_sockets() - s.closing_sockets() + UDP_SOCKETS
        ),
        info::BUFFER_BYTES => write!(out, "{}", s.buffer_bytes()),
        info::IDLE_TIMEOUT_MS => write!(out, "{}", t.idle_ms),
        info::SLOW_READER_TIMEOUT_MS => write!(out, "{}", t.slow_reader_ms),
        info::HANDSHAKE_TIMEOUT_MS => write!(out, "{}", t.handshake_ms),
        info::FRAMES_RX => write!(out, "{}", c.frames_rx),
        info::FRAMES_TX => write!(out, "{}", c.frames_tx),
        info::CONN_ACCEPTED => write!(out, "{}", c.accepted),
        info::CONN_REFUSED => write!(out, "{}", c.refused),
        info::CONN_TIMED_OUT => write!(out, "{}", c.timed_out),
        info::CONN_RESET => write!(out, "{}", c.reset),
        info::CONN_CLOSED => write!(out, "{}", c.closed),
        info::LINES_TOO_LONG => write!(out, "{}", c.lines_too_long),
        info::LAB_BACKLOG => write!(out, "{}", s.lab_backlog),
        info::LAB_QUEUED => write!(out, "{lab_queued}"),
        info::BACKLOG_POLICY => write!(out, "{}", view.config.backlog.name()),
        info::CONN_BUSY => write!(out, "{}", c.busy),
        info::CLOSING_TIMEOUT_MS => write!(out, "{}", t.closing_ms),
        info::KEEP_ALIVE_MS => write!(out, "{}", t.keep_alive_ms),
        info::DEAD_PEER_MS => write!(out, "{}", t.dead_peer_ms),
        info::OFFLOAD => write!(out, "{}", view.config.offload),
        info::IPERF3_SOCKETS => write!(out, "{}", s.iperf3_sockets),
        info::IPERF3_MAX_STREAMS => write!(out, "{}", s.iperf3_max_streams()),
        info::IPERF3_RX_BUFFER => write!(out, "{}", s.iperf3_rx),
        info::IPERF3_TX_BUFFER => write!(out, "{}", s.iperf3_tx),
        info::IPERF3_MAX_PARAMS => write!(out, "{IPERF3_MAX_PARAMS}"),
        info::IPERF3_TIMEOUT_MS => write!(out, "{IPERF3_TIMEOUT_MS}"),
        info::IPERF3_TESTS => write!(out, "{}", c.iperf3_tests),
        info::IPERF3_FAILED => write!(out, "{}", c.iperf3_failed),
        info::IPERF3_BUSY => write!(out, "{}", c.iperf3_busy),
        info::IPERF2_SOCKETS => write!(out, "{}", s.iperf2_sockets),
        info::IPERF2_RX_BUFFER => write!(out, "{}", s.iperf2_rx),
        info::IPERF2_TX_BUFFER => write!(out, "{IPERF2_TX_BUFFER}"),
        info::IPERF2_TESTS => write!(out, "{}", c.iperf2_tests),
        info::LAB_CLOSING => write!(out, "{}", s.lab_closing),
        info::BULK_CLOSING => write!(out, "{}", s.bulk_closing),
        info::CLOSING_IN_USE => write!(out, "{}", view.closing_in_use.0 + view.closing_in_use.1),
        info::TIME_WAIT_RECYCLED => write!(out, "{}", c.time_wait_recycled),
        info::REASSEMBLY_BUFFER => write!(out, "{}", smoltcp::config::REASSEMBLY_BUFFER_SIZE),
        info::REASSEMBLY_BUFFERS => write!(out, "{}", smoltcp::config::REASSEMBLY_BUFFER_COUNT),
        info::FRAGMENTATION_BUFFER => {
            write!(out, "{}", smoltcp::config::FRAGMENTATION_BUFFER_SIZE)
        }
        info::HTTP_SOCKETS => write!(out, "{}", limits::HTTP_SOCKETS),
        info::HTTP_RX_BUFFER => write!(out, "{}", limits::HTTP_RX_BUFFER),
        info::HTTP_TX_BUFFER => write!(out, "{}", limits::HTTP_TX_BUFFER),
        info::HTTP_MAX_HEAD => write!(out, "{}", limits::MAX_REQUEST_HEAD),
        info::HTTP_REQUEST_TIMEOUT_MS => write!(out, "{}", t.http_request_ms),
        info::HTTP_IDLE_TIMEOUT_MS => write!(out, "{}", t.http_idle_ms),
        info::EVENT_RING => write!(out, "{}", crate::events::EVENT_RING_LEN),
        info::EVENTS_NEXT => write!(out, "{}", view.events.next_seq()),
        info::HTTP_REQUESTS => write!(out, "{}", view.http_requests),
        info::UDP_SOCKETS => write!(out, "{UDP_SOCKETS}"),
        info::UDP_RX_BUFFER => write!(out, "{UDP_RX_BUFFER}"),
        info::UDP_TX_BUFFER => write!(out, "{UDP_TX_BUFFER}"),
        info::UDP_PACKETS => write!(out, "{UDP_PACKETS}"),
        info::UDP_CHARGEN_MAX => write!(out, "{UDP_CHARGEN_MAX}"),
        info::MGMT_SOCKETS => write!(out, "{}", limits::MGMT_SOCKETS),
        // Every key of the table has an arm above (a test checks it).
        _ => write!(out, "{}", info::NONE),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::line::OutLine;

    #[test]
    fn every_info_key_has_its_own_value_in_table_order() {
        let config = Config {
            offload: "on",
            ..Config::default()
        };
        let events = Events::new();
        let view = View {
            config: &config,
            sizes: Sizes {
                lab_slots: 4,
                lab_backlog: 2,
                lab_rx: 512,
                lab_tx: 1024,
                bulk_slots: 1,
                bulk_rx: 1024,
                bulk_tx: 1024,
                iperf3_sockets: 0,
                iperf3_rx: 0,
                iperf3_tx: 0,
                iperf2_sockets: 0,
                iperf2_rx: 0,
                lab_closing: 1,
                bulk_closing: 1,
            },
            mac: config.mac,
            mtu: 1500,
            ipv4: Some(config.ipv4),
            ipv6: config.ipv6,
            ipv4_source: "static",
            uptime_ms: 1,
            counters: Counters::default(),
            closing_in_use: (0, 0),
            events: &events,
            http_requests: 0,
        };
        for (index, key) in info::KEYS.iter().enumerate() {
            let mut line = OutLine::new();
            assert!(info_line(&view, 1, 0, index, &mut LineWriter(&mut line)));
            let line = core::str::from_utf8(&line).unwrap();
            let (got, value) = crate::protocol::parse_info(line).unwrap();
            assert_eq!(got, *key);
            assert!(!value.is_empty() && value != info::NONE, "{line}");
            assert_eq!(info::position(key), Some(index), "{key} twice in the table");
        }
        let mut line = OutLine::new();
        assert!(!info_line(
            &view,
            1,
            0,
            info::KEYS.len(),
            &mut LineWriter(&mut line)
        ));
    }
}
