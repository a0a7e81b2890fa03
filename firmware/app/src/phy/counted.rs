//! Device middleware that counts frames, bytes and connection refusals on their
//! way between smoltcp and one of the board's devices, and records the destination
//! ports of the TCP segments it passes in (which service they concern is the
//! application's business, not this layer's).

use core::cell::Cell;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet,
    TcpPacket, TcpSeqNumber,
};

/// Distinct TCP destination ports remembered between two looks; a segment
/// for one more port marks every port as seen.
pub(crate) const SEEN_PORTS: usize = 8;

/// A small set of ports, overflowing to "all".
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PortSet {
    ports: [u16; SEEN_PORTS],
    len: usize,
    overflow: bool,
}

impl PortSet {
    /// Adds every port of `other`.
    fn merge(&mut self, other: &PortSet) {
        if other.overflow {
            self.overflow = true;
        }
        for port in &other.ports[..other.len] {
            self.insert(*port);
        }
    }

    fn insert(&mut self, port: u16) {
        if self.overflow || self.ports[..self.len].contains(&port) {
            return;
        }
        match self.ports.get_mut(self.len) {
            Some(free) => {
                *free = port;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    /// True if `port` is in the set (every port is, once it overflowed).
    pub fn contains(&self, port: u16) -> bool {
        self.overflow || self.ports[..self.len].contains(&port)
    }

    /// True if no port is in the set.
    pub fn is_empty(&self) -> bool {
        !self.overflow && self.len == 0
    }
}

/// The TCP segments received since the last look: the ports they were for,
/// and the ports resets came for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TcpSeen {
    /// Destination ports of every TCP segment.
    pub ports: PortSet,
    /// Destination ports of the segments with RST.
    pub resets: PortSet,
}

impl TcpSeen {
    /// Adds what another interface saw.
    pub fn merge(&mut self, other: TcpSeen) {
        self.ports.merge(&other.ports);
        self.resets.merge(&other.resets);
    }
}

/// Counters the device middleware updates from inside smoltcp's tokens,
/// which only borrow them shared: one set per network interface.
#[derive(Debug, Default)]
pub(crate) struct FrameCounters {
    /// The interface's own Ethernet address: a unicast frame for another is dropped.
    pub mac: EthernetAddress,
    /// Frames received.
    pub rx: Cell<u64>,
    /// Bytes received, Ethernet headers included.
    pub rx_bytes: Cell<u64>,
    /// Frames received for another unicast Ethernet address: the stack drops them.
    pub rx_dropped: Cell<u64>,
    /// Frames sent.
    pub tx: Cell<u64>,
    /// Bytes sent, Ethernet headers included.
    pub tx_bytes: Cell<u64>,
    /// Frames the stack had to send when the device had no transmit buffer free:
    /// they wait in their sockets for the next poll.
    pub tx_dropped: Cell<u64>,
    /// SYNs answered with RST by the interface (no socket took them).
    pub refused: Cell<u64>,
    seen: Cell<TcpSeen>,
}

impl FrameCounters {
    /// Zero counters for the interface with Ethernet address `mac`.
    pub fn new(mac: EthernetAddress) -> Self {
        FrameCounters {
            mac,
            ..FrameCounters::default()
        }
    }

    /// What TCP segments came since the last call.
    pub fn take_seen(&self) -> TcpSeen {
        self.seen.take()
    }

    /// True if a TCP reset came since the last [`FrameCounters::take_seen`].
    pub fn reset_seen(&self) -> bool {
        !self.seen.get().resets.is_empty()
    }

    fn bump(cell: &Cell<u64>) {
        FrameCounters::add(cell, 1);
    }

    fn add(cell: &Cell<u64>, n: usize) {
        cell.set(cell.get().wrapping_add(n as u64));
    }

    fn record(&self, port: u16, reset: bool) {
        let mut seen = self.seen.get();
        seen.ports.insert(port);
        if reset {
            seen.resets.insert(port);
        }
        self.seen.set(seen);
    }
}

/// Wraps the board's device for one poll.
pub(crate) struct Counted<'d, D: ?Sized> {
    pub inner: &'d mut D,
    pub counters: &'d FrameCounters,
}

pub(crate) struct CountedRx<'d, T> {
    token: T,
    counters: &'d FrameCounters,
}

pub(crate) struct CountedTx<'d, T> {
    token: T,
    counters: &'d FrameCounters,
}

impl<D: Device + ?Sized> Device for Counted<'_, D> {
    type RxToken<'a>
        = CountedRx<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = CountedTx<'a, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let counters = self.counters;
        self.inner.receive(timestamp).map(|(rx, tx)| {
            (
                CountedRx {
                    token: rx,
                    counters,
                },
                CountedTx {
                    token: tx,
                    counters,
                },
            )
        })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let counters = self.counters;
        let token = self.inner.transmit(timestamp);
        if token.is_none() {
            FrameCounters::bump(&counters.tx_dropped);
        }
        token.map(|token| CountedTx { token, counters })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: RxToken> RxToken for CountedRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let counters = self.counters;
        FrameCounters::bump(&counters.rx);
        self.token.consume(|frame| {
            FrameCounters::add(&counters.rx_bytes, frame.len());
            if frame.len() >= 6 && frame[0] & 1 == 0 && frame[..6] != counters.mac.0 {
                FrameCounters::bump(&counters.rx_dropped);
            }
            if let Some(tcp) = tcp_of(frame) {
                counters.record(tcp.dst_port(), tcp.rst());
            }
            f(frame)
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.token.meta()
    }
}

impl<T: TxToken> TxToken for CountedTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let counters = self.counters;
        FrameCounters::bump(&counters.tx);
        FrameCounters::add(&counters.tx_bytes, len);
        self.token.consume(len, |frame| {
            let result = f(frame);
            if is_refusal(frame) {
                FrameCounters::bump(&counters.refused);
            }
            result
        })
    }

    fn set_meta(&mut self, meta: smoltcp::phy::PacketMeta) {
        self.token.set_meta(meta)
    }
}

/// The TCP segment of an Ethernet frame, if it carries one (unchecked
/// checksums: this only looks at ports and flags).
fn tcp_of(frame: &[u8]) -> Option<TcpPacket<&[u8]>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let tcp_bytes = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            (ip.next_header() == IpProtocol::Tcp).then(|| ip.payload())?
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            (ip.next_header() == IpProtocol::Tcp).then(|| ip.payload())?
        }
        _ => return None,
    };
    TcpPacket::new_checked(tcp_bytes).ok()
}

/// Is this frame smoltcp's answer to a SYN that no socket took? That answer,
/// and only that one, is an RST|ACK with sequence number 0 (RFC 793's reset
/// generation for a segment without ACK); a socket's own abort carries its
/// current, random-based sequence number.
fn is_refusal(frame: &[u8]) -> bool {
    tcp_of(frame).is_some_and(|tcp| tcp.rst() && tcp.ack() && tcp.seq_number() == TcpSeqNumber(0))
}
