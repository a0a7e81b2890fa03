//! A device wrapper that is there or not: [`Optional`] is one `phy::Device` type
//! either way, so that optional wrappers (rate limit, bad link, capture) compose like
//! smoltcp's `PcapWriter` and `FaultInjector` and the poll loop is one function. An
//! absent wrapper passes every frame straight through.

use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken, TxToken};
use smoltcp::time::Instant;

/// `On(wrapper)` when the option is given, `Off(device)` when not.
pub enum Optional<W, D> {
    /// The wrapper, around the device.
    On(W),
    /// The device itself.
    Off(D),
}

impl<W, D> Optional<W, D> {
    /// `wrap(device)` when `on`, else the device itself.
    pub fn wrap_if(on: bool, device: D, wrap: impl FnOnce(D) -> W) -> Optional<W, D> {
        if on {
            Optional::On(wrap(device))
        } else {
            Optional::Off(device)
        }
    }
}

/// A token of either device.
pub enum Token<A, B> {
    /// The wrapper's.
    On(A),
    /// The device's.
    Off(B),
}

impl<W: Device, D: Device> Device for Optional<W, D> {
    type RxToken<'a>
        = Token<W::RxToken<'a>, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = Token<W::TxToken<'a>, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        match self {
            Optional::On(w) => w
                .receive(timestamp)
                .map(|(rx, tx)| (Token::On(rx), Token::On(tx))),
            Optional::Off(d) => d
                .receive(timestamp)
                .map(|(rx, tx)| (Token::Off(rx), Token::Off(tx))),
        }
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        match self {
            Optional::On(w) => w.transmit(timestamp).map(Token::On),
            Optional::Off(d) => d.transmit(timestamp).map(Token::Off),
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        match self {
            Optional::On(w) => w.capabilities(),
            Optional::Off(d) => d.capabilities(),
        }
    }
}

impl<A: RxToken, B: RxToken> RxToken for Token<A, B> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self {
            Token::On(a) => a.consume(f),
            Token::Off(b) => b.consume(f),
        }
    }

    fn meta(&self) -> PacketMeta {
        match self {
            Token::On(a) => a.meta(),
            Token::Off(b) => b.meta(),
        }
    }
}

impl<A: TxToken, B: TxToken> TxToken for Token<A, B> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            Token::On(a) => a.consume(len, f),
            Token::Off(b) => b.consume(len, f),
        }
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        match self {
            Token::On(a) => a.set_meta(meta),
            Token::Off(b) => b.set_meta(meta),
        }
    }
}
