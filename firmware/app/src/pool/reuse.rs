//! A new connection on the four-tuple of one in TIME-WAIT: its SYN ends that
//! TIME-WAIT and reaches a listening socket, as Linux accepts such a SYN
//! (RFC 6191) instead of keeping the client out for TIME-WAIT's 10 s.
//!
//! smoltcp gives a segment to the first socket in its set that accepts it,
//! and a closing-pool socket in TIME-WAIT accepts every segment of its
//! four-tuple; the pool's sockets change places with the services' ones, so
//! such a socket often comes before every listener. A client connecting again
//! from the same port got only challenge ACKs from it (each restarting
//! TIME-WAIT), and its connect timed out. [`Guard`] stands between the
//! device and smoltcp while frames come in: it holds back a SYN (without ACK)
//! whose four-tuple is a TIME-WAIT socket's whose last ACK has left, hands
//! smoltcp an empty frame instead (which it skips), and lets the pool free
//! that socket; the held SYN is then the next frame smoltcp reads.
//!
//! The device keeps no sequence numbers of a closed connection, so it cannot
//! check, as RFC 6191 asks, that the SYN starts above the old connection's;
//! an old duplicate SYN is what it gives up, on links that reorder SYNs by
//! more than a connection's lifetime.

use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet,
    TcpPacket,
};

use crate::pool::closing::ClosingSocket;

/// The longest SYN frame held back: an Ethernet header, an IPv6 header and a
/// TCP header with every option (14 + 40 + 60 bytes). A longer SYN (one that
/// carries data) passes as it is.
pub(crate) const HELD_FRAME: usize = 128;

/// Where the held SYN is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldState {
    /// Nothing held.
    Empty,
    /// Held for the TIME-WAIT socket of closing-pool entry `.0`, which the
    /// pool frees before the next frame.
    Waiting(usize),
    /// Its TIME-WAIT socket is free: the next frame smoltcp reads.
    Ready,
}

/// The SYN held back, at most one at a time.
#[derive(Debug)]
pub(crate) struct Held {
    frame: [u8; HELD_FRAME],
    len: usize,
    pub state: HeldState,
}

impl Held {
    /// Nothing held.
    pub const EMPTY: Held = Held {
        frame: [0; HELD_FRAME],
        len: 0,
        state: HeldState::Empty,
    };
}

/// The device as smoltcp reads it while frames come in: the board's device,
/// with a SYN for a TIME-WAIT four-tuple held back (see the module).
pub(crate) struct Guard<'g, D: ?Sized> {
    /// The device below.
    pub inner: &'g mut D,
    /// The closing pool's entries, whose TIME-WAIT four-tuples are matched.
    pub entries: &'g [ClosingSocket],
    /// The SYN held back.
    pub held: &'g mut Held,
}

/// A frame from the device below, or the held SYN.
pub(crate) enum GuardRx<'g, T> {
    /// A frame from the device below.
    Inner {
        token: T,
        entries: &'g [ClosingSocket],
        held: &'g mut Held,
    },
    /// The held SYN, now that its TIME-WAIT socket is free.
    Held(&'g mut Held),
}

impl<D: Device + ?Sized> Device for Guard<'_, D> {
    type RxToken<'a>
        = GuardRx<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.held.state == HeldState::Ready {
            let tx = self.inner.transmit(timestamp)?;
            return Some((GuardRx::Held(&mut *self.held), tx));
        }
        let entries = self.entries;
        let held = &mut *self.held;
        self.inner.receive(timestamp).map(|(token, tx)| {
            (
                GuardRx::Inner {
                    token,
                    entries,
                    held,
                },
                tx,
            )
        })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: RxToken> RxToken for GuardRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self {
            GuardRx::Held(held) => {
                let result = f(&held.frame[..held.len]);
                held.state = HeldState::Empty;
                result
            }
            GuardRx::Inner {
                token,
                entries,
                held,
            } => token.consume(|frame| {
                let free = held.state == HeldState::Empty && frame.len() <= HELD_FRAME;
                match free.then(|| time_wait_of_syn(frame, entries)).flatten() {
                    Some(index) => {
                        held.frame[..frame.len()].copy_from_slice(frame);
                        held.len = frame.len();
                        held.state = HeldState::Waiting(index);
                        // smoltcp skips an empty frame.
                        f(&[])
                    }
                    None => f(frame),
                }
            }),
        }
    }

    fn meta(&self) -> PacketMeta {
        match self {
            GuardRx::Inner { token, .. } => token.meta(),
            GuardRx::Held(_) => PacketMeta::default(),
        }
    }
}

/// The closing-pool entry whose TIME-WAIT four-tuple a SYN (without ACK or
/// RST) in `frame` is for, if any.
fn time_wait_of_syn(frame: &[u8], entries: &[ClosingSocket]) -> Option<usize> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, dst, tcp_bytes): (IpAddress, IpAddress, &[u8]) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(tcp_bytes).ok()?;
    if !tcp.syn() || tcp.ack() || tcp.rst() {
        return None;
    }
    let local = IpEndpoint::new(dst, tcp.dst_port());
    let remote = IpEndpoint::new(src, tcp.src_port());
    entries
        .iter()
        .position(|entry| entry.time_wait_tuple() == Some((local, remote)))
}
