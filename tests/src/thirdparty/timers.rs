//! The device's TCP timers seen from outside, once on a real TAP: a
//! connection on a socket whose last handshake was reset (as a port scan
//! leaves it) retransmits its first lost segment on a fresh timer, and the
//! dead-peer timeout frees a slot when it is due, with no other traffic to
//! wake the device.
//!
//! The client here must be able to stop answering at a chosen moment, which
//! a kernel socket cannot: it is a smoltcp interface of its own (MAC
//! 02:00:00:00:00:60, 192.168.69.60) on an `AF_PACKET` socket on the host
//! side of the TAP. The host kernel drops the device's frames to that MAC,
//! so nothing but this client ever answers them. The timings are read from
//! the device's own capture (tshark) and log.

use std::os::fd::AsRawFd;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, RawSocket};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as NetInstant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use socklab_app::protocol::LAB_PORT;

use super::{alone, in_netns, run, TempDir};
use crate::{BoardKind, Dut};

/// The silent client's Ethernet address.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x60];
/// The silent client's IPv4 address (on the device's /24, owned by no one
/// else).
const CLIENT_IP: [u8; 4] = [192, 168, 69, 60];
/// The silent client's first TCP port (each connection takes the next).
const CLIENT_PORT: u16 = 40_060;
/// How long the slot-reuse case leaves a handshake unanswered before the
/// client resets it: the device's SYN-ACK is sent at 0 s, then retransmitted
/// after 1, 3 and 7 s (its timer backed off to 8 s).
const ABANDON_MS: u64 = 7500;
/// The handshake and dead-peer timeouts of the slot-reuse case: longer than
/// the abandoned handshake, so only the client's RST ends it.
const LONG_TIMEOUT_MS: &str = "120000";
/// The sequence number of the abandoned handshake's SYN.
const ABANDONED_SEQ: u32 = 1_000_000;
/// smoltcp's retransmission timeout on a fresh connection (its minimum).
const FRESH_RTO: Duration = Duration::from_secs(1);
/// Device options every timer case needs: the TAP's offloads off, so that
/// the device's frames carry full checksums (with offloads the kernel
/// completes them, but it never sees the frames to the silent client, whose
/// stack would drop them).
const PLAIN_FRAMES: [&str; 2] = ["--offload", "off"];
/// The dead-peer timeout the late-timeout case gives the device.
const DEAD_PEER_MS: u64 = 2000;
/// How much later than due the dead-peer timeout may free its slot.
const TIMER_LATE_LIMIT_MS: f64 = 200.0;
/// How much earlier than due it may seem to free it: the timeout runs from
/// the last ACK, the log stamps the accept (in milliseconds) when the app
/// sees the new connection, after smoltcp took that ACK in the same poll; on
/// a busy machine the process can be descheduled between the two.
const TIMER_EARLY_TOLERANCE_MS: f64 = 20.0;

/// Opens a connection to the device's lab port from the silent client and
/// stops answering: with `ask` `None` the moment it is established (the
/// device's `HELLO` is never acknowledged); with `Some(line)` once it has
/// read (and acknowledged) the `HELLO` and sent `line` (the answer is never
/// acknowledged).
fn connect_then_go_silent(dut: &Dut, port: u16, ask: Option<&'static str>) {
    let tap = dut.tap_name().expect("a device on a TAP").to_owned();
    let device_ip = match dut.addr(0).ip() {
        std::net::IpAddr::V4(ip) => ip.octets(),
        other => panic!("the device's address {other} is not IPv4"),
    };
    let outcome = dut
        .host_net()
        .run(move || -> Result<(), String> {
            let mut link = RawSocket::new(&tap, Medium::Ethernet)
                .map_err(|e| format!("AF_PACKET socket on {tap}: {e}"))?;
            let config = Config::new(EthernetAddress(CLIENT_MAC).into());
            let mut iface = Interface::new(config, &mut link, NetInstant::now());
            iface.update_ip_addrs(|addrs| {
                let [a, b, c, d] = CLIENT_IP;
                addrs
                    .push(IpCidr::new(IpAddress::v4(a, b, c, d), 24))
                    .expect("room for one address");
            });
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            let mut sockets = SocketSet::new(vec![]);
            let handle = sockets.add(socket);
            let [a, b, c, d] = device_ip;
            sockets
                .get_mut::<tcp::Socket>(handle)
                .connect(iface.context(), (IpAddress::v4(a, b, c, d), LAB_PORT), port)
                .map_err(|e| format!("connect: {e}"))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut heard = Vec::new();
            let mut asked = false;
            loop {
                let now = NetInstant::now();
                iface.poll(now, &mut link, &mut sockets);
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                if asked {
                    // The line went out in this poll; from here on nothing
                    // is read or answered.
                    return Ok(());
                }
                match ask {
                    None if socket.state() == tcp::State::Established => {
                        // Our ACK of the SYN-ACK went out in this poll.
                        return Ok(());
                    }
                    Some(line) if socket.can_recv() => {
                        socket
                            .recv(|data| (data.len(), heard.extend_from_slice(data)))
                            .map_err(|e| format!("recv: {e}"))?;
                        if heard.ends_with(b"\n") {
                            socket
                                .send_slice(line.as_bytes())
                                .map_err(|e| format!("send: {e}"))?;
                            asked = true;
                            continue;
                        }
                    }
                    _ => {}
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!(
                        "no connection within 10 s (state {})",
                        sockets.get::<tcp::Socket>(handle).state()
                    ));
                }
                let delay = iface
                    .poll_delay(now, &sockets)
                    .unwrap_or(smoltcp::time::Duration::from_millis(50))
                    .min(smoltcp::time::Duration::from_millis(50));
                phy_wait(link.as_raw_fd(), Some(delay)).map_err(|e| format!("wait: {e}"))?;
            }
        })
        .expect("enter the device's namespace");
    outcome.unwrap_or_else(|e| panic!("the silent client: {e}"));
}

/// When the device sent each segment matching `filter` to the silent
/// client's `port`, in seconds of its capture.
fn sent_to_client(pcap: &std::path::Path, port: u16, filter: &str) -> Vec<f64> {
    super::require("tshark");
    let mut command = std::process::Command::new("tshark");
    command.arg("-n").arg("-r").arg(pcap).args([
        "-Y",
        &format!("tcp.srcport == {LAB_PORT} && tcp.dstport == {port} && {filter}"),
        "-T",
        "fields",
        "-e",
        "frame.time_relative",
    ]);
    let output = run(command, Duration::from_secs(60));
    output.assert_success();
    output
        .stdout
        .lines()
        .map(|l| l.trim().parse().expect("a time"))
        .collect()
}

/// A handshake the client leaves unanswered (the device's SYN-ACK
/// retransmitted with backoff) and then resets, as a dropped connect or a
/// scanner does; then a new connection on the same socket whose `HELLO`
/// goes unacknowledged: the device retransmits it after the fresh 1 s
/// timeout, not on the backed-off timer of the reset handshake.
pub fn reused_slot_retransmits_on_a_fresh_timer(board: BoardKind) {
    let _alone = alone();
    assert_eq!(board, BoardKind::Tap, "this case runs on linux-tap");
    let dir = TempDir::new("timers");
    let pcap = dir.path().join("reuse.pcap");
    let dut = Dut::start_with(
        board,
        &[
            "--pcap",
            &pcap.to_string_lossy(),
            "--handshake-timeout-ms",
            LONG_TIMEOUT_MS,
            "--dead-peer-ms",
            LONG_TIMEOUT_MS,
            PLAIN_FRAMES[0],
            PLAIN_FRAMES[1],
        ],
    );
    // A first silent connection holds the first lab socket (and the device
    // learns the silent client's Ethernet address).
    connect_then_go_silent(&dut, CLIENT_PORT, None);
    // A SYN from the silent client's address that nobody answers: the next
    // listening socket takes it and retransmits its SYN-ACK; then the RST
    // that ends the handshake (sequence number SYN + 1, in the window).
    let abandoned = CLIENT_PORT + 1;
    let segment = |flag: &str, seq: u32| {
        let mut hping = in_netns(&dut, "hping3");
        hping
            .args([flag, "-c", "1", "-k", "-p", &LAB_PORT.to_string()])
            .args(["-a", &std::net::Ipv4Addr::from(CLIENT_IP).to_string()])
            .args(["-s", &abandoned.to_string(), "-M", &seq.to_string()])
            .arg(dut.addr(0).ip().to_string());
        run(hping, Duration::from_secs(30));
    };
    segment("-S", ABANDONED_SEQ);
    std::thread::sleep(Duration::from_millis(ABANDON_MS));
    segment("-R", ABANDONED_SEQ + 1);
    let syn_acks = sent_to_client(&pcap, abandoned, "tcp.flags.syn == 1 && tcp.flags.ack == 1");
    assert!(
        syn_acks.len() >= 4,
        "the abandoned handshake's SYN-ACK was sent {} times, expected 4 (three retransmissions)",
        syn_acks.len()
    );
    // The same socket takes the next connection; the answer to its ECHO
    // goes unacknowledged.
    let reused = CLIENT_PORT + 2;
    connect_then_go_silent(&dut, reused, Some("ECHO again\n"));
    // The first retransmission is due 1 s after the HELLO; leave room for a
    // loaded machine, below the reset handshake's backed-off 4 s.
    let waited = FRESH_RTO * 3;
    std::thread::sleep(waited);
    let sent = sent_to_client(
        &pcap,
        reused,
        "tcp.len > 0 && !(tcp.payload contains \"HELLO\")",
    );
    assert!(
        !sent.is_empty(),
        "the device sent no answer to the silent client's ECHO"
    );
    assert!(
        sent.len() >= 2,
        "the ECHO answer was not retransmitted within {waited:?} (a fresh connection retransmits \
         after {FRESH_RTO:?})"
    );
    let delay = sent[1] - sent[0];
    println!(
        "figures: retransmission delay on a lab socket reused after a reset handshake \
         (SYN-ACK sent {} times, then RST), linux-tap: {:.0} ms (fresh timeout {} ms)",
        syn_acks.len(),
        delay * 1e3,
        FRESH_RTO.as_millis()
    );
    assert!(
        delay < FRESH_RTO.as_secs_f64() * 2.0,
        "first retransmission after {delay:.3} s"
    );
    dut.assert_running();
}

/// `[   12.345] INFO  message` → (12.345, message).
fn log_line(line: &str) -> Option<(f64, &str)> {
    let rest = line.strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    let message = rest.trim_start().split_once(' ')?.1.trim_start();
    Some((time.trim().parse().ok()?, message))
}

/// The silent client's connection is accepted, then nothing more comes from
/// it and nothing else reaches the device: its slot is listening again when
/// the dead-peer timeout is due, not when some later frame happens to wake
/// the device.
pub fn dead_peer_timeout_frees_the_slot_on_time(board: BoardKind) {
    let _alone = alone();
    assert_eq!(board, BoardKind::Tap, "this case runs on linux-tap");
    let dead_peer = DEAD_PEER_MS.to_string();
    let dut = Dut::start_with(
        board,
        &[
            "--dead-peer-ms",
            &dead_peer,
            PLAIN_FRAMES[0],
            PLAIN_FRAMES[1],
        ],
    );
    connect_then_go_silent(&dut, CLIENT_PORT, None);
    // Nothing is sent to the device while the timeout runs.
    std::thread::sleep(Duration::from_millis(DEAD_PEER_MS) + Duration::from_millis(1500));
    let log = dut.log();
    let client = format!("{}:{CLIENT_PORT}", std::net::Ipv4Addr::from(CLIENT_IP));
    let lines: Vec<(f64, &str)> = log.lines().filter_map(log_line).collect();
    let (accepted_at, slot) = lines
        .iter()
        .find_map(|(t, m)| {
            let rest = m.strip_prefix("lab slot ")?;
            let (slot, what) = rest.split_once(": ")?;
            (what == format!("accepted {client}")).then(|| (*t, slot.to_owned()))
        })
        .unwrap_or_else(|| panic!("no `accepted {client}` in the device's log:\n{log}"));
    let freed_at = lines
        .iter()
        .find(|(t, m)| *t >= accepted_at && *m == format!("lab slot {slot}: listening again"))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| {
            panic!(
                "slot {slot} not listening again {} ms after the silent client's last ACK \
                 (dead-peer timeout {DEAD_PEER_MS} ms):\n{log}",
                DEAD_PEER_MS + 1500
            )
        });
    let late_ms = (freed_at - accepted_at) * 1e3 - DEAD_PEER_MS as f64;
    println!(
        "figures: dead-peer timeout on linux-tap with no other traffic: slot {slot} listening \
         again {:.0} ms after the last ACK (timeout {DEAD_PEER_MS} ms): {late_ms:.0} ms late",
        (freed_at - accepted_at) * 1e3
    );
    assert!(
        late_ms >= -TIMER_EARLY_TOLERANCE_MS,
        "the slot was freed {:.0} ms before the dead-peer timeout was due",
        -late_ms
    );
    assert!(
        late_ms < TIMER_LATE_LIMIT_MS,
        "the slot was freed {late_ms:.0} ms after the timeout was due"
    );
    dut.assert_running();
}

#[cfg(test)]
mod tests {
    use super::log_line;

    #[test]
    fn log_lines_parse() {
        assert_eq!(
            log_line("[   12.345] INFO  lab slot 3: listening again"),
            Some((12.345, "lab slot 3: listening again"))
        );
        assert_eq!(log_line("garbage"), None);
    }
}
