//! Device middleware that counts frames and connection refusals on their way
//! between smoltcp and the board's device.

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber,
};

use crate::counters::FrameCounters;
use crate::protocol;

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
        self.inner
            .transmit(timestamp)
            .map(|token| CountedTx { token, counters })
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
            if let Some(tcp) = tcp_of(frame) {
                let rst = tcp.rst();
                match tcp.dst_port() {
                    protocol::LAB_PORT | protocol::MGMT_PORT => {
                        counters.lab_touched.set(true);
                        if rst {
                            counters.lab_reset.set(true);
                        }
                    }
                    protocol::ECHO_PORT | protocol::DISCARD_PORT | protocol::CHARGEN_PORT => {
                        counters.bulk_touched.set(true);
                        if rst {
                            counters.bulk_reset.set(true);
                        }
                    }
                    _ => {}
                }
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
