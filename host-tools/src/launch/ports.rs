//! The device ports the host reaches through 127.0.0.1: QEMU's user
//! networking forwards each of [`FORWARDED_PORTS`] from `base + port`, and so
//! does `socklab run tap` into the device's namespace.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use socklab_app::protocol::LAB_PORT;
use socklab_app::services::{TCP_PORTS, TCP_PORT_COUNT};

/// Host port = base + device port, on 127.0.0.1 (lab 16666, echo 10007, ...).
pub const DEFAULT_PORT_BASE: u16 = 10_000;
/// A device port where nothing listens, forwarded anyway so that a refusal can
/// be seen through QEMU's user networking.
pub const QEMU_CLOSED_PORT: u16 = LAB_PORT + 1;
/// The device ports forwarded to the host: every TCP port of the app's service
/// table, then the closed port. The one list, which QEMU's command line,
/// `socklab run` and the tests read.
pub const FORWARDED_PORTS: [u16; TCP_PORT_COUNT + 1] = forwarded_ports();

/// [`TCP_PORTS`] and [`QEMU_CLOSED_PORT`], at compile time.
const fn forwarded_ports() -> [u16; TCP_PORT_COUNT + 1] {
    let mut ports = [QEMU_CLOSED_PORT; TCP_PORT_COUNT + 1];
    let mut i = 0;
    while i < TCP_PORT_COUNT {
        ports[i] = TCP_PORTS[i];
        i += 1;
    }
    ports
}
/// The highest of [`FORWARDED_PORTS`].
pub const HIGHEST_FORWARDED_PORT: u16 = highest(&FORWARDED_PORTS);
/// The greatest port base: every forwarded port must stay a valid port.
pub const MAX_PORT_BASE: u16 = u16::MAX - HIGHEST_FORWARDED_PORT;

/// The highest of `ports` (0 for none), at compile time.
const fn highest(ports: &[u16]) -> u16 {
    let mut highest = 0;
    let mut i = 0;
    while i < ports.len() {
        if ports[i] > highest {
            highest = ports[i];
        }
        i += 1;
    }
    highest
}

/// The first port base [`free_port_base`] hands out.
const FIRST_FREE_BASE: u32 = 11_000;
/// The step between the bases [`free_port_base`] hands out.
const BASE_STEP: u32 = base_step(&FORWARDED_PORTS) as u32;
/// How many bases there are: every forwarded port stays below 32768, the
/// start of Linux's ephemeral range.
const BASE_SLOTS: u32 = (32_768 - FIRST_FREE_BASE - HIGHEST_FORWARDED_PORT as u32) / BASE_STEP;

/// The smallest step from 32 up that no difference between two of `ports` is
/// a multiple of: bases that many apart never share a port.
const fn base_step(ports: &[u16]) -> u16 {
    let mut step = 32;
    'step: loop {
        let mut i = 0;
        while i < ports.len() {
            let mut j = 0;
            while j < ports.len() {
                if ports[i] > ports[j] && (ports[i] - ports[j]) % step == 0 {
                    step += 1;
                    continue 'step;
                }
                j += 1;
            }
            i += 1;
        }
        return step;
    }
}

/// The port base in slot `slot`.
fn slot_base(slot: u32) -> Option<u16> {
    u16::try_from(FIRST_FREE_BASE + slot * BASE_STEP).ok()
}

/// A port base whose forwarded ports are all free on 127.0.0.1 (bind-probed).
///
/// Bases start at 11000 and step by `BASE_STEP`, so that no two bases share a
/// port, and every forwarded port stays below 32768, the start of Linux's
/// ephemeral range.
pub fn free_port_base() -> Option<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % BASE_SLOTS;
    for _ in 0..BASE_SLOTS {
        let slot = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % BASE_SLOTS;
        let base = slot_base(slot)?;
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
    fn the_highest_port_bounds_the_base() {
        assert_eq!(
            Some(HIGHEST_FORWARDED_PORT),
            FORWARDED_PORTS.iter().copied().max()
        );
        assert!(FORWARDED_PORTS
            .iter()
            .all(|&port| MAX_PORT_BASE.checked_add(port).is_some()));
    }

    #[test]
    fn no_two_bases_share_a_port() {
        let mut seen = std::collections::HashSet::new();
        for slot in 0..BASE_SLOTS {
            let base = slot_base(slot).expect("a base");
            for port in FORWARDED_PORTS {
                let host = u32::from(base) + u32::from(port);
                assert!(host < 32_768, "slot {slot}: {host}");
                assert!(seen.insert(host), "slot {slot}: {host} twice");
            }
        }
    }

    #[test]
    fn free_bases_do_not_overlap() {
        let a = free_port_base().unwrap();
        let b = free_port_base().unwrap();
        let ports = |base: u16| FORWARDED_PORTS.map(|p| base + p);
        assert!(ports(a).iter().all(|p| !ports(b).contains(p)));
        assert!(ports(a).iter().chain(&ports(b)).all(|&p| p < 32_768));
    }
}
