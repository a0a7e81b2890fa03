//! The `smoltcp::phy::Device` adapter over the LAN9118 driver, with fixed frame buffers.
//!
//! A received frame is copied out of the chip into `rx_buf` when smoltcp asks for one;
//! a frame to send is built in `tx_buf` and then written into the chip's TX FIFO.
//! Nothing is allocated; the two buffers live inside the adapter.

use socklab_app::smoltcp::phy::{self, DeviceCapabilities, Medium};
use socklab_app::smoltcp::time::Instant;

use crate::clock;
use crate::lan9118::{Lan9118, MAX_FRAME_LEN};

/// Bytes in each frame buffer: the largest frame, rounded up to a multiple of 64.
const FRAME_BUF_LEN: usize = MAX_FRAME_LEN.div_ceil(64) * 64;

/// Time spent moving frames through the chip's FIFOs, in timer ticks.
#[derive(Debug, Default, Clone, Copy)]
pub struct FifoTime {
    /// Ticks spent reading frames out of the RX FIFO.
    pub rx_ticks: u64,
    /// Ticks spent writing frames into the TX FIFO.
    pub tx_ticks: u64,
    /// Frames read.
    pub rx_frames: u64,
    /// Frames written.
    pub tx_frames: u64,
}

/// The NIC as smoltcp sees it.
pub struct Lan9118Device {
    nic: Lan9118,
    rx_buf: [u8; FRAME_BUF_LEN],
    tx_buf: [u8; FRAME_BUF_LEN],
    fifo: FifoTime,
}

impl Lan9118Device {
    /// Wraps an initialised and enabled driver.
    pub fn new(nic: Lan9118) -> Lan9118Device {
        Lan9118Device {
            nic,
            rx_buf: [0; FRAME_BUF_LEN],
            tx_buf: [0; FRAME_BUF_LEN],
            fifo: FifoTime::default(),
        }
    }

    /// Time spent in the FIFOs so far (for `--profile`).
    pub fn fifo_time(&self) -> FifoTime {
        self.fifo
    }

    /// The driver itself, for waiting on it and for its counters.
    pub fn nic(&mut self) -> &mut Lan9118 {
        &mut self.nic
    }
}

/// A frame already copied out of the chip.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Room to build one frame, sent to the chip when the token is consumed.
pub struct TxToken<'a> {
    nic: &'a mut Lan9118,
    buf: &'a mut [u8; FRAME_BUF_LEN],
    fifo: &'a mut FifoTime,
}

impl phy::Device for Lan9118Device {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let started = clock::now_ticks();
        let len = self.nic.receive(&mut self.rx_buf)?;
        self.fifo.rx_ticks += clock::now_ticks() - started;
        self.fifo.rx_frames += 1;
        Some((
            RxToken {
                frame: &self.rx_buf[..len],
            },
            TxToken {
                nic: &mut self.nic,
                buf: &mut self.tx_buf,
                fifo: &mut self.fifo,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        // Only hand out a token when any frame fits: smoltcp does not say the size first.
        self.nic.can_transmit(MAX_FRAME_LEN).then_some(TxToken {
            nic: &mut self.nic,
            buf: &mut self.tx_buf,
            fifo: &mut self.fifo,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME_LEN;
        // No burst limit: the chip's RX FIFO holds several full frames (about 10.5 KB in
        // QEMU's model), more than one bulk socket's receive window (8 KiB, see SIZES).
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
        // smoltcp never asks for more than `max_transmission_unit` (MAX_FRAME_LEN); the
        // `min` only keeps the slice in bounds.
        let frame = &mut self.buf[..len.min(FRAME_BUF_LEN)];
        let result = f(frame);
        // A refused frame is counted by the driver; TCP retransmits what matters.
        let started = clock::now_ticks();
        let _ = self.nic.transmit(frame);
        self.fifo.tx_ticks += clock::now_ticks() - started;
        self.fifo.tx_frames += 1;
        result
    }
}
