//! The `smoltcp::phy::Device` adapter over the virtio-net driver.
//!
//! A received frame is read in place from the buffer the device wrote it into; a frame to
//! send is built in place in a transmit buffer the device then reads. Nothing is copied
//! by the board and nothing is allocated.

use socklab_app::smoltcp::phy::{self, DeviceCapabilities, Medium};
use socklab_app::smoltcp::time::Instant;

use crate::nic::{Transmitter, VirtioNet, MAX_FRAME_LEN};

/// The NIC as smoltcp sees it.
pub struct VirtioDevice {
    nic: VirtioNet,
}

impl VirtioDevice {
    /// Wraps a started driver.
    pub fn new(nic: VirtioNet) -> VirtioDevice {
        VirtioDevice { nic }
    }

    /// The driver itself, for waiting on it and for its counters.
    pub fn nic(&mut self) -> &mut VirtioNet {
        &mut self.nic
    }
}

/// A received frame, read in place.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Room to build one frame, handed to the device when the token is consumed.
pub struct TxToken<'a> {
    tx: Transmitter<'a>,
}

impl phy::Device for VirtioDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let (frame, tx) = self.nic.receive()?;
        Some((RxToken { frame }, TxToken { tx }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            tx: self.nic.transmitter()?,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME_LEN;
        caps
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.tx.send(len, f)
    }
}
