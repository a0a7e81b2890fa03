//! The services of the device and the table the application polls them from.
//!
//! Each service is one module that implements `Service`
//! (its poll) and `Inventory` (what the reports read).
//! It declares its ports and its `INFO` keys in one const ([`Declared`]),
//! builds its sockets from its part of the [`Sizes`](crate::Sizes) (or
//! declares a fixed [`Footprint`]), lists its sockets for `NETSTAT`, pushes
//! its `INFO` values and keeps its own counters. It is polled with a
//! `Context`: the time (smoltcp's `Instant`, the one
//! time type of the crate), the sockets, the read-only view of the device,
//! the shared connection counters, the closing pool and the other services;
//! its poll returns its next deadline.
//!
//! The `Table` holds one of each. Its order is the order they are polled
//! in, the order `NETSTAT` (TCP places, then UDP places) and `INFO` list
//! them, and the order their sockets are added to the socket set (the
//! closing pool's come after them all, so that a SYN finds a listening
//! socket first):
//!
//! | service | ports | polled | feature |
//! |---|---|---|---|
//! | `lab` | TCP 6666 (the lab line protocol), TCP 6668 (the management port) | when woken | always |
//! | `bulk` | TCP 7 echo, 9 discard, 19 chargen | when woken | echo always, discard and chargen `discard-chargen` |
//! | `iperf3` | TCP 5201 | every poll | `iperf3` |
//! | `iperf2` | TCP 5001 | every poll | `iperf2` |
//! | [`http`] | TCP 80 | every poll | `http` |
//! | `udp` | UDP 7 echo, 9 discard, 19 chargen | every poll | `udp` |
//! | `daytime` | TCP 13, UDP 13 (RFC 867) | every poll | `daytime` |
//!
//! The features are the crate's (all on by default): a service whose feature
//! is off is not in the table, so its ports are closed, its `INFO` keys and
//! `NETSTAT` rows absent, its code not linked and its storage zero.
//!
//! A service that waits to be woken runs when a TCP segment came for one of
//! its ports in this poll (the counted-frames layer records the destination
//! ports it saw; it knows no service), when one of its sockets changed state
//! on a stack timer, when its deadline is due, or when the device woke up
//! without traffic: a busy echo stream does not make the lab scan every
//! slot.
//!
//! # Adding a service
//!
//! 1. In [`crate::protocol`]: its port (`FOO_PORT`), the names of its `INFO`
//!    keys (`info::FOO_...`), and any line format the host parses too.
//! 2. A module `services/foo.rs` with
//!    * `pub const DECLARED: Declared`: its ports and `INFO` keys;
//!    * `pub const FOOTPRINT: Footprint` (a fixed number of sockets and
//!      buffer bytes), or a `FooSizes` part with a `DEFAULT` for a size a
//!      board chooses;
//!    * a `new(&mut SocketFactory, ...)` that makes its sockets
//!      (`factory.listener(rx, tx, port)`, `factory.udp(...)`);
//!    * `impl Inventory`: `sockets` (its `NETSTAT` places), `info` (one
//!      value per declared key, in order), `role` if its sockets have one;
//!    * `impl Service`: `inventory`, `poll` (and `every_poll` and
//!      `changed` for a service that waits to be woken).
//! 3. A feature `foo` in this crate's `Cargo.toml` (in `default`) and in
//!    each board's, forwarding it; `scripts/image-sizes` lists it.
//! 4. Here: `mod foo;`, its field in `Table` built in `Table::new` and
//!    listed in `Table::all_mut` (and `COUNT`), its `DECLARED` in
//!    `DECLARED`, and its `FOOTPRINT` in [`FIXED`] (a configurable one
//!    adds its part to `Parts` and to [`Sizes`](crate::Sizes) instead),
//!    each behind `#[cfg(feature = "foo")]`, and its term in `COUNT`.
//!
//! Nothing else: `INFO`, `NETSTAT`, `/api/info`, `/api/sockets`, the page,
//! the event history, the startup log and the ports the host forwards (from
//! [`PORTS`]) pick it up from the table, and the boards' storage grows with
//! [`FIXED`].

// A service whose feature is off keeps its module (its sizes, constants and
// declaration stay nameable) but is not in the table: its code is not linked.
pub(crate) mod bulk;
#[cfg_attr(not(feature = "daytime"), allow(dead_code))]
pub(crate) mod daytime;
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub mod http;
#[cfg_attr(not(feature = "iperf2"), allow(dead_code))]
pub(crate) mod iperf2;
#[cfg_attr(not(feature = "iperf3"), allow(dead_code))]
pub(crate) mod iperf3;
pub(crate) mod lab;
pub(crate) mod report;
pub(crate) mod service;
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) mod udp;

pub use bulk::{BulkSizes, BULK_SERVICES, MAX_BULK_SLOTS};
pub use daytime::DAYTIME_SOCKETS;
pub use iperf2::{Iperf2Sizes, IPERF2_TX_BUFFER, MAX_IPERF2_SOCKETS};
pub use iperf3::{Iperf3Sizes, IPERF3_RESERVED_SOCKETS, MAX_IPERF3_SOCKETS};
pub use lab::{LabSizes, LabSlot, MAX_LAB_SLOTS, MGMT_SOCKETS};
pub use service::{Declared, Footprint, ServicePort, Transport};
pub use udp::{UDP_CHARGEN_MAX, UDP_PACKETS, UDP_RX_BUFFER, UDP_SOCKETS, UDP_TX_BUFFER};

use crate::board::config::Config;
use crate::services::report::DEVICE_INFO_KEYS;

use bulk::Bulk;
#[cfg(feature = "daytime")]
use daytime::Daytime;
#[cfg(feature = "http")]
use http::Http;
#[cfg(feature = "iperf2")]
use iperf2::Iperf2;
#[cfg(feature = "iperf3")]
use iperf3::Iperf3;
use lab::Lab;
use service::{Service, SocketFactory};
#[cfg(feature = "udp")]
use udp::Udp;

/// The services whose size is fixed and that are built, summed: what they
/// add to the [`Sizes`](crate::Sizes).
pub const FIXED: Footprint = Footprint::sum(&[
    #[cfg(feature = "http")]
    http::FOOTPRINT,
    #[cfg(feature = "udp")]
    udp::FOOTPRINT,
    #[cfg(feature = "daytime")]
    daytime::FOOTPRINT,
]);

/// What each service of the `Table` declares, in table order.
pub(crate) const DECLARED: [&Declared; COUNT] = [
    &lab::DECLARED,
    &bulk::DECLARED,
    #[cfg(feature = "iperf3")]
    &iperf3::DECLARED,
    #[cfg(feature = "iperf2")]
    &iperf2::DECLARED,
    #[cfg(feature = "http")]
    &http::DECLARED,
    #[cfg(feature = "udp")]
    &udp::DECLARED,
    #[cfg(feature = "daytime")]
    &daytime::DECLARED,
];

/// Every port of each service, in table order.
const PORT_PARTS: [&[ServicePort]; COUNT] = {
    let mut parts: [&[ServicePort]; COUNT] = [&[]; COUNT];
    let mut i = 0;
    while i < COUNT {
        parts[i] = DECLARED[i].ports;
        i += 1;
    }
    parts
};

/// Every listening port of the device, TCP and UDP, in table order.
pub const PORTS: &[ServicePort] =
    &concat::<ServicePort, { count(&PORT_PARTS) }>(&PORT_PARTS, ServicePort::tcp("", 0));

/// The `INFO` keys: the device's own, then each service's, in table order.
const INFO_PARTS: [&[&str]; COUNT + 1] = {
    let mut parts: [&[&str]; COUNT + 1] = [DEVICE_INFO_KEYS; COUNT + 1];
    let mut i = 0;
    while i < COUNT {
        parts[i + 1] = DECLARED[i].info_keys;
        i += 1;
    }
    parts
};

/// Every `INFO` key, in the order `INFO` and `/api/info` list them.
pub const INFO_KEYS: &[&str] = &concat::<&str, { count(&INFO_PARTS) }>(&INFO_PARTS, "");

/// The service behind device port `port` (TCP first), as `/api/sockets`
/// names it; `tcp` for a port no service declares.
pub fn service_name(port: u16) -> &'static str {
    let mut found = PORTS.iter().filter(|p| p.port == port);
    let first = found.clone().find(|p| p.transport == Transport::Tcp);
    first.or_else(|| found.next()).map_or("tcp", |p| p.service)
}

/// How many of [`PORTS`] are TCP ports.
pub const TCP_PORT_COUNT: usize = tcp_port_count();

/// The TCP ports of [`PORTS`], in table order: what the host forwards.
pub const TCP_PORTS: [u16; TCP_PORT_COUNT] = tcp_ports();

const fn tcp_port_count() -> usize {
    let (mut n, mut i) = (0, 0);
    while i < PORTS.len() {
        if matches!(PORTS[i].transport, Transport::Tcp) {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn tcp_ports() -> [u16; TCP_PORT_COUNT] {
    let mut out = [0; TCP_PORT_COUNT];
    let (mut i, mut k) = (0, 0);
    while i < PORTS.len() {
        if matches!(PORTS[i].transport, Transport::Tcp) {
            out[k] = PORTS[i].port;
            k += 1;
        }
        i += 1;
    }
    out
}

/// Number of services in the table: the lab and bulk, and one for each
/// service feature that is on.
pub(crate) const COUNT: usize = 2
    + cfg!(feature = "iperf3") as usize
    + cfg!(feature = "iperf2") as usize
    + cfg!(feature = "http") as usize
    + cfg!(feature = "udp") as usize
    + cfg!(feature = "daytime") as usize;

/// The configurable services' parts of the [`Sizes`](crate::Sizes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    /// The lab's.
    pub lab: LabSizes,
    /// The bulk services'.
    pub bulk: BulkSizes,
    /// The iperf3 server's.
    #[cfg(feature = "iperf3")]
    pub iperf3: Iperf3Sizes,
    /// The iperf2 server's.
    #[cfg(feature = "iperf2")]
    pub iperf2: Iperf2Sizes,
}

/// One of each service, in poll order.
pub(crate) struct Table<'a> {
    lab: Lab<'a>,
    bulk: Bulk,
    #[cfg(feature = "iperf3")]
    iperf3: Iperf3,
    #[cfg(feature = "iperf2")]
    iperf2: Iperf2,
    #[cfg(feature = "http")]
    http: Http,
    #[cfg(feature = "udp")]
    udp: Udp,
    #[cfg(feature = "daytime")]
    daytime: Daytime,
}

impl<'a> Table<'a> {
    /// Builds every service's sockets with `factory`, in table order, each
    /// configurable one with its part of the sizes; the lab keeps its state
    /// in `lab_slots`.
    pub fn new(
        factory: &mut SocketFactory<'_, 'a>,
        config: &Config,
        parts: Parts,
        lab_slots: &'a mut [LabSlot],
    ) -> Self {
        Table {
            lab: Lab::new(factory, config, &parts.lab, lab_slots),
            bulk: Bulk::new(factory, &parts.bulk),
            #[cfg(feature = "iperf3")]
            iperf3: Iperf3::new(factory, &parts.iperf3),
            #[cfg(feature = "iperf2")]
            iperf2: Iperf2::new(factory, &parts.iperf2),
            #[cfg(feature = "http")]
            http: Http::new(factory),
            #[cfg(feature = "udp")]
            udp: Udp::new(factory, config.random_seed),
            #[cfg(feature = "daytime")]
            daytime: Daytime::new(factory),
        }
    }

    /// Every service, in table order.
    pub fn all_mut(&mut self) -> [&mut (dyn Service + 'a); COUNT] {
        [
            &mut self.lab,
            &mut self.bulk,
            #[cfg(feature = "iperf3")]
            &mut self.iperf3,
            #[cfg(feature = "iperf2")]
            &mut self.iperf2,
            #[cfg(feature = "http")]
            &mut self.http,
            #[cfg(feature = "udp")]
            &mut self.udp,
            #[cfg(feature = "daytime")]
            &mut self.daytime,
        ]
    }

    /// Lab clients being served.
    pub fn lab_in_use(&self) -> usize {
        self.lab.in_use()
    }

    /// Lab clients waiting in the backlog.
    pub fn lab_queued(&self) -> usize {
        self.lab.queued()
    }
}

/// The number of items in `parts`.
pub(crate) const fn count<T>(parts: &[&[T]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// `parts` one after the other (`fill` only sizes the array).
pub(crate) const fn concat<T: Copy, const N: usize>(parts: &[&[T]], fill: T) -> [T; N] {
    let mut out = [fill; N];
    let (mut i, mut k) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ports_and_info_keys_are_each_declared_once() {
        for (i, a) in PORTS.iter().enumerate() {
            assert!(!a.service.is_empty() && a.port != 0, "{a:?}");
            for b in &PORTS[i + 1..] {
                assert!(
                    a.port != b.port || a.transport != b.transport,
                    "{a:?} twice"
                );
            }
        }
        for (i, key) in INFO_KEYS.iter().enumerate() {
            assert!(!key.is_empty());
            assert!(!INFO_KEYS[i + 1..].contains(key), "{key} twice");
        }
        assert_eq!(service_name(crate::protocol::LAB_PORT), "lab");
        assert_eq!(service_name(crate::protocol::ECHO_PORT), "echo");
        assert_eq!(service_name(1), "tcp");
    }

    #[test]
    fn the_event_history_follows_the_largest_lab_and_bulk_pools() {
        let largest = MAX_LAB_SLOTS + MGMT_SOCKETS + BULK_SERVICES * MAX_BULK_SLOTS;
        let fixed = FIXED.tcp_sockets;
        assert!(crate::status::events::MAX_TRACKED_SOCKETS >= largest + fixed);
    }
}
