//! A bad link of our own: `phy::Device` middleware that drops, corrupts,
//! duplicates, reorders and delays frames with given probabilities, in both
//! directions, from a seed so a failing run can be replayed.
//!
//! It needs no heap: held frames (duplicates, reordered and delayed frames)
//! live in fixed buffers cut from storage the board hands in
//! ([`storage_bytes`]). When they are all taken, or a frame is bigger than a
//! buffer, the frame passes unharmed (counted in [`LinkStats::held_full`]).
//! Frames spared by the dice pass without a copy. Boards wrap their NIC in it
//! when a fault option is given, and fold [`BadLink::next_due`] into their
//! wait so held frames are released on time.
//!
//! It counts what it did to frames that exist, per direction ([`LinkStats`]):
//! a fault is counted when it is done, not when it is drawn, so a held frame
//! that found no free buffer is counted in `held_full`, not as reordered. A
//! device has one link, and the link publishes its counts in [`COUNTS`] each
//! time smoltcp asks it for a frame, where `INFO` reads them (every key 0
//! while no bad link runs) without the board passing them through.

use core::sync::atomic::{AtomicU32, Ordering};

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};

/// Probabilities are in parts per million.
pub const MILLION: u32 = 1_000_000;
/// The longest hold of a delayed frame (`--delay-ms`), in milliseconds: a minute.
pub const MAX_DELAY_MS: u64 = 60_000;
/// How long a reordered frame is held back: frames arriving meanwhile overtake it.
pub const REORDER_WINDOW: Duration = Duration::from_millis(2);
/// Most frames held at once per direction.
pub const MAX_HELD: usize = 16;
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
    /// How long a delayed frame is held (at most [`MAX_DELAY_MS`]).
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

/// One direction's [`LinkStats`] as published for `INFO`: 32-bit counters
/// (every board has 32-bit atomics), wrapping.
#[derive(Debug)]
pub struct PublishedSide {
    frames: AtomicU32,
    dropped: AtomicU32,
    corrupted: AtomicU32,
    duplicated: AtomicU32,
    reordered: AtomicU32,
    delayed: AtomicU32,
    held_full: AtomicU32,
}

impl PublishedSide {
    const fn new() -> Self {
        PublishedSide {
            frames: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            corrupted: AtomicU32::new(0),
            duplicated: AtomicU32::new(0),
            reordered: AtomicU32::new(0),
            delayed: AtomicU32::new(0),
            held_full: AtomicU32::new(0),
        }
    }

    fn store(&self, stats: &LinkStats) {
        let put = |to: &AtomicU32, value: u64| to.store(value as u32, Ordering::Relaxed);
        put(&self.frames, stats.frames);
        put(&self.dropped, stats.dropped);
        put(&self.corrupted, stats.corrupted);
        put(&self.duplicated, stats.duplicated);
        put(&self.reordered, stats.reordered);
        put(&self.delayed, stats.delayed);
        put(&self.held_full, stats.held_full);
    }

    /// The counts as last published.
    pub fn load(&self) -> LinkStats {
        let get = |from: &AtomicU32| u64::from(from.load(Ordering::Relaxed));
        LinkStats {
            frames: get(&self.frames),
            dropped: get(&self.dropped),
            corrupted: get(&self.corrupted),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            delayed: get(&self.delayed),
            held_full: get(&self.held_full),
        }
    }
}

/// What the device's bad link did, as `INFO` reports it.
#[derive(Debug)]
pub struct Published {
    /// Received frames (host to device).
    pub rx: PublishedSide,
    /// Sent frames (device to host).
    pub tx: PublishedSide,
}

/// The counts of the device's bad link, published by the link, read by
/// `INFO` (all 0 while no bad link runs).
pub static COUNTS: Published = Published {
    rx: PublishedSide::new(),
    tx: PublishedSide::new(),
};

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

/// Bytes of storage a link needs to hold `held` frames of up to `frame`
/// bytes each way (plus one scratch frame each way).
pub const fn storage_bytes(held: usize, frame: usize) -> usize {
    2 * (held + 1) * frame
}

/// A held frame's bookkeeping; its bytes are buffer `index` of the side.
#[derive(Debug, Clone, Copy, Default)]
struct Hold {
    due: Option<Instant>,
    len: usize,
}

/// What happens to one frame, drawn before its bytes are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fate {
    drop: bool,
    corrupt: bool,
    duplicate: bool,
    hold_until: Option<Instant>,
    /// The hold is a reorder (else a delay).
    reorder: bool,
}

/// The faults of one direction with its own generator and hold buffers.
struct Side<'s> {
    faults: Faults,
    rng: Rng,
    frame: usize,
    holds: [Hold; MAX_HELD],
    held: usize,
    /// `held` buffers of `frame` bytes.
    buffers: &'s mut [u8],
    /// One frame to harm or discard without touching the device's buffers.
    scratch: &'s mut [u8],
    stats: LinkStats,
}

impl<'s> Side<'s> {
    fn new(faults: Faults, seed: u64, held: usize, frame: usize, storage: &'s mut [u8]) -> Self {
        let (buffers, scratch) = storage.split_at_mut(held * frame);
        Side {
            faults,
            rng: Rng::new(seed),
            frame,
            holds: [Hold::default(); MAX_HELD],
            held,
            buffers,
            scratch,
            stats: LinkStats::default(),
        }
    }

    fn buffer(&mut self, index: usize) -> &mut [u8] {
        &mut self.buffers[index * self.frame..(index + 1) * self.frame]
    }

    /// Draws the fate of the next frame (counted as it is done).
    fn draw(&mut self, now: Instant) -> Fate {
        let f = self.faults;
        if self.rng.chance(f.drop_ppm) {
            return Fate {
                drop: true,
                corrupt: false,
                duplicate: false,
                hold_until: None,
                reorder: false,
            };
        }
        let corrupt = self.rng.chance(f.corrupt_ppm);
        let duplicate = self.rng.chance(f.duplicate_ppm);
        let (hold_until, reorder) = if self.rng.chance(f.reorder_ppm) {
            (Some(now + REORDER_WINDOW), true)
        } else if self.rng.chance(f.delay_ppm) {
            (Some(now + f.delay), false)
        } else {
            (None, false)
        };
        Fate {
            drop: false,
            corrupt,
            duplicate,
            hold_until,
            reorder,
        }
    }

    /// Counts a frame held back as `fate` drew it.
    fn count_hold(&mut self, fate: Fate) {
        if fate.reorder {
            self.stats.reordered += 1;
        } else {
            self.stats.delayed += 1;
        }
    }

    /// A free hold buffer for a frame of `len` bytes, counted as taken until `due`.
    fn take_hold(&mut self, len: usize, due: Instant) -> Option<usize> {
        if len > self.frame {
            self.stats.held_full += 1;
            return None;
        }
        let index = self.holds[..self.held].iter().position(|h| h.due.is_none());
        match index {
            Some(i) => {
                self.holds[i] = Hold {
                    due: Some(due),
                    len,
                };
                Some(i)
            }
            None => {
                self.stats.held_full += 1;
                None
            }
        }
    }

    /// Flips one bit past the Ethernet header.
    fn corrupt(rng: &mut Rng, stats: &mut LinkStats, frame: &mut [u8]) {
        if frame.len() > ETHERNET_HEADER {
            let at = ETHERNET_HEADER + rng.below(frame.len() - ETHERNET_HEADER);
            frame[at] ^= 1 << rng.below(8);
            stats.corrupted += 1;
        }
    }

    /// Applies corruption and duplication to a frame that goes through now.
    fn harm(&mut self, fate: Fate, frame: &mut [u8], now: Instant) {
        if fate.corrupt {
            Self::corrupt(&mut self.rng, &mut self.stats, frame);
        }
        if fate.duplicate {
            if let Some(i) = self.take_hold(frame.len(), now) {
                self.buffer(i)[..frame.len()].copy_from_slice(frame);
                self.stats.duplicated += 1;
            }
        }
    }

    /// Puts a frame into a hold buffer until `due`, corrupting the held copy
    /// if so drawn; false if no buffer is free.
    fn hold(&mut self, fate: Fate, frame: &[u8], due: Instant) -> bool {
        let Some(i) = self.take_hold(frame.len(), due) else {
            return false;
        };
        self.count_hold(fate);
        let (len, start) = (frame.len(), i * self.frame);
        let held = &mut self.buffers[start..start + len];
        held.copy_from_slice(frame);
        if fate.corrupt {
            Self::corrupt(&mut self.rng, &mut self.stats, held);
        }
        true
    }

    fn has_free_hold(&self) -> bool {
        self.holds[..self.held].iter().any(|h| h.due.is_none())
    }

    /// The earliest held frame due by `now`.
    fn due(&self, now: Instant) -> Option<usize> {
        self.holds[..self.held]
            .iter()
            .enumerate()
            .filter(|(_, h)| h.due.is_some_and(|d| d <= now))
            .min_by_key(|(_, h)| h.due)
            .map(|(i, _)| i)
    }

    fn next_due(&self) -> Option<Instant> {
        self.holds[..self.held].iter().filter_map(|h| h.due).min()
    }
}
/// Why a link could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// More held frames asked for than [`MAX_HELD`].
    TooManyHeld,
    /// The storage is not [`storage_bytes`] long.
    Storage {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// The middleware: the board's device seen through a bad link.
pub struct BadLink<'s, D> {
    inner: D,
    rx: Side<'s>,
    tx: Side<'s>,
}

impl<'s, D: Device> BadLink<'s, D> {
    /// Wraps `inner`. The same `faults` apply both ways, drawn from
    /// generators derived from `seed`; up to `held` frames of up to `frame`
    /// bytes can be held per direction, in `storage`
    /// ([`storage_bytes`]`(held, frame)` bytes).
    pub fn new(
        inner: D,
        faults: Faults,
        seed: u64,
        held: usize,
        frame: usize,
        storage: &'s mut [u8],
    ) -> Result<Self, LinkError> {
        if held > MAX_HELD {
            return Err(LinkError::TooManyHeld);
        }
        let expected = storage_bytes(held, frame);
        if storage.len() != expected {
            return Err(LinkError::Storage {
                expected,
                got: storage.len(),
            });
        }
        let (rx, tx) = storage.split_at_mut(expected / 2);
        Ok(BadLink {
            inner,
            rx: Side::new(faults, seed, held, frame, rx),
            tx: Side::new(faults, seed.rotate_left(32) ^ 0xA5A5_A5A5, held, frame, tx),
        })
    }

    /// The device behind the link.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// What the link did to received and to sent frames.
    pub fn stats(&self) -> (LinkStats, LinkStats) {
        (self.rx.stats, self.tx.stats)
    }

    /// Publishes [`Self::stats`] in [`COUNTS`] for `INFO`.
    fn publish(&self) {
        COUNTS.rx.store(&self.rx.stats);
        COUNTS.tx.store(&self.tx.stats);
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
            let len = self.tx.holds[i].len;
            let frame = &self.tx.buffer(i)[..len];
            token.consume(len, |buf| buf.copy_from_slice(frame));
            self.tx.holds[i].due = None;
        }
    }
}

/// A received frame: straight from the device, or from a hold buffer.
pub struct BadRx<'a, 's, T> {
    source: RxSource<T>,
    side: &'a mut Side<'s>,
}

enum RxSource<T> {
    /// A frame of the device, harmed on consumption as drawn.
    Live { token: T, fate: Fate, now: Instant },
    /// A frame released from a hold buffer.
    Held { index: usize },
}

impl<T: RxToken> RxToken for BadRx<'_, '_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let BadRx { source, side } = self;
        match source {
            RxSource::Held { index } => {
                side.holds[index].due = None;
                let len = side.holds[index].len;
                f(&side.buffer(index)[..len])
            }
            RxSource::Live { token, fate, now } => token.consume(|frame| {
                if !(fate.corrupt || fate.duplicate) || frame.len() > side.frame {
                    return f(frame);
                }
                let len = frame.len();
                let scratch = core::mem::take(&mut side.scratch);
                scratch[..len].copy_from_slice(frame);
                side.harm(fate, &mut scratch[..len], now);
                let result = f(&scratch[..len]);
                side.scratch = scratch;
                result
            }),
        }
    }
}

/// A frame to send, judged as smoltcp writes it.
pub struct BadTx<'a, 's, T> {
    token: T,
    side: &'a mut Side<'s>,
    now: Instant,
}

impl<T: TxToken> TxToken for BadTx<'_, '_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let BadTx { token, side, now } = self;
        side.stats.frames += 1;
        let fate = side.draw(now);
        if len > side.frame {
            return token.consume(len, f);
        }
        if fate.drop {
            side.stats.dropped += 1;
            return f(&mut side.scratch[..len]);
        }
        if let Some(due) = fate.hold_until {
            if let Some(i) = side.take_hold(len, due) {
                side.count_hold(fate);
                let start = i * side.frame;
                let frame = &mut side.buffers[start..start + len];
                let result = f(frame);
                if fate.corrupt {
                    Side::corrupt(&mut side.rng, &mut side.stats, frame);
                }
                return result;
            }
        }
        token.consume(len, |frame| {
            let result = f(frame);
            side.harm(fate, frame, now);
            result
        })
    }
}

/// Frames examined per `receive` call before giving up (drops and holds
/// consume frames without delivering one).
const RX_ATTEMPTS: usize = 8;

impl<'s, D: Device> Device for BadLink<'s, D> {
    type RxToken<'a>
        = BadRx<'a, 's, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = BadTx<'a, 's, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.publish();
        self.release_tx(now);
        if let Some(index) = self.rx.due(now) {
            let tx = self.inner.transmit(now)?;
            return Some((
                BadRx {
                    source: RxSource::Held { index },
                    side: &mut self.rx,
                },
                BadTx {
                    token: tx,
                    side: &mut self.tx,
                    now,
                },
            ));
        }
        for _ in 0..RX_ATTEMPTS {
            // Drawn before the device is asked for a frame (a token handed
            // back borrows it); a draw with no frame to apply to is taken
            // back, so the faults and counts follow the frames, not the polls.
            let before = self.rx.rng.clone();
            let mut fate = self.rx.draw(now);
            let full = fate.hold_until.is_some() && !self.rx.has_free_hold();
            if full {
                fate.hold_until = None;
            }
            if fate.drop || fate.hold_until.is_some() {
                let Some((token, _)) = self.inner.receive(now) else {
                    self.rx.rng = before;
                    return None;
                };
                let side = &mut self.rx;
                side.stats.frames += 1;
                match fate.hold_until {
                    // A buffer is free; only a frame bigger than the buffers is lost.
                    Some(due) => token.consume(|frame| side.hold(fate, frame, due)),
                    None => {
                        token.consume(|_| ());
                        side.stats.dropped += 1;
                        false
                    }
                };
                continue;
            }
            let Some((token, tx)) = self.inner.receive(now) else {
                self.rx.rng = before;
                return None;
            };
            self.rx.stats.frames += 1;
            if full {
                self.rx.stats.held_full += 1;
            }
            return Some((
                BadRx {
                    source: RxSource::Live { token, fate, now },
                    side: &mut self.rx,
                },
                BadTx {
                    token: tx,
                    side: &mut self.tx,
                    now,
                },
            ));
        }
        None
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.publish();
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

#[cfg(test)]
mod test {
    extern crate std;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use super::*;
    use smoltcp::phy::Medium;

    /// A device whose receive queue the test fills and whose sent frames it reads.
    #[derive(Default)]
    struct Queue {
        incoming: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    struct QueueRx(Vec<u8>);
    struct QueueTx<'a>(&'a mut Vec<Vec<u8>>);

    impl RxToken for QueueRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl TxToken for QueueTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = std::vec![0; len];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    impl Device for Queue {
        type RxToken<'a> = QueueRx;
        type TxToken<'a> = QueueTx<'a>;
        fn receive(&mut self, _: Instant) -> Option<(QueueRx, QueueTx<'_>)> {
            let frame = self.incoming.pop_front()?;
            Some((QueueRx(frame), QueueTx(&mut self.sent)))
        }
        fn transmit(&mut self, _: Instant) -> Option<QueueTx<'_>> {
            Some(QueueTx(&mut self.sent))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ethernet;
            caps.max_transmission_unit = 1514;
            caps
        }
    }

    const FRAME: usize = 128;
    const HELD: usize = 4;

    fn frames(n: usize) -> VecDeque<Vec<u8>> {
        (0..n).map(|i| std::vec![i as u8; 60]).collect()
    }

    /// Receives every frame the link lets through, one call per simulated
    /// millisecond, so held frames come out too.
    fn receive_all(link: &mut BadLink<'_, Queue>) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for step in 0..10_000 {
            let now = Instant::from_millis(step);
            if let Some((rx, _)) = link.receive(now) {
                got.push(rx.consume(|f| f.to_vec()));
            }
            if link.inner.incoming.is_empty() && link.next_due().is_none() {
                break;
            }
        }
        got
    }

    fn link(storage: &mut [u8], faults: Faults, seed: u64, n: usize) -> BadLink<'_, Queue> {
        let queue = Queue {
            incoming: frames(n),
            sent: Vec::new(),
        };
        BadLink::new(queue, faults, seed, HELD, FRAME, storage).unwrap()
    }

    #[test]
    fn a_clean_link_passes_everything_in_order() {
        let mut storage = std::vec![0; storage_bytes(HELD, FRAME)];
        let mut l = link(&mut storage, Faults::default(), 1, 100);
        let got = receive_all(&mut l);
        assert_eq!(got, Vec::from(frames(100)));
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let faults = Faults {
            drop_ppm: Faults::ppm(10.0),
            corrupt_ppm: Faults::ppm(5.0),
            duplicate_ppm: Faults::ppm(5.0),
            reorder_ppm: Faults::ppm(5.0),
            ..Faults::default()
        };
        let run = |seed| {
            let mut storage = std::vec![0; storage_bytes(HELD, FRAME)];
            let mut l = link(&mut storage, faults, seed, 2000);
            (receive_all(&mut l), l.stats().0)
        };
        let (a, stats_a) = run(7);
        let (b, stats_b) = run(7);
        let (c, _) = run(8);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        assert_ne!(a, c);
        // 10 % of 2000 frames dropped, give or take.
        assert!((120..280).contains(&stats_a.dropped), "{stats_a:?}");
        assert!(
            stats_a.duplicated > 40 && stats_a.reordered > 40 && stats_a.corrupted > 40,
            "{stats_a:?}"
        );
        assert_eq!(a.len() as u64, 2000 - stats_a.dropped + stats_a.duplicated);
    }

    #[test]
    fn duplicates_arrive_twice_and_reordered_frames_late() {
        let mut storage = std::vec![0; storage_bytes(HELD, FRAME)];
        let faults = Faults {
            duplicate_ppm: MILLION,
            ..Faults::default()
        };
        let mut l = link(&mut storage, faults, 3, 3);
        let got = receive_all(&mut l);
        assert_eq!(got.len(), 6);
        for frame in frames(3) {
            assert_eq!(got.iter().filter(|g| **g == frame).count(), 2);
        }

        let faults = Faults {
            reorder_ppm: MILLION / 2,
            ..Faults::default()
        };
        let mut l = link(&mut storage, faults, 5, 50);
        let got = receive_all(&mut l);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, Vec::from(frames(50)), "nothing lost");
        assert_ne!(got, Vec::from(frames(50)), "some frames overtaken");
    }

    #[test]
    fn sent_frames_are_harmed_too() {
        let mut storage = std::vec![0; storage_bytes(HELD, FRAME)];
        let faults = Faults {
            drop_ppm: MILLION,
            ..Faults::default()
        };
        let mut l = link(&mut storage, faults, 1, 0);
        for _ in 0..10 {
            let token = l.transmit(Instant::ZERO).unwrap();
            token.consume(60, |buf| buf.fill(1));
        }
        assert!(l.inner.sent.is_empty());
        assert_eq!(l.stats().1.dropped, 10);
    }

    #[test]
    fn polls_without_frames_count_nothing_and_counts_are_published() {
        let faults = Faults {
            drop_ppm: Faults::ppm(50.0),
            reorder_ppm: Faults::ppm(50.0),
            ..Faults::default()
        };
        let mut storage = std::vec![0; storage_bytes(HELD, FRAME)];
        let mut l = link(&mut storage, faults, 9, 0);
        for step in 0..1000 {
            assert!(l.receive(Instant::from_millis(step)).is_none());
        }
        assert_eq!(l.stats().0, LinkStats::default());
        l.inner.incoming = frames(400);
        let got = receive_all(&mut l);
        let rx = l.stats().0;
        assert_eq!(rx.frames, 400);
        assert_eq!(got.len() as u64, 400 - rx.dropped, "{rx:?}");
        assert!((140..260).contains(&rx.dropped), "{rx:?}");
        assert!(rx.reordered + rx.held_full > 50, "{rx:?}");
        l.receive(Instant::from_millis(20_000));
        // Other tests' links publish too: this one's counts were there at
        // the last look.
        let published = COUNTS.rx.load();
        assert!(published.frames > 0, "{published:?}");
    }

    #[test]
    fn storage_of_the_wrong_size_is_refused() {
        let mut storage = std::vec![0; 10];
        let err = BadLink::new(
            Queue::default(),
            Faults::default(),
            1,
            HELD,
            FRAME,
            &mut storage,
        );
        assert!(matches!(err, Err(LinkError::Storage { .. })));
    }
}
