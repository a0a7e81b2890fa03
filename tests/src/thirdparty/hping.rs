//! hping3 against the device: hand-made segments get the answers RFC 9293
//! gives them (SYN → SYN-ACK on a service port, RST|ACK on a closed port,
//! RST for a bare ACK to a listener), and a 3 s SYN flood from random
//! sources leaves the device serving within its handshake timeout.
//!
//! The flood's random sources never leave the namespace: it holds only `lo`
//! and the device's TAP, has no default route and does not forward, which
//! the flood case checks before it starts.

use std::time::{Duration, Instant};

use socklab_app::protocol::{info, LAB_PORT};

use super::{alone, assert_every_socket_listens, in_netns, info_value, netns, run, run_for};
use crate::{BoardKind, Dut};

/// How long the flood lasts.
pub const FLOOD: Duration = Duration::from_secs(3);
/// The handshake timeout the flood case gives the device.
const HANDSHAKE_TIMEOUT_MS: u64 = 2000;

/// The flags of the first reply hping3 printed (`flags=SA`), if any.
fn reply_flags(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("len="))
        .flat_map(str::split_whitespace)
        .find_map(|w| w.strip_prefix("flags="))
        .map(str::to_owned)
}

/// Sends one segment with hping3 (`-S` SYN, `-A` ACK) to `port` and returns
/// the flags of the device's answer.
fn probe(dut: &Dut, flag: &str, port: u16) -> String {
    let mut command = in_netns(dut, "hping3");
    command
        .args([flag, "-c", "1", "-p", &port.to_string()])
        .arg(dut.addr(0).ip().to_string());
    let output = run(command, Duration::from_secs(20));
    reply_flags(&output.stdout).unwrap_or_else(|| {
        panic!(
            "`{}`: no answer from the device:\n{}\n{}",
            output.command, output.stdout, output.stderr
        )
    })
}

/// SYN to the lab port → SYN-ACK; SYN to a closed port → RST|ACK; a bare
/// ACK to the listening lab port → RST.
pub fn segments_get_the_rfc_answers(board: BoardKind) {
    let dut = Dut::start(board);
    for port in [LAB_PORT, socklab_app::protocol::ECHO_PORT] {
        assert_eq!(probe(&dut, "-S", port), "SA", "SYN to {port}");
    }
    let closed = dut.closed_ports()[0];
    assert_eq!(probe(&dut, "-S", closed), "RA", "SYN to closed {closed}");
    assert_eq!(probe(&dut, "-A", LAB_PORT), "R", "bare ACK to {LAB_PORT}");
    let mut client = dut.lab_client().expect("HELLO after the probes");
    assert_every_socket_listens(&mut client, Duration::from_secs(10));
    println!(
        "figures: hping3 on {}: SYN→{LAB_PORT} SA, SYN→{closed} RA, ACK→{LAB_PORT} R",
        dut.board_name()
    );
    dut.assert_running();
}

/// Panics unless the device's namespace can only reach the device: `lo` and
/// the TAP, no default route, no forwarding.
fn assert_namespace_is_closed(dut: &Dut) {
    let ns = netns(dut);
    let links = socklab_host::netns::ip(["-n", ns, "-o", "link", "show"]).expect("ip link");
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    let tap = dut.tap_name().expect("a device on a TAP");
    assert!(
        names.iter().all(|n| *n == "lo" || *n == tap),
        "namespace {ns} has other interfaces than lo and {tap}: {names:?}"
    );
    for family in ["-4", "-6"] {
        let default = socklab_host::netns::ip([family, "-n", ns, "route", "show", "default"])
            .expect("ip route");
        assert!(
            default.trim().is_empty(),
            "namespace {ns} has a default route ({family}): {default}"
        );
    }
    let mut sysctl = std::process::Command::new("ip");
    sysctl.args(["netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"]);
    let out = run(sysctl, Duration::from_secs(10));
    assert_eq!(out.stdout.trim(), "0", "namespace {ns} forwards IPv4");
}

/// `hping3 -S --flood --rand-source -p 6666` for 3 s; afterwards a client is
/// greeted within the handshake timeout and every socket listens again.
pub fn syn_flood_from_random_sources_leaves_the_device_serving(board: BoardKind) {
    let _alone = alone();
    let timeout = HANDSHAKE_TIMEOUT_MS.to_string();
    let dut = Dut::start_with(board, &["--handshake-timeout-ms", &timeout]);
    assert_namespace_is_closed(&dut);
    let before = {
        let mut c = dut.lab_client().expect("HELLO before the flood");
        let frames = info_value(&mut c, info::FRAMES_RX);
        c.quit().unwrap();
        frames
    };
    let mut command = in_netns(&dut, "hping3");
    command
        .args([
            "-S",
            "--flood",
            "--rand-source",
            "-p",
            &LAB_PORT.to_string(),
        ])
        .arg(dut.addr(0).ip().to_string());
    let flood = run_for(command, FLOOD);
    let ended = Instant::now();
    // The flood fills the slots with half-open handshakes; the handshake
    // timeout frees them, so a client is served within it (plus the time a
    // retransmitted SYN takes).
    let limit = Duration::from_millis(HANDSHAKE_TIMEOUT_MS) + Duration::from_secs(4);
    let mut client = loop {
        match dut.lab_client() {
            Ok(client) => break client,
            Err(_) if ended.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no HELLO {limit:?} after the flood: {e}"),
        }
    };
    let greeted_after = ended.elapsed();
    assert_every_socket_listens(&mut client, limit);
    let listening_after = ended.elapsed();
    let frames = info_value(&mut client, info::FRAMES_RX) - before;
    println!(
        "figures: hping3 --flood --rand-source 3 s on {}: the device received {frames} frames in {:.1} s; \
         client greeted {:.0} ms and every socket LISTEN {:.0} ms after the flood (handshake \
         timeout {HANDSHAKE_TIMEOUT_MS} ms)",
        dut.board_name(),
        flood.elapsed.as_secs_f64(),
        greeted_after.as_secs_f64() * 1e3,
        listening_after.as_secs_f64() * 1e3
    );
    assert!(
        frames > 1000,
        "the flood barely reached the device: {frames} frames"
    );
    assert_eq!(client.echo("after the flood").unwrap(), "after the flood");
    dut.assert_running();
}

#[cfg(test)]
mod tests {
    use super::reply_flags;

    #[test]
    fn reply_line_parses() {
        let out = "HPING 192.168.69.1 (tap 192.168.69.1): S set, 40 headers + 0 data bytes\n\
                   len=44 ip=192.168.69.1 ttl=64 DF id=0 sport=6666 flags=SA seq=0 win=1024 rtt=0.9 ms\n";
        assert_eq!(reply_flags(out).as_deref(), Some("SA"));
        assert_eq!(reply_flags("HPING x\n"), None);
    }
}
