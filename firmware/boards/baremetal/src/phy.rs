//! The `smoltcp::phy::Device` over a board's [`Nic`]: the only place that knows both.
//!
//! Tokens pass the NIC's own frames through (a zero-copy NIC stays zero-copy). The
//! adapter also times the driver with the board's [`Board::counter`], for `--profile`:
//! how long taking a frame, finding room, handing a frame over and flushing took.

use core::marker::PhantomData;

use socklab_app::smoltcp::phy::{self, DeviceCapabilities, Medium};
use socklab_app::smoltcp::time::Instant;

use crate::board::Board;
use crate::nic::{Nic, RxFrame, TxFrame};

/// Time spent in the NIC driver and the frames it moved, since boot.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverTime {
    /// Counter units spent looking for and taking received frames.
    pub rx_time: u64,
    /// Counter units spent finding room to send, handing frames over and flushing the
    /// NIC at the end of a poll.
    pub tx_time: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// Frames handed over to send.
    pub tx_frames: u64,
}

/// A board's NIC as smoltcp sees it.
pub struct NicDevice<B: Board> {
    nic: B::Nic,
    time: DriverTime,
    board: PhantomData<B>,
}

impl<B: Board> NicDevice<B> {
    /// Wraps a started NIC.
    pub fn new(nic: B::Nic) -> NicDevice<B> {
        NicDevice {
            nic,
            time: DriverTime::default(),
            board: PhantomData,
        }
    }

    /// The NIC itself, for waiting on it and for its health.
    pub fn nic(&mut self) -> &mut B::Nic {
        &mut self.nic
    }

    /// Ends a poll: the NIC's [`Nic::flush`], counted as the driver's transmit time.
    pub fn flush(&mut self) {
        let started = B::counter();
        self.nic.flush();
        self.time.tx_time += B::counter() - started;
    }

    /// Time spent in the driver so far.
    pub fn driver_time(&self) -> DriverTime {
        self.time
    }
}

/// A received frame.
pub struct RxToken<R> {
    frame: R,
}

/// Room to build one frame, handed to the NIC when consumed.
pub struct TxToken<'a, B: Board, T> {
    room: T,
    time: &'a mut DriverTime,
    board: PhantomData<B>,
}

impl<B: Board> phy::Device for NicDevice<B> {
    type RxToken<'a>
        = RxToken<<B::Nic as Nic>::Rx<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, B, <B::Nic as Nic>::Tx<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let started = B::counter();
        let received = self.nic.receive();
        self.time.rx_time += B::counter() - started;
        let (frame, room) = received?;
        self.time.rx_frames += 1;
        Some((
            RxToken { frame },
            TxToken {
                room,
                time: &mut self.time,
                board: PhantomData,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let started = B::counter();
        let room = self.nic.transmit();
        self.time.tx_time += B::counter() - started;
        Some(TxToken {
            room: room?,
            time: &mut self.time,
            board: PhantomData,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = <B::Nic as Nic>::MAX_FRAME_LEN;
        // No burst limit: the NIC queues what arrives behind the frame being read
        // (a FIFO of several full frames, or a ring of posted buffers).
        caps
    }
}

impl<R: RxFrame> phy::RxToken for RxToken<R> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        self.frame.consume(f)
    }
}

impl<B: Board, T: TxFrame> phy::TxToken for TxToken<'_, B, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // Only the hand-over is the driver's time; building the frame is the stack's.
        let mut filled = 0;
        let result = self.room.consume(len, |frame| {
            let result = f(frame);
            filled = B::counter();
            result
        });
        self.time.tx_time += B::counter() - filled;
        self.time.tx_frames += 1;
        result
    }
}
