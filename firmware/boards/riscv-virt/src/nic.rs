//! virtio-net over MMIO: finds the device, keeps its receive queue stocked from a fixed
//! pool of frame buffers and sends frames from another; no stack dependency.
//!
//! The driver proper is `virtio-drivers`' `VirtIONetRaw` (no allocation); this module
//! owns the buffers it lends to the device. Every receive buffer is posted to the
//! device; a completed one is handed to the caller until the next [`Nic::receive`],
//! then set aside and posted again with others, [`RX_REFILL_BATCH`] at a time or at the
//! end of the poll ([`Nic::flush`]). A transmit buffer is filled by the caller, handed
//! to the device and taken back once the device reports it sent.
//!
//! The device hears of new buffers in batches ([`kick`](crate::kick)): the transmit
//! queue after [`TX_KICK_BATCH`] frames, when every transmit buffer is in flight, and
//! at the end of the poll; the receive queue with each refill. Each time only if the
//! device asks to be told. The device interrupts for sent frames only while every
//! transmit buffer is in flight (the one time the serve loop waits for one).

use core::ptr::NonNull;

use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use socklab_baremetal::{Nic, TxFrame};

use crate::dma::DmaPool;
use crate::kick::{self, Deferred, Kicker};

/// First virtio-mmio slot of QEMU's virt machine; slot `i` is at `+ i * SLOT_STRIDE`.
const SLOT_BASE: usize = 0x1000_1000;
/// Distance between two slots, and the size of each.
const SLOT_STRIDE: usize = 0x1000;
/// Number of virtio-mmio slots. QEMU fills them from the top: one device lands in slot 7.
pub const SLOTS: usize = 8;
/// PLIC source of slot 0; slot `i` raises source `SLOT_IRQ_BASE + i`.
const SLOT_IRQ_BASE: u32 = 1;

/// Entries in each virtqueue (a power of two). Every buffer takes one descriptor.
pub const QUEUE_SIZE: usize = 64;
/// Receive buffers, all posted to the device at once.
pub const RX_BUFFERS: usize = QUEUE_SIZE;
/// Transmit buffers: frames the device may hold before it reports them sent.
pub const TX_BUFFERS: usize = QUEUE_SIZE;
/// Receive buffers set aside before they are posted again together: a quarter of the
/// ring, so that the device keeps three quarters while a busy poll reads frames.
pub const RX_REFILL_BATCH: usize = RX_BUFFERS / 4;
/// Frames queued for sending before the device is told of them within a poll: half the
/// ring, so that the device sends the first half while the stack builds the second.
/// Each notify is a trap that waits for QEMU's global lock, which its I/O thread holds
/// while it moves frames: fewer, larger batches are the faster.
pub const TX_KICK_BATCH: usize = TX_BUFFERS / 2;
/// The largest Ethernet frame without FCS, with a 1500-byte MTU.
pub const MAX_FRAME_LEN: usize = 1514;
/// Bytes per buffer: the virtio-net header (10 or 12 bytes) and a full frame, rounded up.
pub const BUFFER_LEN: usize = 1536;

type Raw = VirtIONetRaw<DmaPool, Deferred<MmioTransport<'static>>, QUEUE_SIZE>;
type Buffer = [u8; BUFFER_LEN];

/// Counts of what the driver saw, for the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Completions the device reported with an error, or buffers it refused.
    pub errors: u64,
    /// Notifies written to the device (traps into QEMU).
    pub kicks: u64,
}

/// Why no NIC could be brought up.
#[derive(Debug)]
pub enum ProbeError {
    /// None of the eight slots holds a network device.
    NoNetDevice,
    /// The device was found but would not start.
    Init(virtio_drivers::Error),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::NoNetDevice => write!(
                f,
                "no virtio-net device in the {SLOTS} virtio-mmio slots \
                 (QEMU needs -device virtio-net-device,netdev=...)"
            ),
            ProbeError::Init(e) => write!(f, "virtio-net would not start: {e}"),
        }
    }
}

/// The receive buffers and which one each device token stands for.
struct RxRing {
    buffers: &'static mut [Buffer; RX_BUFFERS],
    /// Buffer index of each descriptor token the device holds.
    of_token: [u8; QUEUE_SIZE],
    /// The buffer handed to the caller by the last `receive`, set aside by the next.
    lent: Option<usize>,
    /// Buffers set aside to be posted again, `returned_count` of them.
    returned: [u8; RX_BUFFERS],
    returned_count: usize,
}

/// The transmit buffers, which are free, and how long each one in flight is.
struct TxRing {
    buffers: &'static mut [Buffer; TX_BUFFERS],
    of_token: [u8; QUEUE_SIZE],
    /// Bytes handed to the device per buffer (the same slice must be given back).
    len: [u16; TX_BUFFERS],
    /// Indices of free buffers, `free_count` of them.
    free: [u8; TX_BUFFERS],
    free_count: usize,
    /// Frames handed over since the device was last told.
    unkicked: usize,
    /// Whether the device interrupts for sent frames (while every buffer is in flight).
    wake: bool,
}

/// The virtio-net device and its frame buffers.
pub struct VirtioNet {
    raw: Raw,
    rx: RxRing,
    tx: TxRing,
    kicker: Kicker,
    slot: usize,
    counters: Counters,
}

/// Room to send one frame; see its [`TxFrame::consume`].
pub struct Transmitter<'a> {
    raw: &'a mut Raw,
    tx: &'a mut TxRing,
    kicker: &'a mut Kicker,
    counters: &'a mut Counters,
}

impl VirtioNet {
    /// Finds the network device in the highest virtio-mmio slot below `below_slot`,
    /// starts it, and posts every receive buffer. `rx` and `tx` become the device's for
    /// the whole run. QEMU's virt machine fills the slots from the top, so the first
    /// `-device` on QEMU's command line is in the highest slot: probing with
    /// [`SLOTS`], then below each device's [`slot`](Self::slot), finds them in
    /// command-line order.
    /// `virtio-drivers` negotiates event indices where the device offers them; either
    /// way of notification suppression is honoured (see [`kick`]).
    pub fn probe(
        below_slot: usize,
        rx: &'static mut [Buffer; RX_BUFFERS],
        tx: &'static mut [Buffer; TX_BUFFERS],
    ) -> Result<VirtioNet, ProbeError> {
        let (slot, transport) = (0..below_slot.min(SLOTS))
            .rev()
            .find_map(|slot| {
                let header = NonNull::new((SLOT_BASE + slot * SLOT_STRIDE) as *mut VirtIOHeader)?;
                // SAFETY: each slot is a virtio-mmio register window of SLOT_STRIDE bytes on
                // this machine, used by nothing else; an empty slot reads device id 0, which
                // `new` rejects. A transport that is not kept is dropped without effect.
                let transport = unsafe { MmioTransport::new(header, SLOT_STRIDE) }.ok()?;
                (transport.device_type() == DeviceType::Network).then_some((slot, transport))
            })
            .ok_or(ProbeError::NoNetDevice)?;
        let raw = Raw::new(Deferred(transport)).map_err(ProbeError::Init)?;
        let kicker = Kicker::new(SLOT_BASE + slot * SLOT_STRIDE, QUEUE_SIZE);
        let mut free = [0u8; TX_BUFFERS];
        for (i, f) in free.iter_mut().enumerate() {
            *f = i as u8;
        }
        let mut nic = VirtioNet {
            raw,
            rx: RxRing {
                buffers: rx,
                of_token: [0; QUEUE_SIZE],
                lent: None,
                returned: [0; RX_BUFFERS],
                returned_count: 0,
            },
            tx: TxRing {
                buffers: tx,
                of_token: [0; QUEUE_SIZE],
                len: [0; TX_BUFFERS],
                free,
                free_count: TX_BUFFERS,
                unkicked: 0,
                wake: false,
            },
            kicker,
            slot,
            counters: Counters::default(),
        };
        for i in 0..RX_BUFFERS {
            nic.post_rx(i).map_err(ProbeError::Init)?;
        }
        nic.kicker.kick(kick::RECEIVE);
        nic.kicker.set_interrupt(kick::TRANSMIT, false);
        Ok(nic)
    }

    /// Lends receive buffer `i` to the device.
    fn post_rx(&mut self, i: usize) -> Result<(), virtio_drivers::Error> {
        // SAFETY: buffer `i` is not touched again until the device hands its token back
        // and `receive` completes it with the same buffer.
        let token = unsafe { self.raw.receive_begin(&mut self.rx.buffers[i])? };
        self.rx.of_token[usize::from(token) % QUEUE_SIZE] = i as u8;
        Ok(())
    }

    /// The device's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// The virtio-mmio slot the device sits in (0..8).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The PLIC source of the device's interrupt.
    pub fn irq(&self) -> u32 {
        SLOT_IRQ_BASE + self.slot as u32
    }

    /// Whether the device and driver use event indices (else the rings' flags) to
    /// suppress notifications.
    pub fn event_idx(&self) -> bool {
        self.kicker.event_idx()
    }

    /// What the driver counted so far.
    pub fn counters(&self) -> Counters {
        Counters {
            kicks: self.kicker.kicks(),
            ..self.counters
        }
    }

    /// Whether a received frame is waiting.
    pub fn rx_waiting(&self) -> bool {
        self.raw.poll_receive().is_some()
    }

    /// Whether every transmit buffer is in flight and the device has sent one since:
    /// a sender held back for want of a buffer can go on.
    pub fn tx_freed(&mut self) -> bool {
        self.tx.free_count == 0 && self.raw.poll_transmit().is_some()
    }

    /// Acknowledges the device's interrupt, which lowers its line.
    pub fn ack_interrupt(&mut self) {
        self.raw.ack_interrupt();
    }

    /// Sets the buffer lent last time aside and completes the next received frame: its
    /// buffer, header length and frame length.
    fn take_frame(&mut self) -> Option<(usize, usize, usize)> {
        if let Some(i) = self.rx.lent.take() {
            self.set_aside(i);
        }
        if !self.tx_room() {
            return None;
        }
        loop {
            let token = self.raw.poll_receive()?;
            let i = usize::from(self.rx.of_token[usize::from(token) % QUEUE_SIZE]);
            // SAFETY: `token` was returned by `receive_begin` for buffer `i` (of_token).
            match unsafe { self.raw.receive_complete(token, &mut self.rx.buffers[i]) } {
                Ok((header, len)) if len <= MAX_FRAME_LEN => {
                    self.counters.rx_frames += 1;
                    self.rx.lent = Some(i);
                    return Some((i, header, len));
                }
                _ => {
                    // A completion without a frame in it: count it, give the buffer back.
                    self.counters.errors += 1;
                    self.set_aside(i);
                }
            }
        }
    }

    /// Sets receive buffer `i` aside, and posts the buffers set aside once there are
    /// [`RX_REFILL_BATCH`] of them.
    fn set_aside(&mut self, i: usize) {
        self.rx.returned[self.rx.returned_count] = i as u8;
        self.rx.returned_count += 1;
        if self.rx.returned_count >= RX_REFILL_BATCH {
            self.refill();
        }
    }

    /// Posts every buffer set aside and tells the device.
    fn refill(&mut self) {
        for k in 0..core::mem::take(&mut self.rx.returned_count) {
            if self.post_rx(usize::from(self.rx.returned[k])).is_err() {
                self.counters.errors += 1;
            }
        }
        self.kicker.kick(kick::RECEIVE);
    }

    /// Whether a transmit buffer is free. When none is, the device is told of every
    /// frame it holds and asked for an interrupt when it sends one.
    fn tx_room(&mut self) -> bool {
        if self
            .tx
            .reclaim(&mut self.raw, &mut self.kicker, &mut self.counters)
        {
            return true;
        }
        self.tx.unkicked = 0;
        self.kicker.kick(kick::TRANSMIT);
        if !self.tx.wake {
            self.tx.wake = true;
            self.kicker.set_interrupt(kick::TRANSMIT, true);
        }
        // A frame sent before the interrupt was asked for raised none: look again.
        self.tx
            .reclaim(&mut self.raw, &mut self.kicker, &mut self.counters)
    }
}

/// The driver as the bare-metal support crate's NIC: frames are read and built in place.
impl Nic for VirtioNet {
    type Rx<'a> = &'a [u8];
    type Tx<'a> = Transmitter<'a>;

    const MAX_FRAME_LEN: usize = MAX_FRAME_LEN;

    /// The next received frame, if any, and room to send one reply. The frame stays
    /// valid until the next call; its buffer then goes back to the device. While every
    /// transmit buffer is in flight, frames wait in the device.
    fn receive(&mut self) -> Option<(&[u8], Transmitter<'_>)> {
        let (i, header, len) = self.take_frame()?;
        Some((
            &self.rx.buffers[i][header..header + len],
            Transmitter {
                raw: &mut self.raw,
                tx: &mut self.tx,
                kicker: &mut self.kicker,
                counters: &mut self.counters,
            },
        ))
    }

    /// Room to send one frame, if a transmit buffer is free.
    fn transmit(&mut self) -> Option<Transmitter<'_>> {
        self.tx_room().then_some(Transmitter {
            raw: &mut self.raw,
            tx: &mut self.tx,
            kicker: &mut self.kicker,
            counters: &mut self.counters,
        })
    }

    /// Posts the receive buffers set aside (the last one lent included) and tells the
    /// device of them and of the frames queued for sending.
    fn flush(&mut self) {
        if let Some(i) = self.rx.lent.take() {
            self.rx.returned[self.rx.returned_count] = i as u8;
            self.rx.returned_count += 1;
        }
        if self.rx.returned_count > 0 {
            self.refill();
        }
        if self.tx.unkicked > 0 {
            self.tx.unkicked = 0;
            self.kicker.kick(kick::TRANSMIT);
        }
    }
}

impl TxRing {
    /// Takes back every buffer the device has sent; true if one is free. Interrupts for
    /// sent frames stop once one is.
    fn reclaim(&mut self, raw: &mut Raw, kicker: &mut Kicker, counters: &mut Counters) -> bool {
        while let Some(token) = raw.poll_transmit() {
            let i = usize::from(self.of_token[usize::from(token) % QUEUE_SIZE]);
            let len = usize::from(self.len[i]);
            // SAFETY: `token` was returned by `transmit_begin` for these very bytes.
            if unsafe { raw.transmit_complete(token, &self.buffers[i][..len]) }.is_err() {
                counters.errors += 1;
            }
            self.free[self.free_count] = i as u8;
            self.free_count += 1;
        }
        if self.wake && self.free_count > 0 {
            self.wake = false;
            kicker.set_interrupt(kick::TRANSMIT, false);
        }
        self.free_count > 0
    }
}

impl TxFrame for Transmitter<'_> {
    /// Builds a frame of `len` bytes (cut to [`MAX_FRAME_LEN`]) with `fill` and queues it
    /// for the device, which hears of it with the next batch. A frame the device refuses
    /// is counted and dropped.
    fn consume<R>(self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let len = len.min(MAX_FRAME_LEN);
        let tx = self.tx;
        // A Transmitter exists only while a buffer is free (see `reclaim`).
        tx.free_count -= 1;
        let i = usize::from(tx.free[tx.free_count]);
        let buffer = &mut tx.buffers[i];
        let header = match self.raw.fill_buffer_header(buffer) {
            Ok(header) => header,
            Err(_) => unreachable!("a buffer holds the virtio-net header"),
        };
        let result = fill(&mut buffer[header..header + len]);
        let total = header + len;
        tx.len[i] = total as u16;
        // SAFETY: buffer `i` is not touched again until `reclaim` completes its token.
        match unsafe { self.raw.transmit_begin(&buffer[..total]) } {
            Ok(token) => {
                tx.of_token[usize::from(token) % QUEUE_SIZE] = i as u8;
                self.counters.tx_frames += 1;
                tx.unkicked += 1;
                if tx.unkicked >= TX_KICK_BATCH {
                    tx.unkicked = 0;
                    self.kicker.kick(kick::TRANSMIT);
                }
            }
            Err(_) => {
                self.counters.errors += 1;
                tx.free[tx.free_count] = i as u8;
                tx.free_count += 1;
            }
        }
        result
    }
}
