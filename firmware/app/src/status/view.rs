//! The read-only view of the device every service is polled with: its
//! configuration, addresses, uptime and connection history.

use crate::board::config::Config;
use crate::status::events::Events;
use crate::wire::protocol::IfaceRow;
use smoltcp::time::{Duration, Instant};

/// A snapshot of the device taken at the start of a poll.
pub(crate) struct View<'v> {
    /// The board's configuration.
    pub config: &'v Config,
    /// Each network interface as it is now, as `IFCONFIG` shows it, the
    /// first one first.
    pub nets: &'v [IfaceRow<'static>],
    /// When the application started.
    pub started: Instant,
    /// Socket buffer bytes of the whole device.
    pub buffer_bytes: usize,
    /// The connection state changes seen so far.
    pub events: &'v Events,
}

impl View<'_> {
    /// Time since the application started, as of `now`.
    pub fn uptime(&self, now: Instant) -> Duration {
        now - self.started
    }
}
