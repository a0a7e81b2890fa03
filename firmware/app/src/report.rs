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
use crate::http;
use crate::iperf2::IPERF2_TX_BUFFER;
use crate::iperf3::{IPERF3_MAX_PARAMS, IPERF3_TIMEOUT_MS};
use crate::lab::{socket_addr, LabSlot, LineWriter};
use crate::pool::Pool;
use crate::protocol::{info, EventRow, NetstatRow, SockName, NO_STATE, TCP, UDP, VERSION};
use crate::storage::Sizes;
use crate::udp::{UDP_CHARGEN_MAX, UDP_PACKETS, UDP_RX_BUFFER, UDP_SOCKETS, UDP_TX_BUFFER};

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
    lab: &[LabSlot],
    (bulk, (others, udp_handles), pool): (&Bulk, Others<'_>, &Pool<'_>),
    next: usize,
    out: &mut LineWriter<'_>,
) -> Option<usize> {
    let mut position = next;
    let after_bulk = lab.len() + bulk.len();
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
        let candidate = if position < lab.len() {
            lab[position].socket()
        } else if position < after_bulk {
            Some(bulk.handle(position - lab.len()))
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

/// RFC 793's name of a TCP state, as `NETSTAT` prints it.
pub(crate) fn state_name(state: State) -> &'static str {
    match state {
        State::Closed => "CLOSED",
        State::Listen => "LISTEN",
        State::SynSent => "SYN-SENT",
        State::SynReceived => "SYN-RECEIVED",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN-WAIT-1",
        State::FinWait2 => "FIN-WAIT-2",
        State::CloseWait => "CLOSE-WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST-ACK",
        State::TimeWait => "TIME-WAIT",
    }
}

/// Formats `INFO` line number `index`; false past the last one.
pub(crate) fn info_line(
    view: &View<'_>,
    lab_in_use: usize,
    lab_queued: usize,
    index: usize,
    out: &mut LineWriter<'_>,
) -> bool {
    let s = &view.sizes;
    let c = &view.counters;
    let t = &view.config.timeouts;
    let written = match index {
        0 => write!(out, "{}={}", info::BOARD, view.config.board),
        1 => write!(out, "{}={}", info::VERSION, VERSION),
        2 => {
            let m = view.mac.0;
            write!(
                out,
                "{}={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                info::MAC,
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            )
        }
        3 => match view.ipv4 {
            Some(cidr) => write!(out, "{}={}", info::IPV4, cidr),
            None => write!(out, "{}=none", info::IPV4),
        },
        4 => write!(out, "{}={}", info::IPV6, view.ipv6),
        5 => write!(out, "{}={}", info::IPV4_SOURCE, view.ipv4_source),
        6 => write!(out, "{}={}", info::MTU, view.mtu),
        7 => write!(out, "{}={}", info::UPTIME_MS, view.uptime_ms),
        8 => write!(out, "{}={}", info::LAB_SLOTS, s.lab_slots),
        9 => write!(out, "{}={}", info::LAB_IN_USE, lab_in_use),
        28 => write!(out, "{}={}", info::LAB_BACKLOG, s.lab_backlog),
        29 => write!(out, "{}={}", info::LAB_QUEUED, lab_queued),
        30 => write!(
            out,
            "{}={}",
            info::BACKLOG_POLICY,
            view.config.backlog.name()
        ),
        31 => write!(out, "{}={}", info::CONN_BUSY, c.busy),
        32 => write!(out, "{}={}", info::CLOSING_TIMEOUT_MS, t.closing_ms),
        33 => write!(out, "{}={}", info::KEEP_ALIVE_MS, t.keep_alive_ms),
        34 => write!(out, "{}={}", info::DEAD_PEER_MS, t.dead_peer_ms),
        35 => write!(out, "{}={}", info::OFFLOAD, view.config.offload),
        49 => write!(out, "{}={}", info::LAB_CLOSING, s.lab_closing),
        50 => write!(out, "{}={}", info::BULK_CLOSING, s.bulk_closing),
        51 => write!(
            out,
            "{}={}",
            info::CLOSING_IN_USE,
            view.closing_in_use.0 + view.closing_in_use.1
        ),
        52 => write!(out, "{}={}", info::TIME_WAIT_RECYCLED, c.time_wait_recycled),
        53 => write!(
            out,
            "{}={}",
            info::REASSEMBLY_BUFFER,
            smoltcp::config::REASSEMBLY_BUFFER_SIZE
        ),
        54 => write!(
            out,
            "{}={}",
            info::REASSEMBLY_BUFFERS,
            smoltcp::config::REASSEMBLY_BUFFER_COUNT
        ),
        55 => write!(
            out,
            "{}={}",
            info::FRAGMENTATION_BUFFER,
            smoltcp::config::FRAGMENTATION_BUFFER_SIZE
        ),
        56 => write!(out, "{}={}", info::HTTP_SOCKETS, http::HTTP_SOCKETS),
        57 => write!(out, "{}={}", info::HTTP_RX_BUFFER, http::HTTP_RX_BUFFER),
        58 => write!(out, "{}={}", info::HTTP_TX_BUFFER, http::HTTP_TX_BUFFER),
        59 => write!(out, "{}={}", info::HTTP_MAX_HEAD, http::MAX_REQUEST_HEAD),
        60 => write!(
            out,
            "{}={}",
            info::HTTP_REQUEST_TIMEOUT_MS,
            t.http_request_ms
        ),
        61 => write!(out, "{}={}", info::HTTP_IDLE_TIMEOUT_MS, t.http_idle_ms),
        62 => write!(
            out,
            "{}={}",
            info::EVENT_RING,
            crate::events::EVENT_RING_LEN
        ),
        63 => write!(out, "{}={}", info::EVENTS_NEXT, view.events.next_seq()),
        64 => write!(out, "{}={}", info::HTTP_REQUESTS, view.http_requests),
        65 => write!(out, "{}={}", info::UDP_SOCKETS, UDP_SOCKETS),
        66 => write!(out, "{}={}", info::UDP_RX_BUFFER, UDP_RX_BUFFER),
        67 => write!(out, "{}={}", info::UDP_TX_BUFFER, UDP_TX_BUFFER),
        68 => write!(out, "{}={}", info::UDP_PACKETS, UDP_PACKETS),
        69 => write!(out, "{}={}", info::UDP_CHARGEN_MAX, UDP_CHARGEN_MAX),
        10 => write!(out, "{}={}", info::LAB_RX_BUFFER, s.lab_rx),
        11 => write!(out, "{}={}", info::LAB_TX_BUFFER, s.lab_tx),
        12 => write!(out, "{}={}", info::BULK_SLOTS, s.bulk_slots),
        13 => write!(out, "{}={}", info::BULK_RX_BUFFER, s.bulk_rx),
        14 => write!(out, "{}={}", info::BULK_TX_BUFFER, s.bulk_tx),
        15 => write!(
            out,
            "{}={}",
            info::SOCKETS,
            s.tcp_sockets() - s.closing_sockets() + UDP_SOCKETS
        ),
        16 => write!(out, "{}={}", info::BUFFER_BYTES, s.buffer_bytes()),
        17 => write!(out, "{}={}", info::IDLE_TIMEOUT_MS, t.idle_ms),
        18 => write!(out, "{}={}", info::SLOW_READER_TIMEOUT_MS, t.slow_reader_ms),
        19 => write!(out, "{}={}", info::HANDSHAKE_TIMEOUT_MS, t.handshake_ms),
        20 => write!(out, "{}={}", info::FRAMES_RX, c.frames_rx),
        21 => write!(out, "{}={}", info::FRAMES_TX, c.frames_tx),
        22 => write!(out, "{}={}", info::CONN_ACCEPTED, c.accepted),
        23 => write!(out, "{}={}", info::CONN_REFUSED, c.refused),
        24 => write!(out, "{}={}", info::CONN_TIMED_OUT, c.timed_out),
        25 => write!(out, "{}={}", info::CONN_RESET, c.reset),
        26 => write!(out, "{}={}", info::CONN_CLOSED, c.closed),
        27 => write!(out, "{}={}", info::LINES_TOO_LONG, c.lines_too_long),
        36 => write!(out, "{}={}", info::IPERF3_SOCKETS, s.iperf3_sockets),
        37 => write!(
            out,
            "{}={}",
            info::IPERF3_MAX_STREAMS,
            s.iperf3_max_streams()
        ),
        38 => write!(out, "{}={}", info::IPERF3_RX_BUFFER, s.iperf3_rx),
        39 => write!(out, "{}={}", info::IPERF3_TX_BUFFER, s.iperf3_tx),
        40 => write!(out, "{}={}", info::IPERF3_MAX_PARAMS, IPERF3_MAX_PARAMS),
        41 => write!(out, "{}={}", info::IPERF3_TIMEOUT_MS, IPERF3_TIMEOUT_MS),
        42 => write!(out, "{}={}", info::IPERF3_TESTS, c.iperf3_tests),
        43 => write!(out, "{}={}", info::IPERF3_FAILED, c.iperf3_failed),
        44 => write!(out, "{}={}", info::IPERF3_BUSY, c.iperf3_busy),
        45 => write!(out, "{}={}", info::IPERF2_SOCKETS, s.iperf2_sockets),
        46 => write!(out, "{}={}", info::IPERF2_RX_BUFFER, s.iperf2_rx),
        47 => write!(out, "{}={}", info::IPERF2_TX_BUFFER, IPERF2_TX_BUFFER),
        48 => write!(out, "{}={}", info::IPERF2_TESTS, c.iperf2_tests),
        _ => return false,
    };
    written.is_ok()
}
