//! The read-only view of the device every service is polled with: its
//! configuration, addresses, uptime and connection history.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Cidr;

use crate::board::config::{Config, NetConfig};
use crate::status::events::Events;

/// A snapshot of the device taken at the start of a poll.
pub(crate) struct View<'v> {
    /// The board's configuration.
    pub config: &'v Config,
    /// Each network interface as it is now, the first one first.
    pub nets: &'v [NetStatus],
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

/// One network interface as it is at the start of a poll: what `IFCONFIG` shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetStatus {
    /// Its configuration (MAC, static addresses).
    pub config: NetConfig,
    /// The IPv4 address in use (static, or from DHCP).
    pub ipv4: Option<Ipv4Cidr>,
    /// Where that address came from (`static`, `dhcp`, `dhcp-fallback`).
    pub ipv4_source: &'static str,
    /// The IP MTU.
    pub mtu: usize,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received, Ethernet headers included.
    pub rx_bytes: u64,
    /// Frames received for another unicast Ethernet address.
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent, Ethernet headers included.
    pub tx_bytes: u64,
    /// Sends the device had no buffer for (retried on the next poll).
    pub tx_dropped: u64,
}
