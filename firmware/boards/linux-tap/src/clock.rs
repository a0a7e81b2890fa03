//! The board's clocks: the monotonic millisecond clock the application runs
//! on, and the wall-clock time a capture is stamped with.

use std::time::{Instant as StdInstant, SystemTime, UNIX_EPOCH};

use socklab_app::smoltcp::phy::{Device, DeviceCapabilities};
use socklab_app::smoltcp::time::{Duration, Instant};

/// Time since the device started (monotonic), and the Unix time it started at.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: StdInstant,
    unix_at_start: Duration,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            started: StdInstant::now(),
            unix_at_start: Duration::from_micros(unix.as_micros() as u64),
        }
    }

    /// Monotonic time since the start: what the application runs on.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.started.elapsed().as_micros() as i64)
    }

    /// Turns a time of [`Clock::now`] into Unix time.
    pub fn wall(&self, at: Instant) -> Instant {
        at + self.unix_at_start
    }
}

/// Hands the device below wall-clock timestamps instead of the application's
/// monotonic ones, so that a pcap writer below stamps frames with the time of
/// day (Wireshark shows when they happened, not 1970).
pub struct WallClock<D> {
    pub inner: D,
    pub clock: Clock,
}

impl<D: Device> Device for WallClock<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(self.clock.wall(timestamp))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(self.clock.wall(timestamp))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}
