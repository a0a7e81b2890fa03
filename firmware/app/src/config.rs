//! What a board tells the application about its network identity and its pool.

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// The device's default Ethernet address (smoltcp's examples use the same).
pub const DEFAULT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
/// The device's default IPv4 address.
pub const DEFAULT_IPV4: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24);
/// The device's default IPv6 address.
pub const DEFAULT_IPV6: Ipv6Cidr = Ipv6Cidr::new(Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1), 64);
/// The host side of the default IPv4 network (the TAP's address).
pub const HOST_IPV4: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
/// The host side of the default IPv6 network.
pub const HOST_IPV6: Ipv6Address = Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 0x100);

/// Network identity of the device. `Config::default()` gives the README's defaults
/// (192.168.69.1/24, fdaa::1/64, 02:00:00:00:00:01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Board name shown by `INFO`.
    pub board: &'static str,
    /// Ethernet address.
    pub mac: EthernetAddress,
    /// Static IPv4 address; with `dhcp` it is the fallback until a lease arrives.
    pub ipv4: Ipv4Cidr,
    /// IPv6 address.
    pub ipv6: Ipv6Cidr,
    /// IPv4 default gateway, if any.
    pub gateway4: Option<Ipv4Address>,
    /// IPv6 default gateway, if any.
    pub gateway6: Option<Ipv6Address>,
    /// Ask for an IPv4 lease with DHCPv4 (QEMU user networking).
    pub dhcp: bool,
    /// Seed for TCP initial sequence numbers; a board passes something that
    /// differs from boot to boot.
    pub random_seed: u64,
    /// When the device gives up on a client.
    pub timeouts: Timeouts,
    /// What a client meets when every lab slot is busy.
    pub backlog: BacklogPolicy,
    /// The board's checksum and segmentation offloads, as `INFO` shows them:
    /// `none` on a board without any, otherwise the board's own words
    /// (`on`, `off`, `off-<reason>`).
    pub offload: &'static str,
}

/// What a lab client meets when every slot is busy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BacklogPolicy {
    /// Its connection waits in the backlog, in arrival order, and gets its
    /// `HELLO` when a slot frees (like a listen queue). Beyond the backlog it
    /// is refused.
    #[default]
    Wait,
    /// It is refused (RST): the backlog is not used.
    Refuse,
    /// It is accepted, told `ERR busy`, and closed.
    Busy,
}

impl BacklogPolicy {
    /// The name `INFO` shows.
    pub fn name(self) -> &'static str {
        match self {
            BacklogPolicy::Wait => "wait",
            BacklogPolicy::Refuse => "refuse",
            BacklogPolicy::Busy => "busy",
        }
    }
}

/// Default for [`Timeouts::idle_ms`]: a lab client that sends nothing for two
/// minutes gets `BYE idle` and is closed.
pub const IDLE_TIMEOUT_MS: u64 = 120_000;
/// Default for [`Timeouts::slow_reader_ms`]: a client that leaves its output
/// unread this long, while more is waiting for it, is disconnected.
pub const SLOW_READER_TIMEOUT_MS: u64 = 10_000;
/// Default for [`Timeouts::handshake_ms`]: a connection that does not finish
/// its handshake in this time frees its slot.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Default for [`Timeouts::closing_ms`]: after `BYE` (or the peer's FIN) a
/// connection that has not finished closing in this time is aborted.
pub const CLOSING_TIMEOUT_MS: u64 = 5_000;
/// Keep-alive probe interval on every connection, so a vanished peer is noticed.
pub const KEEP_ALIVE_MS: u64 = 10_000;
/// A connection whose peer acknowledges nothing (data or keep-alive) for this
/// long is aborted by the stack.
pub const DEAD_PEER_MS: u64 = 30_000;

/// Default for [`Timeouts::http_request_ms`]: an HTTP request head unfinished
/// this long is answered 408 Request Timeout and the connection closed.
pub const HTTP_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Default for [`Timeouts::http_idle_ms`]: an HTTP keep-alive connection with
/// no request this long is closed.
pub const HTTP_IDLE_TIMEOUT_MS: u64 = 15_000;

/// When the device gives up on a client, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Lab client silent this long: `BYE idle`, then closed.
    pub idle_ms: u64,
    /// Output left unread this long: disconnected, with a log line.
    pub slow_reader_ms: u64,
    /// Handshake unfinished this long (a SYN flood): the slot listens again.
    pub handshake_ms: u64,
    /// Close unfinished this long (a peer that ignores our FIN): aborted.
    pub closing_ms: u64,
    /// Keep-alive probe interval on every connection.
    pub keep_alive_ms: u64,
    /// A peer that acknowledges nothing (data or keep-alive) this long is
    /// dropped by the stack: a vanished client frees its socket.
    pub dead_peer_ms: u64,
    /// HTTP request head unfinished this long: 408, then closed.
    pub http_request_ms: u64,
    /// HTTP keep-alive connection without a request this long: closed.
    pub http_idle_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle_ms: IDLE_TIMEOUT_MS,
            slow_reader_ms: SLOW_READER_TIMEOUT_MS,
            handshake_ms: HANDSHAKE_TIMEOUT_MS,
            closing_ms: CLOSING_TIMEOUT_MS,
            keep_alive_ms: KEEP_ALIVE_MS,
            dead_peer_ms: DEAD_PEER_MS,
            http_request_ms: HTTP_REQUEST_TIMEOUT_MS,
            http_idle_ms: HTTP_IDLE_TIMEOUT_MS,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            board: "unknown",
            mac: DEFAULT_MAC,
            ipv4: DEFAULT_IPV4,
            ipv6: DEFAULT_IPV6,
            gateway4: None,
            gateway6: None,
            dhcp: false,
            random_seed: 0x5eed_50c1_1ab0_0001,
            timeouts: Timeouts::default(),
            backlog: BacklogPolicy::Wait,
            offload: "none",
        }
    }
}
