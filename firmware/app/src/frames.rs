//! Device middleware that counts frames and connection refusals on their way
//! between smoltcp and the board's device.

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber,
};

use crate::counters::FrameCounters;

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
        FrameCounters::bump(&self.counters.rx);
        self.token.consume(f)
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

/// Is this frame smoltcp's answer to a SYN that no socket took? That answer,
/// and only that one, is an RST|ACK with sequence number 0 (RFC 793's reset
/// generation for a segment without ACK); a socket's own abort carries its
/// current, random-based sequence number.
fn is_refusal(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let tcp_bytes = match eth.ethertype() {
        EthernetProtocol::Ipv4 => match Ipv4Packet::new_checked(eth.payload()) {
            Ok(ip) if ip.next_header() == IpProtocol::Tcp => ip.payload(),
            _ => return false,
        },
        EthernetProtocol::Ipv6 => match Ipv6Packet::new_checked(eth.payload()) {
            Ok(ip) if ip.next_header() == IpProtocol::Tcp => ip.payload(),
            _ => return false,
        },
        _ => return false,
    };
    match TcpPacket::new_checked(tcp_bytes) {
        Ok(tcp) => tcp.rst() && tcp.ack() && tcp.seq_number() == TcpSeqNumber(0),
        Err(_) => false,
    }
}
