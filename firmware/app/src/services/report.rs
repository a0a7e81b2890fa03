//! The reports that read every service of the table: `NETSTAT` (every service's
//! sockets, then the closing pool's busy ones), `INFO` (the device's own
//! keys, then each service's) and `EVENTS`, formatted one at a time so that
//! a long reply can wait for buffer room.

use core::fmt::{self, Write};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::socket::udp;
use smoltcp::time::Instant;

use crate::app::App;
use crate::board::config::BootReason;
use crate::board::sizes::RAM;
use crate::phy::badlink::COUNTS;
use crate::pool::closing::ClosingPool;
use crate::pool::socket::{socket_addr, state_name};
use crate::services::service::{Declared, Inventory, Listed, Peers, Role, Transport, Values};
use crate::services::{concat, count};
use crate::status::counters::Counters;
use crate::status::events::Events;
use crate::status::view::View;
use crate::wire::protocol::{
    info, EventRow, Mac, NetstatRow, SockName, NO_STATE, TCP, UDP, VERSION,
};

/// The device's own `INFO` keys before the bad link's.
const DEVICE_INFO_BEFORE: &[&str] = &[
    info::BOARD,
    info::VERSION,
    info::MAC,
    info::IPV4,
    info::IPV6,
    info::IPV4_SOURCE,
    info::MTU,
    info::INTERFACES,
    info::INTERFACES_MAX,
    info::UPTIME_MS,
    info::SOCKETS,
    info::BUFFER_BYTES,
    info::FRAMES_RX,
    info::FRAMES_TX,
    info::CONN_ACCEPTED,
    info::CONN_REFUSED,
    info::CONN_TIMED_OUT,
    info::CONN_RESET,
    info::CONN_CLOSED,
    info::KEEP_ALIVE_MS,
    info::DEAD_PEER_MS,
    info::OFFLOAD,
    info::REASSEMBLY_BUFFER,
    info::REASSEMBLY_BUFFERS,
    info::FRAGMENTATION_BUFFER,
    info::EVENT_RING,
    info::EVENTS_NEXT,
    info::LAB_CLOSING,
    info::BULK_CLOSING,
    info::CLOSING_IN_USE,
    info::TIME_WAIT_RECYCLED,
    info::CLOSING_TIMEOUT_MS,
];

/// The device's own `INFO` keys after the bad link's.
const DEVICE_INFO_AFTER: &[&str] = &[
    info::BOOT_REASON,
    info::BOOT_COUNT,
    info::STACK_USED,
    info::STACK_RESERVED,
    info::WATCHDOG_MS,
    // The RAM budget: the pools that add up to `ram_total`, then the
    // application's part of the stack.
    info::RAM_LAB,
    info::RAM_BULK,
    info::RAM_IPERF3,
    info::RAM_IPERF2,
    info::RAM_HTTP,
    info::RAM_UDP,
    info::RAM_DAYTIME,
    info::RAM_CLOSING,
    info::RAM_DHCP,
    info::RAM_NIC,
    info::RAM_DMA,
    info::RAM_BAD_LINK,
    info::RAM_HANDLER_STACK,
    info::RAM_STACK,
    info::RAM_TOTAL,
    info::RAM_APP,
    info::RAM_EVENT_RING,
    info::RAM_FRAGMENT_BUFFERS,
];

const DEVICE_INFO_PARTS: [&[&str]; 4] = [
    DEVICE_INFO_BEFORE,
    &info::BADLINK_RX,
    &info::BADLINK_TX,
    DEVICE_INFO_AFTER,
];

/// The device's own `INFO` keys, before every service's.
pub(crate) const DEVICE_INFO_KEYS: &[&str] =
    &concat::<&str, { count(&DEVICE_INFO_PARTS) }>(&DEVICE_INFO_PARTS, "");

/// Everything the device-wide reports read, borrowed for one row.
pub(crate) struct Device<'r, 'a> {
    /// The time of this poll.
    pub now: Instant,
    /// The device as the poll found it.
    pub view: &'r View<'r>,
    /// The shared connection counters.
    pub counters: &'r Counters,
    /// The closing pool.
    pub closing: &'r ClosingPool<'a>,
    /// The other services.
    pub peers: Peers<'r, 'a>,
    /// What the service asking has.
    pub me: &'r dyn Inventory,
}

impl<'r, 'a> Device<'r, 'a> {
    /// What every service declares and has, in table order.
    pub fn services<'s>(
        &'s self,
    ) -> impl Iterator<Item = (&'static Declared, &'s dyn Inventory)> + use<'s, 'r, 'a> {
        self.peers.with(self.me)
    }

    /// The service that declares TCP port `port`, as `/api/sockets` and
    /// `/api/events` name it (`tcp` for none).
    pub fn service_name(&self, port: u16) -> &'static str {
        self.services()
            .flat_map(|(declared, _)| declared.ports.iter())
            .find(|p| p.port == port && p.transport == Transport::Tcp)
            .map_or("tcp", |p| p.service)
    }

    /// What `handle` is to the service that owns it.
    pub fn role(&self, handle: SocketHandle) -> Option<Role> {
        self.services()
            .find_map(|(_, service)| service.role(handle))
    }

    /// The sockets of the services, as `NETSTAT` lists them (the closing
    /// pool's not counted).
    pub fn service_sockets(&self) -> usize {
        self.services()
            .map(|(_, service)| {
                let sockets = service.sockets();
                sockets.tcp.len() + sockets.udp.len()
            })
            .sum()
    }

    /// The value of `INFO` key `key` (the device's or any service's).
    pub fn info_value(&self, key: &str, out: &mut dyn Write) -> fmt::Result {
        if DEVICE_INFO_KEYS.contains(&key) {
            return self.device_value(key, out);
        }
        for (declared, service) in self.services() {
            if let Some(index) = declared.info_keys.iter().position(|k| *k == key) {
                return service_value(service, self.view, index, out);
            }
        }
        out.write_str(info::NONE)
    }

    /// Formats `INFO` line number `index` (`key=value`); false past the last.
    pub fn info_line(&self, index: usize, out: &mut dyn Write) -> bool {
        if let Some(key) = DEVICE_INFO_KEYS.get(index) {
            return write!(out, "{key}=").is_ok() && self.device_value(key, out).is_ok();
        }
        let mut left = index - DEVICE_INFO_KEYS.len();
        for (declared, service) in self.services() {
            if let Some(key) = declared.info_keys.get(left) {
                return write!(out, "{key}=").is_ok()
                    && service_value(service, self.view, left, out).is_ok();
            }
            left -= declared.info_keys.len();
        }
        false
    }

    /// Formats row `next` of `NETSTAT`: every service's TCP places in table
    /// order, then every service's UDP places (a place without a socket is
    /// skipped), then the closing pool's busy sockets (a free one serves
    /// nobody and is not shown). Returns the position after it, or `None`
    /// when there is none left.
    pub fn netstat_row(
        &self,
        sockets: &SocketSet<'_>,
        next: usize,
        out: &mut dyn Write,
    ) -> Option<usize> {
        let mut position = next;
        let listed = loop {
            let mut base = 0;
            let mut found = None;
            'transports: for udp in [false, true] {
                for (_, service) in self.services() {
                    let all = service.sockets();
                    let places = if udp { all.udp } else { all.tcp };
                    if position < base + places.len() {
                        let socket = places.socket(position - base);
                        found =
                            Some(socket.map(|h| if udp { Listed::Udp(h) } else { Listed::Tcp(h) }));
                        break 'transports;
                    }
                    base += places.len();
                }
            }
            let candidate = match found {
                Some(candidate) => candidate,
                None => self
                    .closing
                    .busy_handle(position.max(base) - base)?
                    .map(Listed::Tcp),
            };
            position += 1;
            if let Some(listed) = candidate {
                break listed;
            }
        };
        let _ = write!(out, "{}", row(sockets, listed));
        Some(position)
    }

    fn device_value(&self, key: &str, out: &mut dyn Write) -> fmt::Result {
        let view = self.view;
        let c = self.counters;
        let t = &view.config.timeouts;
        let first = &view.nets[0];
        let status = &view.config.status;
        match key {
            info::BOARD => write!(out, "{}", view.config.board),
            info::VERSION => write!(out, "{VERSION}"),
            info::MAC => write!(out, "{}", Mac(first.mac)),
            info::IPV4 => optional(out, first.ipv4),
            info::IPV6 => write!(out, "{}", first.ipv6),
            info::IPV4_SOURCE => write!(out, "{}", first.ipv4_source),
            info::MTU => write!(out, "{}", first.mtu),
            info::INTERFACES => write!(out, "{}", view.nets.len()),
            info::INTERFACES_MAX => write!(out, "{}", view.config.max_nets),
            info::UPTIME_MS => write!(out, "{}", view.uptime(self.now).total_millis()),
            info::SOCKETS => write!(out, "{}", self.service_sockets()),
            info::BUFFER_BYTES => write!(out, "{}", view.buffer_bytes),
            info::FRAMES_RX => write!(out, "{}", c.frames_rx),
            info::FRAMES_TX => write!(out, "{}", c.frames_tx),
            info::CONN_ACCEPTED => write!(out, "{}", c.accepted),
            info::CONN_REFUSED => write!(out, "{}", c.refused),
            info::CONN_TIMED_OUT => write!(out, "{}", c.timed_out),
            info::CONN_RESET => write!(out, "{}", c.reset),
            info::CONN_CLOSED => write!(out, "{}", c.closed),
            info::KEEP_ALIVE_MS => write!(out, "{}", t.keep_alive_ms),
            info::DEAD_PEER_MS => write!(out, "{}", t.dead_peer_ms),
            info::OFFLOAD => write!(out, "{}", view.config.offload),
            info::REASSEMBLY_BUFFER => write!(out, "{}", smoltcp::config::REASSEMBLY_BUFFER_SIZE),
            info::REASSEMBLY_BUFFERS => {
                write!(out, "{}", smoltcp::config::REASSEMBLY_BUFFER_COUNT)
            }
            info::FRAGMENTATION_BUFFER => {
                write!(out, "{}", smoltcp::config::FRAGMENTATION_BUFFER_SIZE)
            }
            info::EVENT_RING => write!(out, "{}", crate::status::events::EVENT_RING_LEN),
            info::EVENTS_NEXT => write!(out, "{}", view.events.next_seq()),
            info::LAB_CLOSING => write!(out, "{}", self.closing.sizes().lab),
            info::BULK_CLOSING => write!(out, "{}", self.closing.sizes().bulk),
            info::CLOSING_IN_USE => {
                let (lab, bulk) = self.closing.in_use();
                write!(out, "{}", lab + bulk)
            }
            info::TIME_WAIT_RECYCLED => write!(out, "{}", c.time_wait_recycled),
            info::CLOSING_TIMEOUT_MS => write!(out, "{}", t.closing_ms),
            info::BADLINK_RX_FRAMES => write!(out, "{}", COUNTS.rx.load().frames),
            info::BADLINK_RX_DROPPED => write!(out, "{}", COUNTS.rx.load().dropped),
            info::BADLINK_RX_CORRUPTED => write!(out, "{}", COUNTS.rx.load().corrupted),
            info::BADLINK_RX_DUPLICATED => write!(out, "{}", COUNTS.rx.load().duplicated),
            info::BADLINK_RX_REORDERED => write!(out, "{}", COUNTS.rx.load().reordered),
            info::BADLINK_RX_DELAYED => write!(out, "{}", COUNTS.rx.load().delayed),
            info::BADLINK_RX_HELD_FULL => write!(out, "{}", COUNTS.rx.load().held_full),
            info::BADLINK_TX_FRAMES => write!(out, "{}", COUNTS.tx.load().frames),
            info::BADLINK_TX_DROPPED => write!(out, "{}", COUNTS.tx.load().dropped),
            info::BADLINK_TX_CORRUPTED => write!(out, "{}", COUNTS.tx.load().corrupted),
            info::BADLINK_TX_DUPLICATED => write!(out, "{}", COUNTS.tx.load().duplicated),
            info::BADLINK_TX_REORDERED => write!(out, "{}", COUNTS.tx.load().reordered),
            info::BADLINK_TX_DELAYED => write!(out, "{}", COUNTS.tx.load().delayed),
            info::BADLINK_TX_HELD_FULL => write!(out, "{}", COUNTS.tx.load().held_full),
            info::BOOT_REASON => optional(out, status.boot_reason.map(BootReason::name)),
            info::BOOT_COUNT => optional(out, status.boot_count),
            info::STACK_USED => optional(out, status.stack_used.map(|meter| (meter.0)())),
            info::STACK_RESERVED => optional(out, status.stack_reserved),
            info::WATCHDOG_MS => optional(out, status.watchdog_ms),
            info::RAM_TOTAL => optional(out, RAM.pools().map(|p| p.iter().sum::<usize>())),
            info::RAM_APP => write!(out, "{}", core::mem::size_of::<App<'static>>()),
            info::RAM_EVENT_RING => write!(out, "{}", core::mem::size_of::<Events>()),
            info::RAM_FRAGMENT_BUFFERS => write!(
                out,
                "{}",
                smoltcp::config::REASSEMBLY_BUFFER_SIZE * smoltcp::config::REASSEMBLY_BUFFER_COUNT
                    + smoltcp::config::FRAGMENTATION_BUFFER_SIZE
            ),
            _ => match info::RAM_POOLS.iter().position(|pool| *pool == key) {
                Some(i) => optional(out, RAM.pools().map(|p| p[i])),
                None => write!(out, "{}", info::NONE),
            },
        }
    }
}

/// Formats `IFCONFIG` row `index` (interface `index`); false past the last.
pub(crate) fn iface_row(view: &View<'_>, index: usize, out: &mut dyn Write) -> bool {
    view.nets
        .get(index)
        .is_some_and(|row| write!(out, "{row}").is_ok())
}

/// Writes `value`, or `none` for a value the board does not give.
fn optional(out: &mut dyn Write, value: Option<impl fmt::Display>) -> fmt::Result {
    match value {
        Some(value) => write!(out, "{value}"),
        None => out.write_str(info::NONE),
    }
}

/// Writes value number `index` of `service`'s `INFO` values.
fn service_value(
    service: &dyn Inventory,
    view: &View<'_>,
    index: usize,
    out: &mut dyn Write,
) -> fmt::Result {
    let mut values = Values::new();
    service.info(view, &mut values);
    match values.get(index) {
        Some(value) => write!(out, "{value}"),
        None => out.write_str(info::NONE),
    }
}

/// A socket's `NETSTAT` row.
fn row(sockets: &SocketSet<'_>, listed: Listed) -> NetstatRow<'static> {
    let handle = match listed {
        Listed::Udp(handle) => {
            let socket = sockets.get::<udp::Socket>(handle);
            return NetstatRow {
                proto: UDP,
                local: SockName::Any(Some(socket.endpoint().port).filter(|p| *p != 0)),
                remote: SockName::Any(None),
                state: NO_STATE,
                rx_queued: socket.recv_queue(),
                tx_queued: socket.send_queue(),
            };
        }
        Listed::Tcp(handle) => handle,
    };
    let tcp = sockets.get::<tcp::Socket>(handle);
    let state = tcp.state();
    match (state, tcp.local_endpoint(), tcp.remote_endpoint()) {
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
    }
}

/// Formats the first kept event with a sequence number at or after `next`;
/// returns the sequence number after it, or `None` when there is none left.
pub(crate) fn event_row(view: &View<'_>, next: u64, out: &mut dyn Write) -> Option<u64> {
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
