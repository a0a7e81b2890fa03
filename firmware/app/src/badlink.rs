//! A bad link of our own: `phy::Device` middleware that drops, corrupts,
//! duplicates, reorders and delays frames with given probabilities, in both
//! directions, from a seed so a failing run can be replayed.
//!
//! It needs no heap: held frames (duplicates, reordered and delayed frames)
//! live in `SLOTS` fixed buffers of `FRAME` bytes per direction. When they are
//! all taken a frame passes unharmed (counted in [`LinkStats::held_full`]).
//! Boards wrap their NIC in it when a fault option is given, and fold
//! [`BadLink::next_due`] into their wait so held frames are released on time.

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};

/// Probabilities are in parts per million.
pub const MILLION: u32 = 1_000_000;
/// How long a reordered frame is held back: frames arriving meanwhile overtake it.
pub const REORDER_WINDOW: Duration = Duration::from_millis(2);
/// The Ethernet header, left intact by corruption so the frame still reaches
/// the stack (which must then catch the damage by checksum).
const ETHERNET_HEADER: usize = 14;

/// What the link does to frames, each a chance in parts per million.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Frame lost.
    pub drop_ppm: u32,
    /// One bit of the frame's payload flipped.
    pub corrupt_ppm: u32,
    /// Frame delivered twice.
    pub duplicate_ppm: u32,
    /// Frame held back for [`REORDER_WINDOW`] so later frames overtake it.
    pub reorder_ppm: u32,
    /// Frame held back for `delay`.
    pub delay_ppm: u32,
    /// How long a delayed frame is held.
    pub delay: Duration,
}

impl Faults {
    /// True if this link harms nothing.
    pub fn is_clean(&self) -> bool {
        self.drop_ppm == 0
            && self.corrupt_ppm == 0
            && self.duplicate_ppm == 0
            && self.reorder_ppm == 0
            && self.delay_ppm == 0
    }

    /// Converts a percentage (0.0 to 100.0) to parts per million.
    pub fn ppm(percent: f32) -> u32 {
        (percent.clamp(0.0, 100.0) * 10_000.0) as u32
    }
}

/// What the link did, per direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames that went through (originals, not counting duplicates).
    pub frames: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames corrupted.
    pub corrupted: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Frames held back to be overtaken.
    pub reordered: u64,
    /// Frames delayed.
    pub delayed: u64,
    /// Faults skipped because every hold buffer was taken.
    pub held_full: u64,
}

/// A small, fast, seedable generator (xorshift64*): the same seed gives the
/// same faults.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's fixed point.
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && (self.next() % u64::from(MILLION)) < u64::from(ppm)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A frame waiting in a hold buffer.
#[derive(Clone, Copy)]
struct Held<const FRAME: usize> {
    due: Option<Instant>,
    len: usize,
    data: [u8; FRAME],
}

impl<const FRAME: usize> Held<FRAME> {
    const EMPTY: Self = Held {
        due: None,
        len: 0,
        data: [0; FRAME],
    };
}

/// The faults of one direction with its own generator and hold buffers.
struct Side<const SLOTS: usize, const FRAME: usize> {
    faults: Faults,
    rng: Rng,
    held: [Held<FRAME>; SLOTS],
    stats: LinkStats,
}

/// What to do with one frame.
enum Fate {
    Drop,
    Pass,
    Hold(Instant),
}

impl<const SLOTS: usize, const FRAME: usize> Side<SLOTS, FRAME> {
    fn new(faults: Faults, seed: u64) -> Self {
        Side {
            faults,
            rng: Rng::new(seed),
            held: [Held::EMPTY; SLOTS],
            stats: LinkStats::default(),
        }
    }

    /// Holds a copy of `frame` until `due`; false if no buffer is free.
    fn hold(&mut self, frame: &[u8], due: Instant) -> bool {
        if frame.len() > FRAME {
            return false;
        }
        match self.held.iter_mut().find(|h| h.due.is_none()) {
            Some(slot) => {
                slot.data[..frame.len()].copy_from_slice(frame);
                slot.len = frame.len();
                slot.due = Some(due);
                true
            }
            None => {
                self.stats.held_full += 1;
                false
            }
        }
    }

    /// Decides what happens to `frame` (corrupting it in place if so drawn).
    fn judge(&mut self, frame: &mut [u8], now: Instant) -> Fate {
        self.stats.frames += 1;
        let f = self.faults;
        if self.rng.chance(f.drop_ppm) {
            self.stats.dropped += 1;
            return Fate::Drop;
        }
        if frame.len() > ETHERNET_HEADER && self.rng.chance(f.corrupt_ppm) {
            let at = ETHERNET_HEADER + self.rng.below(frame.len() - ETHERNET_HEADER);
            frame[at] ^= 1 << self.rng.below(8);
            self.stats.corrupted += 1;
        }
        if self.rng.chance(f.duplicate_ppm) && self.hold(frame, now) {
            self.stats.duplicated += 1;
        }
        if self.rng.chance(f.reorder_ppm) {
            self.stats.reordered += 1;
            return Fate::Hold(now + REORDER_WINDOW);
        }
        if self.rng.chance(f.delay_ppm) {
            self.stats.delayed += 1;
            return Fate::Hold(now + f.delay);
        }
        Fate::Pass
    }

    /// The index of the earliest held frame due by `now`.
    fn due(&self, now: Instant) -> Option<usize> {
        self.held
            .iter()
            .enumerate()
            .filter(|(_, h)| h.due.is_some_and(|d| d <= now))
            .min_by_key(|(_, h)| h.due)
            .map(|(i, _)| i)
    }

    fn next_due(&self) -> Option<Instant> {
        self.held.iter().filter_map(|h| h.due).min()
    }
}

/// The middleware. `SLOTS` frames can be held per direction, each at most
/// `FRAME` bytes (a board's largest frame).
pub struct BadLink<D, const SLOTS: usize, const FRAME: usize> {
    inner: D,
    rx: Side<SLOTS, FRAME>,
    rx_frame: [u8; FRAME],
    tx: Side<SLOTS, FRAME>,
}

impl<D: Device, const SLOTS: usize, const FRAME: usize> BadLink<D, SLOTS, FRAME> {
    /// Wraps `inner`; the same `faults` apply both ways, with generators
    /// derived from `seed`.
    pub fn new(inner: D, faults: Faults, seed: u64) -> Self {
        BadLink {
            inner,
            rx: Side::new(faults, seed),
            rx_frame: [0; FRAME],
            tx: Side::new(faults, seed.rotate_left(32) ^ 0xA5A5_A5A5),
        }
    }

    /// What the link did to received and to sent frames.
    pub fn stats(&self) -> (LinkStats, LinkStats) {
        (self.rx.stats, self.tx.stats)
    }

    /// The wrapped device.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// When the next held frame is due: the board must poll again by then.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.rx.next_due(), self.tx.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends the held outgoing frames that are due.
    fn release_tx(&mut self, now: Instant) {
        while let Some(i) = self.tx.due(now) {
            let Some(token) = self.inner.transmit(now) else {
                return;
            };
            let held = &mut self.tx.held[i];
            let len = held.len;
            token.consume(len, |buf| buf.copy_from_slice(&held.data[..len]));
            held.due = None;
        }
    }
}

/// A received frame, already judged, in the link's own buffer.
pub struct BadRx<'a> {
    frame: &'a [u8],
}

impl RxToken for BadRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// A frame to send: judged once smoltcp has written it.
pub struct BadTx<'a, T, const SLOTS: usize, const FRAME: usize> {
    token: T,
    side: &'a mut Side<SLOTS, FRAME>,
    now: Instant,
}

impl<T: TxToken, const SLOTS: usize, const FRAME: usize> TxToken for BadTx<'_, T, SLOTS, FRAME> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let BadTx { token, side, now } = self;
        if len > FRAME {
            // Larger than the hold buffers: pass it through untouched.
            return token.consume(len, f);
        }
        let mut frame = [0u8; FRAME];
        let result = f(&mut frame[..len]);
        match side.judge(&mut frame[..len], now) {
            Fate::Drop => {}
            Fate::Pass => token.consume(len, |buf| buf.copy_from_slice(&frame[..len])),
            Fate::Hold(due) => {
                if !side.hold(&frame[..len], due) {
                    token.consume(len, |buf| buf.copy_from_slice(&frame[..len]));
                }
            }
        }
        result
    }
}

/// Frames examined per `receive` call before giving up (drops and holds
/// consume frames without delivering one).
const RX_ATTEMPTS: usize = 8;

impl<D: Device, const SLOTS: usize, const FRAME: usize> Device for BadLink<D, SLOTS, FRAME> {
    type RxToken<'a>
        = BadRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = BadTx<'a, D::TxToken<'a>, SLOTS, FRAME>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.release_tx(now);
        let mut len = None;
        if let Some(i) = self.rx.due(now) {
            let held = &mut self.rx.held[i];
            self.rx_frame[..held.len].copy_from_slice(&held.data[..held.len]);
            held.due = None;
            len = Some(held.len);
        }
        for _ in 0..RX_ATTEMPTS {
            if len.is_some() {
                break;
            }
            let (token, _) = self.inner.receive(now)?;
            let buffer = &mut self.rx_frame;
            let n = token.consume(|frame| {
                let n = frame.len().min(FRAME);
                buffer[..n].copy_from_slice(&frame[..n]);
                n
            });
            match self.rx.judge(&mut self.rx_frame[..n], now) {
                Fate::Drop => {}
                Fate::Pass => len = Some(n),
                Fate::Hold(due) => {
                    let frame = self.rx_frame;
                    if !self.rx.hold(&frame[..n], due) {
                        len = Some(n);
                    }
                }
            }
        }
        let len = len?;
        let tx = self.inner.transmit(now)?;
        Some((
            BadRx {
                frame: &self.rx_frame[..len],
            },
            BadTx {
                token: tx,
                side: &mut self.tx,
                now,
            },
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.release_tx(now);
        let token = self.inner.transmit(now)?;
        Some(BadTx {
            token,
            side: &mut self.tx,
            now,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}
