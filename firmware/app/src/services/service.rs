//! The contract between the application and each service: one poll shape,
//! the ports it declares, its `NETSTAT` rows, its `INFO` values and how its
//! sockets are made.

use core::fmt;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};

use crate::board::config::Timeouts;
use crate::pool::closing::ClosingPool;
use crate::status::counters::Counters;
use crate::status::view::View;

use crate::pool::socket::listen;

/// The transport of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP listening port.
    Tcp,
    /// A bound UDP port.
    Udp,
}

impl Transport {
    /// `tcp` or `udp`, as NETSTAT and `ss` write it.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// One listening port of the device and the service behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// The service's name, as `/api/sockets`, `/api/events` and `socklab
    /// top` show it.
    pub service: &'static str,
    /// TCP or UDP.
    pub transport: Transport,
    /// The port number.
    pub port: u16,
}

impl ServicePort {
    /// A TCP port of `service`.
    pub const fn tcp(service: &'static str, port: u16) -> Self {
        ServicePort {
            service,
            transport: Transport::Tcp,
            port,
        }
    }

    /// A UDP port of `service`.
    pub const fn udp(service: &'static str, port: u16) -> Self {
        ServicePort {
            service,
            transport: Transport::Udp,
            port,
        }
    }
}

/// What a service is polled with: the time, the sockets, the read-only
/// view of the device, the shared connection counters, the closing pool and
/// the other services (read-only).
pub(crate) struct Context<'c, 'a> {
    /// The time of this poll.
    pub now: Instant,
    /// Every socket of the device.
    pub sockets: &'c mut SocketSet<'a>,
    /// The device as the poll found it.
    pub view: &'c View<'c>,
    /// The connection counters every service adds to.
    pub counters: &'c mut Counters,
    /// Where a closing connection finishes while its socket listens again.
    pub closing: &'c mut ClosingPool<'a>,
    /// The other services, for the reports that list the whole device.
    pub peers: Peers<'c, 'a>,
    /// A TCP reset reached one of the service's ports since its last poll:
    /// a listening socket may hold the timers of a handshake the peer reset.
    pub reset: bool,
}

/// The services of the table other than the one being polled, in table
/// order, with a hole where that one stands, and what each declares.
#[derive(Clone, Copy)]
pub(crate) struct Peers<'p, 'a> {
    declared: &'static [&'static Declared],
    before: &'p [&'p mut (dyn Service + 'a)],
    after: &'p [&'p mut (dyn Service + 'a)],
}

impl<'p, 'a> Peers<'p, 'a> {
    /// The services before and after the polled one; `declared`: what
    /// every service of the table declares, in table order.
    pub fn new(
        declared: &'static [&'static Declared],
        before: &'p [&'p mut (dyn Service + 'a)],
        after: &'p [&'p mut (dyn Service + 'a)],
    ) -> Self {
        Peers {
            declared,
            before,
            after,
        }
    }

    /// What every service declares and has, in table order, `me` in its
    /// own place.
    pub fn with<'s>(
        &'s self,
        me: &'s dyn Inventory,
    ) -> impl Iterator<Item = (&'static Declared, &'s dyn Inventory)> + use<'s, 'p, 'a> {
        let before = self.before.iter().map(|s| s.inventory());
        let after = self.after.iter().map(|s| s.inventory());
        let all = before.chain(core::iter::once(me)).chain(after);
        self.declared.iter().copied().zip(all)
    }
}

/// A socket as `NETSTAT` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listed {
    /// A TCP socket.
    Tcp(SocketHandle),
    /// A UDP socket.
    Udp(SocketHandle),
}

/// What a TCP socket does for its service, as `/api/sockets` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    /// `slot`, `mgmt`, `backlog`, `http`, ...
    pub name: &'static str,
    /// Its place among the service's sockets.
    pub slot: Option<usize>,
    /// Its client's place in a queue (1 is served next).
    pub position: Option<usize>,
}

/// What a service declares, fixed when it is written: its ports and its
/// `INFO` keys (the service table lists every service's).
#[derive(Debug)]
pub struct Declared {
    /// The ports it listens on (its entries of [`super::PORTS`]).
    pub ports: &'static [ServicePort],
    /// Its `INFO` keys, in the order `INFO` lists them.
    pub info_keys: &'static [&'static str],
}

/// Most `INFO` values one service reports.
pub(crate) const MAX_INFO_VALUES: usize = 16;

/// One `INFO` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// A number: a size, a count, a timeout in ms.
    Count(u64),
    /// A word.
    Text(&'static str),
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Count(n as u64)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Count(n)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Text(text) => f.write_str(text),
        }
    }
}

/// A service's `INFO` values, in the order of its keys.
pub(crate) type Values = heapless::Vec<Value, MAX_INFO_VALUES>;

/// A service's `NETSTAT` places, in order; a place may have no socket.
pub(crate) trait Places {
    /// How many places.
    fn len(&self) -> usize;
    /// The socket of place `index`.
    fn socket(&self, index: usize) -> Option<SocketHandle>;
}

/// A record a service keeps per socket, and the socket it is for.
pub(crate) trait HoldsSocket {
    /// Its socket, if it has one.
    fn held(&self) -> Option<SocketHandle>;
}

impl HoldsSocket for SocketHandle {
    fn held(&self) -> Option<SocketHandle> {
        Some(*self)
    }
}

impl<T: HoldsSocket, const N: usize> Places for heapless::Vec<T, N> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn socket(&self, index: usize) -> Option<SocketHandle> {
        self.get(index)?.held()
    }
}

impl<T: HoldsSocket, const N: usize> Places for [T; N] {
    fn len(&self) -> usize {
        N
    }
    fn socket(&self, index: usize) -> Option<SocketHandle> {
        self.get(index)?.held()
    }
}

impl<T: HoldsSocket> Places for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn socket(&self, index: usize) -> Option<SocketHandle> {
        self.get(index)?.held()
    }
}

/// No sockets of a transport.
const NONE: [SocketHandle; 0] = [];

/// A service's sockets as `NETSTAT` lists them: its TCP places, its UDP
/// places.
pub(crate) struct Sockets<'s> {
    /// TCP places.
    pub tcp: &'s dyn Places,
    /// UDP places.
    pub udp: &'s dyn Places,
}

impl<'s> Sockets<'s> {
    /// TCP sockets only.
    pub fn tcp(tcp: &'s dyn Places) -> Self {
        Sockets { tcp, udp: &NONE }
    }

    /// UDP sockets only.
    pub fn udp(udp: &'s dyn Places) -> Self {
        Sockets { tcp: &NONE, udp }
    }
}

/// What a service has now, read-only: its sockets, its `INFO` values and
/// the roles of its sockets. The reports that list the whole device read
/// every service through this.
pub(crate) trait Inventory {
    /// Its sockets, in `NETSTAT` order.
    fn sockets(&self) -> Sockets<'_>;

    /// Pushes its `INFO` values, one per key it declares, in that order.
    fn info(&self, view: &View<'_>, values: &mut Values);

    /// What `handle` is to it, if it is one of its sockets with a role
    /// worth showing.
    fn role(&self, _handle: SocketHandle) -> Option<Role> {
        None
    }
}

/// One service of the device. The application polls every service of its
/// table in table order; a service that is not [`Service::every_poll`] runs
/// only when a TCP segment came for one of its ports, one of its sockets
/// changed state ([`Service::changed`]), the deadline its last poll
/// returned is due, or the device woke up without traffic.
pub(crate) trait Service {
    /// What it has, for the reports and for waking it.
    fn inventory(&self) -> &dyn Inventory;

    /// True if it runs on every poll (a few sockets, or streams that keep
    /// their buffers full); false if it waits to be woken.
    fn every_poll(&self) -> bool {
        true
    }

    /// True if one of its sockets changed state without the service having
    /// seen it (a stack timer fired): a cheap look, before a full poll.
    fn changed(&self, _sockets: &SocketSet<'_>) -> bool {
        false
    }

    /// Serves its sockets once; returns when it next needs a look even if
    /// nothing arrives.
    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant>;
}

/// Hands out the sockets a service is built with: cuts their buffers from
/// the board's byte area and their UDP metadata from its entries, and adds
/// them to the socket set.
pub(crate) struct SocketFactory<'f, 'a> {
    /// The socket set the sockets go into.
    pub sockets: &'f mut SocketSet<'a>,
    /// What is left of the byte area.
    pub buffers: &'a mut [u8],
    /// What is left of the UDP metadata entries.
    pub udp_meta: &'a mut [udp::PacketMetadata],
    /// Keep-alive and dead-peer timeouts of every TCP socket.
    pub timeouts: Timeouts,
}

impl<'a> SocketFactory<'_, 'a> {
    /// The next `len` bytes of the area.
    pub fn take(&mut self, len: usize) -> &'a mut [u8] {
        let (head, tail) = core::mem::take(&mut self.buffers).split_at_mut(len);
        self.buffers = tail;
        head
    }

    /// A closed TCP socket with `rx`/`tx` bytes of buffer, keep-alive and a
    /// dead-peer timeout (so that a vanished client frees it), no Nagle.
    pub fn tcp_socket(&mut self, rx: usize, tx: usize) -> tcp::Socket<'a> {
        let rx = tcp::SocketBuffer::new(self.take(rx));
        let tx = tcp::SocketBuffer::new(self.take(tx));
        let mut socket = tcp::Socket::new(rx, tx);
        socket.set_keep_alive(Some(Duration::from_millis(self.timeouts.keep_alive_ms)));
        socket.set_timeout(Some(Duration::from_millis(self.timeouts.dead_peer_ms)));
        socket.set_nagle_enabled(false);
        socket
    }

    /// A TCP socket listening on `port` that acknowledges at once, added to
    /// the set.
    pub fn listener(&mut self, rx: usize, tx: usize, port: u16) -> SocketHandle {
        let mut socket = self.tcp_socket(rx, tx);
        listen(&mut socket, port);
        socket.set_ack_delay(None);
        self.sockets.add(socket)
    }

    /// A UDP socket bound to `port` with `rx`/`tx` bytes and `packets`
    /// datagrams each way, added to the set.
    pub fn udp(&mut self, rx: usize, tx: usize, packets: usize, port: u16) -> SocketHandle {
        let meta = core::mem::take(&mut self.udp_meta);
        let (rx_meta, rest) = meta.split_at_mut(packets.min(meta.len()));
        let (tx_meta, rest) = rest.split_at_mut(packets.min(rest.len()));
        self.udp_meta = rest;
        let rx = udp::PacketBuffer::new(rx_meta, self.take(rx));
        let tx = udp::PacketBuffer::new(tx_meta, self.take(tx));
        let mut socket = udp::Socket::new(rx, tx);
        // Port non-zero and the socket fresh: binding cannot fail.
        let _ = socket.bind(port);
        self.sockets.add(socket)
    }
}

/// Sockets and buffer bytes of a service whose size is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// TCP sockets.
    pub tcp_sockets: usize,
    /// UDP sockets.
    pub udp_sockets: usize,
    /// UDP datagram metadata entries (both directions of every UDP socket).
    pub udp_packets: usize,
    /// Socket buffer bytes.
    pub buffer_bytes: usize,
}

impl Footprint {
    /// The footprints of `parts` added up.
    pub const fn sum(parts: &[Footprint]) -> Footprint {
        let mut sum = Footprint {
            tcp_sockets: 0,
            udp_sockets: 0,
            udp_packets: 0,
            buffer_bytes: 0,
        };
        let mut i = 0;
        while i < parts.len() {
            sum.tcp_sockets += parts[i].tcp_sockets;
            sum.udp_sockets += parts[i].udp_sockets;
            sum.udp_packets += parts[i].udp_packets;
            sum.buffer_bytes += parts[i].buffer_bytes;
            i += 1;
        }
        sum
    }
}
