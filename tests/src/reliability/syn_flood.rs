//! The SYN flood: spoofed SYNs to the lab port from hosts that do not
//! exist, while an established client keeps doing `ECHO`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::config::HOST_IPV4;
use socklab_app::protocol::info;

use super::{
    client, figures, in_net, info_of, ms, num, tap_of, tap_stats, wait_all_listening, Latency,
    Pool, WAIT,
};
use crate::flood::{self, Spoof};
use crate::{BoardKind, Dut};

/// The handshake timeout the flood runs with (`--handshake-timeout-ms`).
pub const FLOOD_HANDSHAKE_MS: u64 = 1000;
/// At least this many SYNs...
pub const FLOOD_SYNS: u64 = 20_000;
/// ...for at least this long, as fast as the kernel takes them.
pub const FLOOD_TIME: Duration = Duration::from_secs(3);
const FLOOD_SEED: u64 = 0x5359_4e46_4c4f_4f44;

/// A raw-socket flood of SYNs to the lab port from spoofed hosts of the
/// TAP's /24 that do not exist (nobody answers the SYN-ACKs) while one
/// established client keeps doing `ECHO`: every `ECHO` is answered; after the
/// flood every lab socket listens again within the handshake timeout; no
/// spoofed handshake is counted as accepted, and every pinned socket as a
/// handshake timeout.
pub fn syn_flood(board: BoardKind) {
    let timeout = FLOOD_HANDSHAKE_MS.to_string();
    let dut = Dut::start_with(board, &["--handshake-timeout-ms", &timeout]);
    let (ns, tap) = tap_of(&dut);
    let mut echo = client(&dut);
    let before = info_of(&mut echo);
    assert_eq!(num(&before, info::HANDSHAKE_TIMEOUT_MS), FLOOD_HANDSHAKE_MS);
    let pool = Pool::of(&before);
    let SocketAddr::V4(device) = dut.lab_addr() else {
        panic!("the lab address is IPv4")
    };
    let spoof = Spoof {
        net: *device.ip(),
        exclude: vec![device.ip().octets()[3], HOST_IPV4.octets()[3]],
    };
    let tap_before = tap_stats(&ns, &tap);
    // An ECHO whose segment the full TAP queue drops waits for the kernel's
    // retransmission: answered late, not lost.
    echo.set_timeout(3 * WAIT);
    let done = AtomicBool::new(false);
    let (flooded, flood_end, pings) = in_net(&dut, || {
        thread::scope(|s| {
            let pinger = s.spawn(|| {
                let mut rtts = Vec::new();
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let text = format!("ping {n}");
                    let t = Instant::now();
                    match echo.echo(&text) {
                        Ok(answer) if answer == text => rtts.push(t.elapsed()),
                        Ok(answer) => return Err(format!("ECHO {n} answered {answer:?}")),
                        Err(e) => return Err(format!("ECHO {n} during the flood: {e}")),
                    }
                    n += 1;
                }
                Ok(rtts)
            });
            let flooded = flood::flood(device, &spoof, FLOOD_SEED, FLOOD_SYNS, FLOOD_TIME);
            let end = Instant::now();
            done.store(true, Ordering::Relaxed);
            (flooded, end, pinger.join().expect("the ECHO thread"))
        })
    });
    let flooded = flooded.expect("flood from a raw socket (needs root)");
    let rtts = pings.unwrap_or_else(|e| panic!("{e}"));
    assert!(flooded.sent >= FLOOD_SYNS, "{flooded:?}");

    let recovered = wait_all_listening(
        &mut echo,
        &pool,
        1,
        Duration::from_millis(FLOOD_HANDSHAKE_MS) + WAIT,
    );
    let recovery = recovered.saturating_duration_since(flood_end);
    let tap_after = tap_stats(&ns, &tap);
    let after = info_of(&mut echo);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    let dropped = tap_after.tx_dropped - tap_before.tx_dropped;
    let delivered = flooded.sent.saturating_sub(dropped);
    let pings = Latency::of(rtts);
    let timed_out = delta(info::CONN_TIMED_OUT);
    let refused = delta(info::CONN_REFUSED);
    let free = pool.lab_sockets() as u64 - 1;
    figures(
        "syn flood",
        format!(
            "{} SYNs sent in {:.2}s ({:.0}/s), {} dropped at the TAP, {} delivered ({:.0}/s absorbed); \
             the TAP handed the device {} frames, frames_rx +{}; ECHO during the flood {pings}; every lab socket LISTEN {:.0}ms after \
             the last SYN (handshake timeout {FLOOD_HANDSHAKE_MS}ms); conn_timed_out +{timed_out}, \
             conn_refused +{refused}, conn_accepted +{}",
            flooded.sent,
            flooded.elapsed.as_secs_f64(),
            flooded.rate(),
            dropped,
            delivered,
            delivered as f64 / flooded.elapsed.as_secs_f64(),
            tap_after.tx_packets - tap_before.tx_packets,
            delta(info::FRAMES_RX),
            ms(recovery),
            delta(info::CONN_ACCEPTED),
        ),
    );
    assert!(
        recovery <= Duration::from_millis(FLOOD_HANDSHAKE_MS + 500),
        "the lab sockets listened again only {recovery:?} after the flood \
         (handshake timeout {FLOOD_HANDSHAKE_MS} ms)"
    );
    assert_eq!(
        delta(info::CONN_ACCEPTED),
        0,
        "no spoofed handshake can complete"
    );
    // Every free lab socket was pinned at least once, and each at most once per
    // handshake timeout.
    let rounds = (flooded.elapsed.as_millis() as u64).div_ceil(FLOOD_HANDSHAKE_MS) + 2;
    assert!(
        (free..=free * rounds).contains(&timed_out),
        "conn_timed_out +{timed_out}: expected {free}..={} handshake timeouts",
        free * rounds
    );
    // A refusal counts an RST sent; the spoofed hosts never answer ARP, so few
    // or none can be sent. Never more than the SYNs that were not taken.
    assert!(
        refused + timed_out <= delivered,
        "conn_refused +{refused} and conn_timed_out +{timed_out} exceed the {delivered} SYNs delivered"
    );
    assert!(
        delta(info::FRAMES_RX) >= delivered,
        "the device counted {} frames, the TAP delivered {delivered} SYNs",
        delta(info::FRAMES_RX)
    );
    assert_eq!(echo.echo("after the flood").unwrap(), "after the flood");
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    dut.assert_running();
}
