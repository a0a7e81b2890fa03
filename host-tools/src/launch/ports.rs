//! The device ports the host reaches through 127.0.0.1: QEMU's user
//! networking forwards each of [`FORWARDED_PORTS`] from `base + port`, and so
//! does `socklab run tap` into the device's namespace.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use socklab_app::protocol::{
    CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, HTTP_PORT, IPERF2_PORT, IPERF3_PORT, LAB_PORT, MGMT_PORT,
};

/// Host port = base + device port, on 127.0.0.1 (lab 16666, echo 10007, ...).
pub const DEFAULT_PORT_BASE: u16 = 10_000;
/// A device port where nothing listens, forwarded anyway so that a refusal can
/// be seen through QEMU's user networking.
pub const QEMU_CLOSED_PORT: u16 = LAB_PORT + 1;
/// The device ports forwarded to the host: the one list, which QEMU's
/// command line, `socklab run` and the tests read.
pub const FORWARDED_PORTS: [u16; 9] = [
    LAB_PORT,
    QEMU_CLOSED_PORT,
    MGMT_PORT,
    ECHO_PORT,
    DISCARD_PORT,
    CHARGEN_PORT,
    IPERF3_PORT,
    IPERF2_PORT,
    HTTP_PORT,
];
/// The greatest port base: every forwarded port must stay a valid port.
pub const MAX_PORT_BASE: u16 = u16::MAX - MGMT_PORT;

/// A port base whose forwarded ports are all free on 127.0.0.1 (bind-probed).
///
/// Bases step by 32 from 11000 (so no two bases this process hands out share
/// a port: the forwarded ports differ by 1, 2, 10, 12, 6647..6660, never by a
/// multiple of 32) and stay below 32768, the start of Linux's ephemeral range.
pub fn free_port_base() -> Option<u16> {
    const FIRST: u32 = 11_000;
    const STEP: u32 = 32;
    const SLOTS: u32 = (32_768 - FIRST - QEMU_CLOSED_PORT as u32) / STEP;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SLOTS;
    for _ in 0..SLOTS {
        let slot = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SLOTS;
        let base = u16::try_from(FIRST + slot * STEP).ok()?;
        let free = FORWARDED_PORTS
            .iter()
            .all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, base + port)).is_ok());
        if free {
            return Some(base);
        }
    }
    None
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn free_bases_do_not_overlap() {
        let a = free_port_base().unwrap();
        let b = free_port_base().unwrap();
        let ports = |base: u16| FORWARDED_PORTS.map(|p| base + p);
        assert!(ports(a).iter().all(|p| !ports(b).contains(p)));
        assert!(ports(a).iter().chain(&ports(b)).all(|&p| p < 32_768));
    }
}
