//! What a board tells the application about its network identity and its pool, and
//! the rules every board's options meet: each timeout's range, a usable address.

use core::fmt;

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use crate::wire::protocol::Mac;

/// The device's default Ethernet address (smoltcp's examples use the same).
pub const DEFAULT_MAC: EthernetAddress = NetConfig::default_for(0).mac;
/// The device's default IPv4 address.
pub const DEFAULT_IPV4: Ipv4Cidr = NetConfig::default_for(0).ipv4;
/// The device's default IPv6 address.
pub const DEFAULT_IPV6: Ipv6Cidr = NetConfig::default_for(0).ipv6;
/// The host side of the default IPv4 network (the TAP's address).
pub const HOST_IPV4: Ipv4Address = NetConfig::host_side(0).0;
/// The host side of the default IPv6 network.
pub const HOST_IPV6: Ipv6Address = NetConfig::host_side(0).1;

/// The most network interfaces one device serves: the size of [`Nets`], 2 with the
/// `two-networks` feature, else 1 (each interface is a whole smoltcp `Interface`,
/// its IP buffers included). A board may serve fewer than it has room for; `INFO`
/// shows both.
pub const MAX_NETS: usize = if cfg!(feature = "two-networks") { 2 } else { 1 };

/// One network interface's identity. [`NetConfig::default_for`] gives each
/// interface's defaults: 192.168.69.1/24, fdaa::1/64, 02:00:00:00:00:01 for the
/// first, 192.168.70.1/24, fdab::1/64, 02:00:00:00:00:02 for the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
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
    /// Ask for an IPv4 lease with DHCPv4 (QEMU user networking). Only the first
    /// interface may: smoltcp's DHCP socket is tied to no interface, so in the
    /// one socket set every interface shares it would answer on whichever
    /// interface polled first.
    pub dhcp: bool,
}

impl NetConfig {
    /// Interface `index`'s defaults: network 192.168.(69 + index).0/24, fda(a + index)::/64,
    /// MAC 02:00:00:00:00:(01 + index), no gateway, no DHCP.
    pub const fn default_for(index: usize) -> NetConfig {
        let i = index as u8;
        NetConfig {
            mac: EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01 + i]),
            ipv4: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69 + i, 1), 24),
            ipv6: Ipv6Cidr::new(Ipv6Address::new(0xfdaa + i as u16, 0, 0, 0, 0, 0, 0, 1), 64),
            gateway4: None,
            gateway6: None,
            dhcp: false,
        }
    }

    /// The host side of interface `index`'s default network (the TAP's addresses):
    /// 192.168.(69 + index).100 and fda(a + index)::100.
    pub const fn host_side(index: usize) -> (Ipv4Address, Ipv6Address) {
        let i = index as u8;
        (
            Ipv4Address::new(192, 168, 69 + i, 100),
            Ipv6Address::new(0xfdaa + i as u16, 0, 0, 0, 0, 0, 0, 0x100),
        )
    }

    /// Checks the addresses and gateways (see [`check_mac`], [`check_ipv4`],
    /// [`check_ipv6`], [`check_gateway4`], [`check_gateway6`]).
    pub fn check(&self) -> Result<(), AddressError> {
        check_mac(self.mac)?;
        check_ipv4(self.ipv4)?;
        check_ipv6(self.ipv6)?;
        if let Some(gateway) = self.gateway4 {
            check_gateway4(gateway, self.ipv4)?;
        }
        if let Some(gateway) = self.gateway6 {
            check_gateway6(gateway, self.ipv6)?;
        }
        Ok(())
    }
}

/// The device's network interfaces, one to [`MAX_NETS`], in order: interface
/// `i` is the board's NIC `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nets {
    list: [NetConfig; MAX_NETS],
    len: usize,
}

impl Nets {
    /// One interface.
    pub const fn one(net: NetConfig) -> Nets {
        let mut list = [net; MAX_NETS];
        let mut i = 1;
        while i < MAX_NETS {
            list[i] = NetConfig::default_for(i);
            i += 1;
        }
        Nets { list, len: 1 }
    }

    /// Adds interface `len()`; fails with the interface when [`MAX_NETS`] are there.
    pub fn push(&mut self, net: NetConfig) -> Result<(), NetConfig> {
        if self.len == MAX_NETS {
            return Err(net);
        }
        self.list[self.len] = net;
        self.len += 1;
        Ok(())
    }

    /// Keeps the first `len` interfaces (at least one).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len.max(1));
    }
}

impl core::ops::Deref for Nets {
    type Target = [NetConfig];
    fn deref(&self) -> &[NetConfig] {
        &self.list[..self.len]
    }
}

impl core::ops::DerefMut for Nets {
    fn deref_mut(&mut self) -> &mut [NetConfig] {
        &mut self.list[..self.len]
    }
}

/// What a board tells the application: its name, its network interfaces, its
/// timeouts and its health. `Config::default()` gives the README's defaults
/// (one interface: 192.168.69.1/24, fdaa::1/64, 02:00:00:00:00:01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Board name shown by `INFO`.
    pub board: &'static str,
    /// The network interfaces, the first one first.
    pub nets: Nets,
    /// The most interfaces the board drives (at most [`MAX_NETS`]), as `INFO` shows it.
    pub max_nets: usize,
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
    /// What the board knows about its own health (boot reason, stack), as
    /// `INFO` shows it; every field `None` on a board that keeps none.
    pub status: BoardStatus,
}

/// Why the device booted, as a board that keeps a boot record tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootReason {
    /// The first boot after power was applied: no boot record in RAM.
    PowerOn,
    /// The watchdog reset the device: the serve loop stopped feeding it.
    Watchdog,
    /// A reset asked for by software (the CPU's or the machine's reset
    /// request), with the boot record intact.
    SoftwareReset,
    /// A fault or panic reset the device after its report.
    Fault,
}

impl BootReason {
    /// The name `INFO` shows.
    pub fn name(self) -> &'static str {
        match self {
            BootReason::PowerOn => "power-on",
            BootReason::Watchdog => "watchdog",
            BootReason::SoftwareReset => "software-reset",
            BootReason::Fault => "fault",
        }
    }
}

/// The board-facing half of the device's own health keys in `INFO`: the board
/// fills it in before [`crate::App::new`]; a field left `None` shows as `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoardStatus {
    /// Why this boot happened (`boot_reason`).
    pub boot_reason: Option<BootReason>,
    /// Boots since power-on, this one included (`boot_count`).
    pub boot_count: Option<u32>,
    /// Bytes reserved for the stack (`stack_reserved`).
    pub stack_reserved: Option<usize>,
    /// Measures the stack's high-water mark in bytes (`stack_used`): called
    /// when `INFO` is read.
    pub stack_used: Option<StackMeter>,
    /// The watchdog's timeout: a serve loop that does not come round in this
    /// time resets the device (`watchdog_ms`).
    pub watchdog_ms: Option<u32>,
}

/// A board's measure of its stack's high-water mark, in bytes.
#[derive(Clone, Copy)]
pub struct StackMeter(pub fn() -> usize);

impl fmt::Debug for StackMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StackMeter")
    }
}

/// Two meters are equal when both measure: a board has one stack.
impl PartialEq for StackMeter {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for StackMeter {}

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

/// The shortest timeout any option takes: below it a timer fires on every poll.
pub const TIMEOUT_MIN_MS: u64 = 100;
/// One hour, in milliseconds.
const HOUR_MS: u64 = 3_600_000;
/// Longest idle time (`--idle-timeout-ms`): a day.
pub const IDLE_TIMEOUT_MAX_MS: u64 = 24 * HOUR_MS;
/// Longest slow-reader time (`--slow-reader-timeout-ms`): an hour.
pub const SLOW_READER_TIMEOUT_MAX_MS: u64 = HOUR_MS;
/// Longest handshake time (`--handshake-timeout-ms`): ten minutes.
pub const HANDSHAKE_TIMEOUT_MAX_MS: u64 = 600_000;
/// Longest closing time (`--closing-timeout-ms`): ten minutes.
pub const CLOSING_TIMEOUT_MAX_MS: u64 = 600_000;
/// Longest keep-alive interval (`--keep-alive-ms`): two hours (Linux's default).
pub const KEEP_ALIVE_MAX_MS: u64 = 2 * HOUR_MS;
/// Longest dead-peer time (`--dead-peer-ms`): a day.
pub const DEAD_PEER_MAX_MS: u64 = 24 * HOUR_MS;
/// Longest HTTP request time (`--http-request-timeout-ms`): ten minutes.
pub const HTTP_REQUEST_TIMEOUT_MAX_MS: u64 = 600_000;
/// Longest HTTP keep-alive idle time (`--http-idle-timeout-ms`): a day.
pub const HTTP_IDLE_TIMEOUT_MAX_MS: u64 = 24 * HOUR_MS;

/// One timeout as an option of every board: its name, its range, its field.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutOption {
    /// The option's name without the leading `--`, e.g. `idle-timeout-ms`.
    pub name: &'static str,
    /// The shortest value taken, in milliseconds.
    pub min_ms: u64,
    /// The longest value taken, in milliseconds.
    pub max_ms: u64,
    /// The value without the option.
    pub default_ms: u64,
    field: fn(&mut Timeouts) -> &mut u64,
}

/// Every timeout option, the same on every board (linux-tap's flags, the QEMU images'
/// boot options): values outside `min_ms..=max_ms` are refused.
pub static TIMEOUT_OPTIONS: [&TimeoutOption; 8] = [
    &IDLE_TIMEOUT,
    &SLOW_READER_TIMEOUT,
    &HANDSHAKE_TIMEOUT,
    &CLOSING_TIMEOUT,
    &KEEP_ALIVE,
    &DEAD_PEER,
    &HTTP_REQUEST_TIMEOUT,
    &HTTP_IDLE_TIMEOUT,
];

/// `--idle-timeout-ms`.
pub static IDLE_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "idle-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: IDLE_TIMEOUT_MAX_MS,
    default_ms: IDLE_TIMEOUT_MS,
    field: |t| &mut t.idle_ms,
};
/// `--slow-reader-timeout-ms`.
pub static SLOW_READER_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "slow-reader-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: SLOW_READER_TIMEOUT_MAX_MS,
    default_ms: SLOW_READER_TIMEOUT_MS,
    field: |t| &mut t.slow_reader_ms,
};
/// `--handshake-timeout-ms`.
pub static HANDSHAKE_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "handshake-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: HANDSHAKE_TIMEOUT_MAX_MS,
    default_ms: HANDSHAKE_TIMEOUT_MS,
    field: |t| &mut t.handshake_ms,
};
/// `--closing-timeout-ms`.
pub static CLOSING_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "closing-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: CLOSING_TIMEOUT_MAX_MS,
    default_ms: CLOSING_TIMEOUT_MS,
    field: |t| &mut t.closing_ms,
};
/// `--keep-alive-ms`.
pub static KEEP_ALIVE: TimeoutOption = TimeoutOption {
    name: "keep-alive-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: KEEP_ALIVE_MAX_MS,
    default_ms: KEEP_ALIVE_MS,
    field: |t| &mut t.keep_alive_ms,
};
/// `--dead-peer-ms`.
pub static DEAD_PEER: TimeoutOption = TimeoutOption {
    name: "dead-peer-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: DEAD_PEER_MAX_MS,
    default_ms: DEAD_PEER_MS,
    field: |t| &mut t.dead_peer_ms,
};
/// `--http-request-timeout-ms`.
pub static HTTP_REQUEST_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "http-request-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: HTTP_REQUEST_TIMEOUT_MAX_MS,
    default_ms: HTTP_REQUEST_TIMEOUT_MS,
    field: |t| &mut t.http_request_ms,
};
/// `--http-idle-timeout-ms`.
pub static HTTP_IDLE_TIMEOUT: TimeoutOption = TimeoutOption {
    name: "http-idle-timeout-ms",
    min_ms: TIMEOUT_MIN_MS,
    max_ms: HTTP_IDLE_TIMEOUT_MAX_MS,
    default_ms: HTTP_IDLE_TIMEOUT_MS,
    field: |t| &mut t.http_idle_ms,
};

impl TimeoutOption {
    /// The option whose name (with or without the leading `--`) is `option`.
    pub fn find(option: &str) -> Option<&'static TimeoutOption> {
        let name = option.strip_prefix("--").unwrap_or(option);
        TIMEOUT_OPTIONS.iter().copied().find(|t| t.name == name)
    }

    /// Reads `text` as this option's value: a whole number of milliseconds in range.
    pub fn parse<'a>(&'static self, text: &'a str) -> Result<u64, TimeoutError<'a>> {
        let error = TimeoutError {
            option: self,
            value: text,
        };
        let value: u64 = text.parse().map_err(|_| error)?;
        if !(self.min_ms..=self.max_ms).contains(&value) {
            return Err(error);
        }
        Ok(value)
    }

    /// This option's value in `timeouts`.
    pub fn get(&self, timeouts: &Timeouts) -> u64 {
        let mut copy = *timeouts;
        *(self.field)(&mut copy)
    }

    /// Sets this option's value in `timeouts`.
    pub fn set(&self, timeouts: &mut Timeouts, ms: u64) {
        *(self.field)(timeouts) = ms;
    }
}

/// A timeout value outside its option's range (or not a number).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutError<'a> {
    /// The option.
    pub option: &'static TimeoutOption,
    /// What was given.
    pub value: &'a str,
}

impl PartialEq for TimeoutError<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.option.name == other.option.name && self.value == other.value
    }
}

impl Eq for TimeoutError<'_> {}

impl fmt::Display for TimeoutError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.option;
        write!(
            f,
            "option --{}: `{}` is not a timeout from {} to {} ms: give a whole number of \
             milliseconds in that range (default {})",
            t.name, self.value, t.min_ms, t.max_ms, t.default_ms
        )
    }
}

/// An address a device cannot take; `Display` names the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// An Ethernet address that is all zero, multicast or broadcast.
    Mac(EthernetAddress, &'static str),
    /// An IPv4 address or prefix that breaks the named rule.
    Ipv4(Ipv4Cidr, &'static str),
    /// An IPv6 address or prefix that breaks the named rule.
    Ipv6(Ipv6Cidr, &'static str),
    /// A gateway that breaks the named rule.
    Gateway(&'static str),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Mac(mac, rule) => write!(
                f,
                "MAC {} {rule}; give a unicast address (first byte even, not all zero), \
                 e.g. 02:00:00:00:00:01",
                Mac(*mac)
            ),
            AddressError::Ipv4(cidr, rule) => write!(
                f,
                "IPv4 address {cidr} {rule}; give a unicast host address with a prefix \
                 from /1 to /32, e.g. {DEFAULT_IPV4}"
            ),
            AddressError::Ipv6(cidr, rule) => write!(
                f,
                "IPv6 address {cidr} {rule}; give a unicast host address with a prefix \
                 from /1 to /128, e.g. {DEFAULT_IPV6}"
            ),
            AddressError::Gateway(rule) => write!(f, "gateway {rule}"),
        }
    }
}

/// Checks that `mac` can be a device's Ethernet address: not all zero, not
/// multicast, not broadcast.
pub fn check_mac(mac: EthernetAddress) -> Result<(), AddressError> {
    let rule = if mac.is_broadcast() {
        "is the broadcast address"
    } else if mac.is_multicast() {
        "is a multicast address (first byte odd)"
    } else if mac.0 == [0; 6] {
        "is all zero"
    } else {
        return Ok(());
    };
    Err(AddressError::Mac(mac, rule))
}

/// Checks that `cidr` can be a device's IPv4 address: a prefix from /1 to /32, a
/// unicast address that is not 0.0.0.0, not in 127.0.0.0/8, and (up to /30) neither
/// its subnet's network nor its broadcast address.
pub fn check_ipv4(cidr: Ipv4Cidr) -> Result<(), AddressError> {
    let ip = cidr.address();
    let rule = if cidr.prefix_len() == 0 {
        "has prefix /0 (every address on the link)"
    } else if ip.is_unspecified() {
        "is the unspecified address 0.0.0.0"
    } else if ip.is_broadcast() {
        "is the broadcast address"
    } else if ip.is_multicast() {
        "is a multicast address (224.0.0.0/4)"
    } else if ip.is_loopback() {
        "is a loopback address (127.0.0.0/8)"
    } else if cidr.prefix_len() <= 30 && cidr.broadcast() == Some(ip) {
        "is its subnet's broadcast address"
    } else if cidr.prefix_len() <= 30 && cidr.network().address() == ip {
        "is its subnet's network address"
    } else {
        return Ok(());
    };
    Err(AddressError::Ipv4(cidr, rule))
}

/// Checks that `cidr` can be a device's IPv6 address: a prefix from /1 to /128, a
/// unicast address that is not `::` or `::1`, and (up to /126) not its subnet's
/// all-zero address (the subnet-router anycast address).
pub fn check_ipv6(cidr: Ipv6Cidr) -> Result<(), AddressError> {
    let ip = cidr.address();
    let rule = if cidr.prefix_len() == 0 {
        "has prefix /0 (every address on the link)"
    } else if ip.is_unspecified() {
        "is the unspecified address ::"
    } else if ip.is_loopback() {
        "is the loopback address ::1"
    } else if ip.is_multicast() {
        "is a multicast address (ff00::/8)"
    } else if cidr.prefix_len() <= 126 && ip.to_bits() & (u128::MAX >> cidr.prefix_len()) == 0 {
        "is its subnet's all-zero (subnet-router anycast) address"
    } else {
        return Ok(());
    };
    Err(AddressError::Ipv6(cidr, rule))
}

/// Checks that `gateway` can be the device's IPv4 gateway: a unicast address in its
/// subnet, other than its own.
pub fn check_gateway4(gateway: Ipv4Address, cidr: Ipv4Cidr) -> Result<(), AddressError> {
    check_ipv4(Ipv4Cidr::new(gateway, cidr.prefix_len())).map_err(|_| {
        AddressError::Gateway("must be a unicast host address in the device's IPv4 subnet")
    })?;
    if !cidr.contains_addr(&gateway) {
        return Err(AddressError::Gateway(
            "must be in the device's IPv4 subnet (a gateway is reached directly)",
        ));
    }
    if gateway == cidr.address() {
        return Err(AddressError::Gateway(
            "must not be the device's own address",
        ));
    }
    Ok(())
}

/// Checks that `gateway` can be the device's IPv6 gateway: a unicast address other
/// than its own.
pub fn check_gateway6(gateway: Ipv6Address, cidr: Ipv6Cidr) -> Result<(), AddressError> {
    if gateway.is_unspecified() || gateway.is_loopback() || gateway.is_multicast() {
        return Err(AddressError::Gateway(
            "must be a unicast IPv6 address (not ::, ::1 or multicast)",
        ));
    }
    if gateway == cidr.address() {
        return Err(AddressError::Gateway(
            "must not be the device's own address",
        ));
    }
    Ok(())
}

/// Why two interfaces cannot be on one device: by their indices (0 is the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetsError {
    /// Both have this Ethernet address.
    SameMac(usize, usize, EthernetAddress),
    /// Their IPv4 subnets overlap: a reply could leave by either.
    Ipv4Overlap(usize, usize, Ipv4Cidr, Ipv4Cidr),
    /// Their IPv6 subnets overlap.
    Ipv6Overlap(usize, usize, Ipv6Cidr, Ipv6Cidr),
    /// DHCP asked on an interface other than the first.
    DhcpNotFirst(usize),
}

impl fmt::Display for NetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetsError::SameMac(a, b, mac) => write!(
                f,
                "interfaces {} and {} both have MAC {}: give each its own (--mac after each --tap)",
                a + 1,
                b + 1,
                Mac(*mac)
            ),
            NetsError::Ipv4Overlap(a, b, x, y) => write!(
                f,
                "interfaces {} and {} have overlapping IPv4 subnets {x} and {y}: give each \
                 network its own subnet (e.g. 192.168.69.1/24 and 192.168.70.1/24)",
                a + 1,
                b + 1
            ),
            NetsError::Ipv6Overlap(a, b, x, y) => write!(
                f,
                "interfaces {} and {} have overlapping IPv6 subnets {x} and {y}: give each \
                 network its own prefix (e.g. fdaa::1/64 and fdab::1/64)",
                a + 1,
                b + 1
            ),
            NetsError::DhcpNotFirst(i) => write!(
                f,
                "interface {} asks for DHCP: only the first interface may",
                i + 1
            ),
        }
    }
}

/// Checks that the interfaces can share one device: distinct MACs, subnets that do
/// not overlap (each reply must have one way out), DHCP on the first only.
pub fn check_nets(nets: &[NetConfig]) -> Result<(), NetsError> {
    for (a, x) in nets.iter().enumerate() {
        if a > 0 && x.dhcp {
            return Err(NetsError::DhcpNotFirst(a));
        }
        for (b, y) in nets.iter().enumerate().skip(a + 1) {
            if x.mac == y.mac {
                return Err(NetsError::SameMac(a, b, x.mac));
            }
            let prefix = x.ipv4.prefix_len().min(y.ipv4.prefix_len());
            if Ipv4Cidr::new(x.ipv4.address(), prefix).contains_addr(&y.ipv4.address()) {
                return Err(NetsError::Ipv4Overlap(a, b, x.ipv4, y.ipv4));
            }
            let prefix = x.ipv6.prefix_len().min(y.ipv6.prefix_len());
            if Ipv6Cidr::new(x.ipv6.address(), prefix).contains_addr(&y.ipv6.address()) {
                return Err(NetsError::Ipv6Overlap(a, b, x.ipv6, y.ipv6));
            }
        }
    }
    Ok(())
}

/// A [`Config`] a device cannot run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// An address it cannot take.
    Address(AddressError),
    /// Two interfaces that cannot share the device.
    Nets(NetsError),
    /// A timeout out of its range: the option and the value.
    Timeout(&'static TimeoutOption, u64),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Address(error) => error.fmt(f),
            ConfigError::Nets(error) => error.fmt(f),
            ConfigError::Timeout(t, ms) => write!(
                f,
                "option --{}: {ms} ms is not a timeout from {} to {} ms",
                t.name, t.min_ms, t.max_ms
            ),
        }
    }
}

impl core::error::Error for AddressError {}

impl core::error::Error for ConfigError {}

impl core::error::Error for NetsError {}

impl From<NetsError> for ConfigError {
    fn from(error: NetsError) -> Self {
        ConfigError::Nets(error)
    }
}

impl From<AddressError> for ConfigError {
    fn from(error: AddressError) -> Self {
        ConfigError::Address(error)
    }
}

impl PartialEq for TimeoutOption {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeoutOption {}

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

impl Config {
    /// Checks everything a board's options set: the addresses (see [`check_mac`],
    /// [`check_ipv4`], [`check_ipv6`], the gateways) and every timeout's range. A board
    /// calls it before [`crate::App::new`], whose network stack would panic on a
    /// multicast address.
    pub fn check(&self) -> Result<(), ConfigError> {
        for net in self.nets.iter() {
            net.check()?;
        }
        check_nets(&self.nets)?;
        for option in TIMEOUT_OPTIONS {
            let ms = option.get(&self.timeouts);
            if !(option.min_ms..=option.max_ms).contains(&ms) {
                return Err(ConfigError::Timeout(option, ms));
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            board: "unknown",
            nets: Nets::one(NetConfig::default_for(0)),
            max_nets: 1,
            random_seed: 0x5eed_50c1_1ab0_0001,
            timeouts: Timeouts::default(),
            backlog: BacklogPolicy::Wait,
            offload: "none",
            status: BoardStatus::default(),
        }
    }
}

#[cfg(test)]
mod test {
    extern crate std;
    use std::string::ToString;

    use super::*;

    fn v4(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    fn v6(text: &str) -> Ipv6Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_a_device_cannot_take_are_refused_with_their_rule() {
        for (cidr, rule) in [
            ("224.0.0.1/24", "multicast"),
            ("255.255.255.255/24", "broadcast address"),
            ("0.0.0.0/24", "unspecified"),
            ("127.0.0.1/8", "loopback"),
            ("192.168.69.255/24", "subnet's broadcast"),
            ("192.168.69.0/24", "network address"),
            ("192.168.69.1/0", "/0"),
        ] {
            let error = check_ipv4(v4(cidr)).unwrap_err().to_string();
            assert!(error.contains(rule), "{cidr}: {error}");
        }
        for cidr in [
            "192.168.69.1/24",
            "10.0.0.1/31",
            "10.0.0.0/31",
            "10.0.0.7/32",
        ] {
            check_ipv4(v4(cidr)).unwrap();
        }
        for (cidr, rule) in [
            ("ff02::1/64", "multicast"),
            ("::/64", "unspecified"),
            ("::1/128", "loopback"),
            ("fdaa::/64", "all-zero"),
            ("fdaa::1/0", "/0"),
        ] {
            let error = check_ipv6(v6(cidr)).unwrap_err().to_string();
            assert!(error.contains(rule), "{cidr}: {error}");
        }
        check_ipv6(v6("fdaa::1/64")).unwrap();
        check_ipv6(v6("fe80::1/64")).unwrap();
        for (mac, rule) in [
            ([0u8; 6], "all zero"),
            ([0xff; 6], "broadcast"),
            ([0x01, 0, 0x5e, 0, 0, 1], "multicast"),
        ] {
            let error = check_mac(EthernetAddress(mac)).unwrap_err().to_string();
            assert!(error.contains(rule), "{mac:?}: {error}");
        }
        check_mac(DEFAULT_MAC).unwrap();
        let net = DEFAULT_IPV4;
        check_gateway4(Ipv4Address::new(192, 168, 69, 100), net).unwrap();
        for gateway in [
            Ipv4Address::new(10, 0, 0, 1),
            Ipv4Address::new(192, 168, 69, 255),
            Ipv4Address::new(192, 168, 69, 1),
        ] {
            assert!(check_gateway4(gateway, net).is_err(), "{gateway}");
        }
        assert!(
            check_gateway6(Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1), DEFAULT_IPV6).is_err()
        );
        check_gateway6(HOST_IPV6, DEFAULT_IPV6).unwrap();
    }

    #[test]
    fn check_covers_the_whole_config() {
        Config::default().check().unwrap();
        let mut config = Config::default();
        config.timeouts.keep_alive_ms = u64::MAX;
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("--keep-alive-ms"), "{error}");
        let mut config = Config::default();
        config.nets[0].mac = EthernetAddress([0xff; 6]);
        assert!(matches!(config.check(), Err(ConfigError::Address(_))));
    }

    #[test]
    #[cfg(feature = "two-networks")]
    fn two_interfaces_need_their_own_mac_subnets_and_no_second_dhcp() {
        let mut config = Config::default();
        config.nets.push(NetConfig::default_for(1)).unwrap();
        config.check().unwrap();
        assert_eq!(config.nets.len(), 2);
        assert!(config.nets.push(NetConfig::default_for(2)).is_err());
        for (change, words) in [
            (
                (|n: &mut NetConfig| n.mac = DEFAULT_MAC) as fn(&mut NetConfig),
                "both have MAC",
            ),
            (|n| n.ipv4 = v4("192.168.69.200/16"), "overlapping IPv4"),
            (|n| n.ipv4 = v4("192.168.69.7/32"), "overlapping IPv4"),
            (|n| n.ipv6 = v6("fdaa::2/48"), "overlapping IPv6"),
            (|n| n.dhcp = true, "only the first"),
        ] {
            let mut bad = config;
            change(&mut bad.nets[1]);
            let error = bad.check().unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
        }
    }
}
