//! What a capture (`--pcap`) needs from the frames it records: the time of
//! day, and with offloads on, TCP checksums that are complete.

use socklab_app::smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, TxToken};
use socklab_app::smoltcp::time::Instant;

use crate::clock::Clock;
use crate::vnet;

/// Sits between the application and a pcap writer: hands the writer
/// wall-clock timestamps instead of the application's monotonic ones (so
/// Wireshark shows when frames passed, not 1970), and, when the TAP offloads
/// checksums, fills in the TCP checksum that smoltcp left to the kernel (so
/// the capture shows valid checksums; the TAP then puts the kernel's partial
/// sum back).
pub struct CaptureView<D> {
    pub inner: D,
    pub clock: Clock,
    /// The TAP offloads TCP checksums: complete them before they are recorded.
    pub complete_checksums: bool,
}

/// A transmit token whose frame gets its TCP checksum before it goes on.
pub struct CaptureTx<T> {
    token: T,
    complete_checksums: bool,
}

impl<D: Device> Device for CaptureView<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = CaptureTx<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let complete_checksums = self.complete_checksums;
        self.inner
            .receive(self.clock.wall(timestamp))
            .map(|(rx, token)| {
                let tx = CaptureTx {
                    token,
                    complete_checksums,
                };
                (rx, tx)
            })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let complete_checksums = self.complete_checksums;
        self.inner
            .transmit(self.clock.wall(timestamp))
            .map(|token| CaptureTx {
                token,
                complete_checksums,
            })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: TxToken> TxToken for CaptureTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let complete = self.complete_checksums;
        self.token.consume(len, |frame| {
            let result = f(frame);
            if complete {
                vnet::complete_tcp_checksum(frame);
            }
            result
        })
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.token.set_meta(meta)
    }
}
