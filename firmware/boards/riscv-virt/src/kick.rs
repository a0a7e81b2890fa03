//! Batched device notifications: the driver library's per-buffer notifies held back, and
//! one notify ("kick") per queue when a batch is done, only where the device asks for it.
//!
//! `virtio-drivers`' `VirtIONetRaw` notifies the device from inside every
//! `transmit_begin` and `receive_begin`; each notify is an MMIO write, a trap into QEMU.
//! [`Deferred`] is the transport the library drives: it passes everything through but
//! `notify`, which it drops, and it notes where each queue's rings are and whether event
//! indices were negotiated. [`Kicker`] then decides, after a batch of buffers, whether
//! the device wants to hear of them (virtio 1.1 §2.6.7.2, driver notification
//! suppression) and writes the queue's index to the notify register if so:
//!
//! * without `VIRTIO_F_EVENT_IDX`: when the used ring's `VIRTQ_USED_F_NO_NOTIFY` flag is
//!   clear (QEMU sets it while it is working through a queue and looks again once done);
//! * with it: when the device's `avail_event` lies among the buffers made available
//!   since the last check, with 16-bit wrap-around ([`need_event`], as Linux's
//!   `vring_need_event`). The library's own `should_notify` compares the indices without
//!   wrap-around, which misses a kick once the index wraps (see the board's README), so
//!   it is not used.
//!
//! The other direction, used-buffer notification (an interrupt), is switched per queue
//! with the available ring's `VIRTQ_AVAIL_F_NO_INTERRUPT` flag ([`Kicker::set_interrupt`]).
//!
//! The library owns the rings; this module reads the device-written used-ring fields
//! and the available ring's index, and writes only the available ring's flags, which the
//! library writes only in `set_dev_notify` (never called here).

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The virtio-net receive queue's index.
pub const RECEIVE: u16 = 0;
/// The virtio-net transmit queue's index.
pub const TRANSMIT: u16 = 1;
/// Offset of the `QueueNotify` register in a virtio-mmio window (legacy and modern).
const QUEUE_NOTIFY: usize = 0x050;
/// The `VIRTIO_F_EVENT_IDX` feature bit.
const EVENT_IDX: u64 = 1 << 29;
/// Used ring flag: the device does not need a notify.
const USED_F_NO_NOTIFY: u16 = 1;
/// Available ring flag: the driver does not need an interrupt.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Where the two queues' rings are, as the library set them up (physical = virtual on
/// this machine), and the negotiated event-index feature. Written by [`Deferred`] during
/// the library's start-up, read once by [`Kicker::new`]; one device per image.
struct Layout {
    avail: [AtomicUsize; 2],
    used: [AtomicUsize; 2],
    event_idx: AtomicBool,
}

static LAYOUT: Layout = Layout {
    avail: [AtomicUsize::new(0), AtomicUsize::new(0)],
    used: [AtomicUsize::new(0), AtomicUsize::new(0)],
    event_idx: AtomicBool::new(false),
};

/// Whether a device that asked to be notified once the driver makes available the
/// buffer at index `event` must be notified, now that the available index moved from
/// `old` to `new`: `event` lies in `[old, new)`, counted modulo 2^16.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// A transport whose `notify` does nothing: [`Kicker`] notifies instead.
pub struct Deferred<T>(pub T);

impl<T: Transport> Transport for Deferred<T> {
    fn device_type(&self) -> DeviceType {
        self.0.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.0.read_device_features()
    }

    /// Also notes whether event indices were negotiated (the library's `begin_init`
    /// writes the negotiated features here).
    fn write_driver_features(&mut self, driver_features: u64) {
        LAYOUT
            .event_idx
            .store(driver_features & EVENT_IDX != 0, Ordering::Relaxed);
        self.0.write_driver_features(driver_features)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }

    /// Dropped: the driver kicks the device once per batch with [`Kicker::kick`].
    fn notify(&mut self, _queue: u16) {}

    fn get_status(&self) -> DeviceStatus {
        self.0.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.0.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.0.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.0.requires_legacy_layout()
    }

    /// Also notes where the queue's available and used rings are.
    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        if let Some(q) = [RECEIVE, TRANSMIT].iter().position(|&q| q == queue) {
            LAYOUT.avail[q].store(driver_area as usize, Ordering::Relaxed);
            LAYOUT.used[q].store(device_area as usize, Ordering::Relaxed);
        }
        self.0
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.0.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.0.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.0.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.0.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.0.write_config_space(offset, value)
    }
}

/// One queue's rings, and what the driver made available since its last check.
struct Queue {
    index: u16,
    /// The available ring (`flags`, `idx`, `ring[size]`, `used_event`).
    avail: usize,
    /// The used ring (`flags`, `idx`, `ring[size]` of 8 bytes, `avail_event`).
    used: usize,
    size: usize,
    /// The available index at the last check.
    checked: u16,
}

impl Queue {
    fn avail_idx(&self) -> u16 {
        // SAFETY: `idx` of this queue's available ring, which lives as long as the driver;
        // only the library writes it, between calls of this module.
        unsafe { read_volatile((self.avail + 2) as *const u16) }
    }

    fn used_flags(&self) -> u16 {
        // SAFETY: `flags` of this queue's used ring (written by the device).
        unsafe { read_volatile(self.used as *const u16) }
    }

    fn avail_event(&self) -> u16 {
        // SAFETY: `avail_event`, after the used ring's `size` 8-byte elements.
        unsafe { read_volatile((self.used + 4 + 8 * self.size) as *const u16) }
    }
}

/// Notifies the device of a batch of buffers, when it asks for it.
pub struct Kicker {
    /// The device's `QueueNotify` register.
    notify: *mut u32,
    event_idx: bool,
    queues: [Queue; 2],
    /// Notifies written, for the log.
    kicks: u64,
}

impl Kicker {
    /// The kicker of the device in the virtio-mmio window at `window`, whose queues of
    /// `size` entries the library set up through [`Deferred`].
    pub fn new(window: usize, size: usize) -> Kicker {
        let queue = |q: usize, index: u16| Queue {
            index,
            avail: LAYOUT.avail[q].load(Ordering::Relaxed),
            used: LAYOUT.used[q].load(Ordering::Relaxed),
            size,
            checked: 0,
        };
        Kicker {
            notify: (window + QUEUE_NOTIFY) as *mut u32,
            event_idx: LAYOUT.event_idx.load(Ordering::Relaxed),
            queues: [queue(0, RECEIVE), queue(1, TRANSMIT)],
            kicks: 0,
        }
    }

    /// Whether event indices are in use (else the rings' flags).
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    /// Notifies written so far.
    pub fn kicks(&self) -> u64 {
        self.kicks
    }

    /// Tells the device of the buffers made available on `queue` since the last call, if
    /// there are any and the device wants to hear of them.
    pub fn kick(&mut self, queue: u16) {
        let q = &mut self.queues[usize::from(queue)];
        let new = q.avail_idx();
        let old = core::mem::replace(&mut q.checked, new);
        if new == old {
            return;
        }
        // The device must see the new index before this reads its suppression state
        // (a store then a load: a full fence, as Linux's `virtio_mb`).
        fence(Ordering::SeqCst);
        let wanted = if self.event_idx {
            need_event(q.avail_event(), new, old)
        } else {
            q.used_flags() & USED_F_NO_NOTIFY == 0
        };
        if wanted {
            // SAFETY: the `QueueNotify` register of the device's virtio-mmio window.
            unsafe { write_volatile(self.notify, u32::from(q.index)) };
            self.kicks += 1;
        }
    }

    /// Asks the device for an interrupt when it uses a buffer of `queue` (`on`), or not.
    /// Without event indices this is the available ring's `VIRTQ_AVAIL_F_NO_INTERRUPT`;
    /// with them the library keeps `used_event` at the next used buffer and the device
    /// interrupts regardless.
    pub fn set_interrupt(&mut self, queue: u16, on: bool) {
        let q = &self.queues[usize::from(queue)];
        let flags = if on { 0 } else { AVAIL_F_NO_INTERRUPT };
        // SAFETY: `flags` of this queue's available ring; see the module's note.
        unsafe { write_volatile(q.avail as *mut u16, flags) };
    }
}
