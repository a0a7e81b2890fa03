//! The board's clocks: the monotonic millisecond clock the application runs
//! on, and the wall-clock time a capture is stamped with.

use std::time::{Instant as StdInstant, SystemTime, UNIX_EPOCH};

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
