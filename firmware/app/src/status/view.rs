//! The read-only view of the device every service is polled with: its
//! configuration, addresses, uptime and connection history.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Cidr;

use crate::board::config::Config;
use crate::status::events::Events;

/// A snapshot of the device taken at the start of a poll.
pub(crate) struct View<'v> {
    /// The board's configuration.
    pub config: &'v Config,
    /// The IP MTU.
    pub mtu: usize,
    /// The IPv4 address in use (static, or from DHCP).
    pub ipv4: Option<Ipv4Cidr>,
    /// Where that address came from (`static`, `dhcp`, `dhcp-fallback`).
    pub ipv4_source: &'static str,
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
