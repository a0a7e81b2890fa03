//! Test harness: the [`App`] and a client smoltcp [`Interface`] connected back
//! to back over an in-memory Ethernet link, driven by a simulated clock.
//!
//! Nothing here needs privileges or sleeps: frames are `Vec<u8>`s moved between
//! two queue-backed devices, and time only moves when the harness advances it
//! (to the next instant either side asked to be polled at, at least
//! [`MIN_STEP_MS`]). Every loop is bounded, so a test that waits for something
//! that never happens fails instead of hanging.
//!
//! One job a file: this one holds the addresses and the small pool, [`link`]
//! the link and the client side ([`Net`], [`Conn`]), [`frames`] hand-made
//! frames and their parsers, [`fuzz`] the fuzzing cases.
//!
//! The tests (`tests/*.rs`), the benches (`benches/*.rs`) and the cargo-fuzz
//! targets (`fuzz/`) share these files; each uses only part of them.
#![allow(dead_code)]

pub mod frames;
pub mod fuzz;
pub mod link;

pub use frames::*;
pub use link::*;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socklab_app::protocol::{self};
use socklab_app::smoltcp::wire::EthernetAddress;
use socklab_app::{config, BulkSizes, ClosingSizes, Iperf2Sizes, Iperf3Sizes, LabSizes, Sizes};

/// The client's Ethernet address.
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
/// The client's IPv4 address (the host side of the TAP in the README).
pub const CLIENT_V4: Ipv4Addr = config::HOST_IPV4;
/// The client's IPv6 address.
pub const CLIENT_V6: Ipv6Addr = config::HOST_IPV6;
/// Frame size both devices accept: a 1500-byte IP MTU plus the Ethernet header.
pub const LINK_MTU: usize = 1514;
/// Smallest step of the simulated clock, in milliseconds.
pub const MIN_STEP_MS: u64 = 1;
/// How long [`Net::line`] waits for a line, in simulated milliseconds.
pub const LINE_WAIT_MS: u64 = 3_000;
/// Buffer size of a client socket unless a test asks otherwise.
pub const CLIENT_BUFFER: usize = 64 * 1024;

/// A small pool, so that exhausting it is cheap.
pub const SMALL: Sizes = Sizes {
    lab: LabSizes {
        backlog: 0,
        slots: 4,
        rx: 1024,
        tx: 2048,
    },
    bulk: BulkSizes {
        slots: 2,
        rx: 4096,
        tx: 4096,
    },
    iperf3: Iperf3Sizes {
        sockets: 0,
        rx: 0,
        tx: 0,
    },
    iperf2: Iperf2Sizes { sockets: 0, rx: 0 },
    closing: ClosingSizes { lab: 2, bulk: 1 },
};

/// The device's IPv4 address.
pub fn device_v4() -> Ipv4Addr {
    config::DEFAULT_IPV4.address()
}

/// The device's IPv6 address.
pub fn device_v6() -> Ipv6Addr {
    config::DEFAULT_IPV6.address()
}

/// The device's address on `port`, IPv6 if `v6`.
pub fn device(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(device_v6().into(), port)
    } else {
        SocketAddr::new(device_v4().into(), port)
    }
}

/// The device's lab service.
pub fn lab_addr(v6: bool) -> SocketAddr {
    device(v6, protocol::LAB_PORT)
}
