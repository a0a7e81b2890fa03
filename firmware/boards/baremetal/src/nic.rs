//! The NIC contract: what a MAC driver offers, with no network stack in sight.
//!
//! A driver that lends its own buffers (DMA rings, as virtio-net) implements [`Nic`]
//! directly, so that a frame is read and built in place. A controller that moves whole
//! frames through a FIFO (as the LAN9118) implements the simpler [`FifoNic`] and is
//! wrapped in [`Buffered`], which owns one receive and one transmit buffer. The shape
//! follows `embassy-net-driver`: a frame received comes with room to send one reply.

/// A network controller that hands out received frames and room to send, in place.
pub trait Nic {
    /// A received frame, valid until it is consumed.
    type Rx<'a>: RxFrame
    where
        Self: 'a;
    /// Room to send one frame.
    type Tx<'a>: TxFrame
    where
        Self: 'a;

    /// The largest frame it sends or receives, in bytes (Ethernet header included,
    /// FCS excluded).
    const MAX_FRAME_LEN: usize;

    /// The next received frame, if one is waiting, with room to send one reply.
    fn receive(&mut self) -> Option<(Self::Rx<'_>, Self::Tx<'_>)>;

    /// Room to send one frame of up to [`MAX_FRAME_LEN`](Self::MAX_FRAME_LEN) bytes, if
    /// there is any now.
    fn transmit(&mut self) -> Option<Self::Tx<'_>>;

    /// Hands the hardware whatever the driver batched during a poll: frames queued but
    /// not yet announced, receive buffers set aside. The serve loop calls it after every
    /// poll, before it sleeps; a driver may also flush earlier (when its ring is full).
    /// A driver that sends each frame at once keeps this default, which does nothing.
    fn flush(&mut self) {}
}

/// A received frame.
pub trait RxFrame {
    /// Hands the frame's bytes to `read`.
    fn consume<R>(self, read: impl FnOnce(&[u8]) -> R) -> R;
}

/// Room to send one frame.
pub trait TxFrame {
    /// Lets `fill` write a frame of `len` bytes (cut to the NIC's largest frame), then
    /// sends it. A frame the NIC refuses is counted by its driver and dropped.
    fn consume<R>(self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R;
}

impl RxFrame for &[u8] {
    fn consume<R>(self, read: impl FnOnce(&[u8]) -> R) -> R {
        read(self)
    }
}

/// A controller that copies whole frames in and out of its FIFOs.
pub trait FifoNic {
    /// The largest frame it sends or receives (FCS excluded); at most
    /// [`FRAME_BUFFER_LEN`].
    const MAX_FRAME_LEN: usize;

    /// Copies the next received frame into `buffer`; returns its length, or `None` when
    /// no frame is waiting.
    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize>;

    /// Whether a frame of `len` bytes fits into the transmit FIFO now.
    fn can_transmit(&self, len: usize) -> bool;

    /// Queues one frame for sending; a frame the controller refuses is counted by the
    /// driver and dropped.
    fn transmit(&mut self, frame: &[u8]);
}

/// Bytes in each of [`Buffered`]'s frame buffers: an Ethernet frame with a 1500-byte MTU
/// (1514 bytes), rounded up to a multiple of 64.
pub const FRAME_BUFFER_LEN: usize = 1536;

/// A [`FifoNic`] as a [`Nic`]: a received frame is copied out of the controller into
/// one buffer, a frame to send is built in another and then copied in. Nothing is
/// allocated; both buffers live inside.
pub struct Buffered<F> {
    nic: F,
    rx: [u8; FRAME_BUFFER_LEN],
    tx: [u8; FRAME_BUFFER_LEN],
}

impl<F: FifoNic> Buffered<F> {
    /// Wraps an initialised and enabled controller.
    pub fn new(nic: F) -> Buffered<F> {
        const { assert!(F::MAX_FRAME_LEN <= FRAME_BUFFER_LEN) };
        Buffered {
            nic,
            rx: [0; FRAME_BUFFER_LEN],
            tx: [0; FRAME_BUFFER_LEN],
        }
    }

    /// The controller itself, for waiting on it and for its counters.
    pub fn nic(&mut self) -> &mut F {
        &mut self.nic
    }
}

/// Room to build one frame, copied into the controller when consumed.
pub struct BufferedTx<'a, F> {
    nic: &'a mut F,
    buffer: &'a mut [u8; FRAME_BUFFER_LEN],
}

impl<F: FifoNic> Nic for Buffered<F> {
    type Rx<'a>
        = &'a [u8]
    where
        F: 'a;
    type Tx<'a>
        = BufferedTx<'a, F>
    where
        F: 'a;

    const MAX_FRAME_LEN: usize = F::MAX_FRAME_LEN;

    fn receive(&mut self) -> Option<(&[u8], BufferedTx<'_, F>)> {
        let len = self.nic.receive(&mut self.rx)?;
        Some((
            &self.rx[..len],
            BufferedTx {
                nic: &mut self.nic,
                buffer: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self) -> Option<BufferedTx<'_, F>> {
        // Only hand out room when any frame fits: the stack does not say the size first.
        self.nic
            .can_transmit(F::MAX_FRAME_LEN)
            .then_some(BufferedTx {
                nic: &mut self.nic,
                buffer: &mut self.tx,
            })
    }
}

impl<F: FifoNic> TxFrame for BufferedTx<'_, F> {
    fn consume<R>(self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let frame = &mut self.buffer[..len.min(F::MAX_FRAME_LEN)];
        let result = fill(frame);
        self.nic.transmit(frame);
        result
    }
}
