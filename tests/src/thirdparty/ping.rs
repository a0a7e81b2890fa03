//! iputils `ping` against the device: IPv4 and IPv6, the largest datagram
//! that fits the link with "don't fragment", and a 20,000-packet flood.

use std::time::Duration;

use super::wire::WireCapture;
use super::{alone, in_netns, run, TempDir, ToolOutput};
use crate::{BoardKind, Dut};

/// Packets in the flood case.
pub const FLOOD_COUNT: u32 = 20_000;
/// The most of the flood that may go unanswered, in percent.
pub const FLOOD_MAX_LOSS_PERCENT: f64 = 1.0;
/// The TAP's MTU (the device's interface MTU on every board).
const LINK_MTU: usize = 1500;

/// What ping's summary says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
}

impl Summary {
    /// Parses `N packets transmitted, M received, ...`.
    pub fn parse(stdout: &str) -> Option<Summary> {
        let line = stdout.lines().find(|l| l.contains("packets transmitted"))?;
        let mut words = line.split(|c: char| c == ',' || c.is_whitespace());
        let transmitted = words.next()?.parse().ok()?;
        let received = line
            .split(", ")
            .find(|part| part.ends_with("received"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(Summary {
            transmitted,
            received,
        })
    }

    /// The share of requests that got no reply, in percent.
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.transmitted - self.received) / f64::from(self.transmitted)
    }
}

/// Runs `ping ARGS DEST` in the device's namespace and returns its output
/// and summary.
pub fn ping(dut: &Dut, args: &[&str], dest: &str, limit: Duration) -> (ToolOutput, Summary) {
    let mut command = in_netns(dut, "ping");
    command.args(args).arg(dest);
    let output = run(command, limit);
    let summary = Summary::parse(&output.stdout).unwrap_or_else(|| {
        panic!(
            "`{}` printed no summary:\n{}\n{}",
            output.command, output.stdout, output.stderr
        )
    });
    (output, summary)
}

fn v4(dut: &Dut) -> String {
    dut.addr(0).ip().to_string()
}

fn v6(dut: &Dut) -> String {
    dut.addr6(0)
        .expect("the device has an IPv6 address on its TAP")
        .ip()
        .to_string()
}

/// Asserts that all `count` requests of `ping ARGS DEST` were answered.
fn all_answered(dut: &Dut, args: &[&str], dest: &str) -> Summary {
    let (output, summary) = ping(dut, args, dest, Duration::from_secs(30));
    assert_eq!(
        summary.received, summary.transmitted,
        "`{}` lost replies:\n{}",
        output.command, output.stdout
    );
    // ping's own `-c N`: every one of the N requests went out.
    let count: u64 = args
        .windows(2)
        .find(|w| w[0] == "-c")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or_else(|| panic!("`ping {}` gives no -c count", args.join(" ")));
    assert_eq!(
        summary.transmitted as u64, count,
        "`{}` sent {} of {count} requests:\n{}",
        output.command, summary.transmitted, output.stdout
    );
    summary
}

/// How much the namespace's side of the TAP may carry while the over-MTU
/// probe is sent (the device's MTU stays [`LINK_MTU`]).
const PROBE_MTU: usize = LINK_MTU + 100;

/// Sets the MTU of the namespace's side of the device's TAP.
fn set_tap_mtu(dut: &Dut, mtu: usize) {
    let tap = dut.tap_name().expect("the device is on a TAP");
    let mut command = in_netns(dut, "ip");
    command.args(["link", "set", "dev", tap, "mtu", &mtu.to_string()]);
    run(command, Duration::from_secs(10)).assert_success();
}

/// Puts the TAP's MTU back to [`LINK_MTU`], also when the probe panics.
struct TapMtuBack<'a>(&'a Dut);

impl Drop for TapMtuBack<'_> {
    fn drop(&mut self) {
        set_tap_mtu(self.0, LINK_MTU);
    }
}

/// What the device did with an echo request one byte over its MTU, with DF.
struct OverMtu {
    /// ping's output and summary.
    ping: (ToolOutput, Summary),
    /// The IPv4 total length of each frame the device sent to the probe's
    /// address (its answer, whole or in fragments), and its fragment offset
    /// and more-fragments flag.
    replies: Vec<(usize, u16, bool)>,
}

/// One IPv4 echo request of [`LINK_MTU`] + 1 bytes with DF, really sent to
/// the device: ping refuses to send a datagram with DF over its interface's
/// MTU, so the namespace's side of the TAP carries [`PROBE_MTU`] for the
/// probe while the device's MTU stays [`LINK_MTU`]. The TAP is captured
/// meanwhile: asserts that the request went to the device whole, and
/// returns what the device sent back.
fn over_mtu_with_df(dut: &Dut) -> OverMtu {
    set_tap_mtu(dut, PROBE_MTU);
    let _back = TapMtuBack(dut);
    let dir = TempDir::new("over-mtu");
    let capture = WireCapture::start(dut);
    let too_big = (LINK_MTU - 20 - 8 + 1).to_string();
    let (output, summary) = ping(
        dut,
        &["-c", "1", "-W", "2", "-M", "do", "-s", &too_big],
        &v4(dut),
        Duration::from_secs(10),
    );
    let frames = capture.finish(&dir.path().join("over-mtu.pcap"));
    assert!(
        summary.transmitted == 1 && !output.stdout.contains("error") && output.stderr.is_empty(),
        "the {} B request did not leave the namespace:\n{}\n{}",
        LINK_MTU + 1,
        output.stdout,
        output.stderr
    );
    // IPv4 ICMP: (to the device, total length, DF, fragment offset, MF).
    let icmp: Vec<(bool, usize, bool, u16, bool)> = frames
        .iter()
        .filter(|f| f.frame.len() >= 34 && f.frame[12..14] == [0x08, 0x00] && f.frame[23] == 1)
        .map(|f| {
            let ip = &f.frame[14..];
            let flags = u16::from_be_bytes([ip[6], ip[7]]);
            (
                f.to_device,
                usize::from(u16::from_be_bytes([ip[2], ip[3]])),
                flags & 0x4000 != 0,
                (flags & 0x1fff) * 8,
                flags & 0x2000 != 0,
            )
        })
        .collect();
    assert!(
        icmp.iter()
            .any(|&(to, len, df, _, _)| to && len == LINK_MTU + 1 && df),
        "no {} B request with DF went to the device: {icmp:?}",
        LINK_MTU + 1
    );
    let replies = icmp
        .iter()
        .filter(|(to, ..)| !to)
        .map(|&(_, len, _, offset, more)| (len, offset, more))
        .collect();
    OverMtu {
        ping: (output, summary),
        replies,
    }
}

/// Whether `board` answers an echo request one byte over its MTU, with DF.
/// linux-tap reads frames up to a super-frame and mps2-an385's LAN9118
/// takes the oversized frame, so the request arrives whole and is answered
/// (smoltcp's reply carries no DF); riscv-virt's virtio-net receive buffers
/// hold one MTU-sized frame, so the oversized one is dropped.
fn answers_over_mtu(board: BoardKind) -> bool {
    board != BoardKind::RISCV_TAP
}

/// Checks what the device did with the over-MTU request: never a datagram
/// over its MTU; on a board that answers ([`answers_over_mtu`]), fragments
/// that each fit and together carry the whole reply; on the others, nothing.
/// Returns the verdict for the figures line.
fn check_over_mtu_answer(board: BoardKind, over: &OverMtu) -> String {
    let (output, summary) = &over.ping;
    assert!(
        over.replies.iter().all(|&(len, ..)| len <= LINK_MTU),
        "the device sent a datagram over its {LINK_MTU} B MTU: {:?}",
        over.replies
    );
    if !answers_over_mtu(board) {
        assert!(
            summary.received == 0 && over.replies.is_empty(),
            "the over-MTU request was answered (frames back: {:?}):\n{}",
            over.replies,
            output.stdout
        );
        return "dropped".to_owned();
    }
    assert_eq!(
        summary.received, 1,
        "the over-MTU request was not answered:\n{}",
        output.stdout
    );
    // The fragments, in order of offset, follow each other to the last.
    let mut fragments = over.replies.clone();
    fragments.sort_by_key(|&(_, offset, _)| offset);
    let mut next = 0;
    for (n, &(len, offset, more)) in fragments.iter().enumerate() {
        assert_eq!(offset, next, "fragments {fragments:?}");
        assert_eq!(more, n + 1 < fragments.len(), "fragments {fragments:?}");
        next += len as u16 - 20;
    }
    assert!(
        fragments.len() > 1 && usize::from(next) == LINK_MTU + 1 - 20,
        "the answer is not the whole {} B reply in fragments: {fragments:?}",
        LINK_MTU + 1
    );
    format!("answered in {} fragments", fragments.len())
}

/// Plain pings, IPv4 and IPv6, and the largest datagram the link carries
/// whole (1500 bytes with DF: 1472 bytes of ICMPv4 payload, 1452 of ICMPv6)
/// are answered, every one.
pub fn v4_v6_and_full_mtu_with_df_are_answered(board: BoardKind) {
    let dut = Dut::start(board);
    let quick = ["-c", "5", "-i", "0.2", "-W", "2"];
    all_answered(&dut, &quick, &v4(&dut));
    all_answered(&dut, &["-6", "-c", "5", "-i", "0.2", "-W", "2"], &v6(&dut));
    let v4_payload = (LINK_MTU - 20 - 8).to_string();
    let v6_payload = (LINK_MTU - 40 - 8).to_string();
    all_answered(
        &dut,
        &[
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &v4_payload,
        ],
        &v4(&dut),
    );
    all_answered(
        &dut,
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &v6_payload,
        ],
        &v6(&dut),
    );
    // One byte more than the device's MTU, with DF, reaches the device.
    let over = over_mtu_with_df(&dut);
    let answer = check_over_mtu_answer(board, &over);
    println!(
        "figures: ping on {}: v4 and v6 answered; largest unfragmented: {} B ICMPv4 payload \
         ({LINK_MTU} B datagram), {} B ICMPv6 payload; {} B with DF: {answer}",
        dut.board_name(),
        v4_payload,
        v6_payload,
        LINK_MTU + 1
    );
    dut.assert_running();
}

/// Pings bigger than the link carries travel in IP fragments: the device
/// reassembles each request and answers in fragments, every one, IPv4 with
/// 2000 bytes of data on every board and 8000 on linux-tap (the boards'
/// reassembly buffers: 16 KiB on linux-tap, 4 KiB on the QEMU boards).
/// (smoltcp 0.14 has no IPv6 fragmentation on Ethernet; the README says so.)
pub fn fragmented_pings_are_reassembled_and_answered(board: BoardKind) {
    let dut = Dut::start(board);
    let sizes: &[usize] = match board {
        BoardKind::Tap => &[2000, 8000],
        _ => &[2000],
    };
    for size in sizes {
        let size = size.to_string();
        all_answered(
            &dut,
            &["-c", "3", "-i", "0.2", "-W", "2", "-s", &size],
            &v4(&dut),
        );
    }
    println!(
        "figures: ping on {}: fragmented IPv4 pings answered, up to {} B of data",
        dut.board_name(),
        sizes.last().expect("a size")
    );
    dut.assert_running();
}

/// `ping -f -c 20000`: at most 1 % of the requests go unanswered, and the
/// device still greets a client afterwards.
pub fn flood_of_twenty_thousand_loses_at_most_one_percent(board: BoardKind) {
    let _alone = alone();
    let dut = Dut::start(board);
    let count = FLOOD_COUNT.to_string();
    let (output, summary) = ping(
        &dut,
        &["-f", "-c", &count, "-w", "240"],
        &v4(&dut),
        Duration::from_secs(250),
    );
    let loss = summary.loss_percent();
    println!(
        "figures: ping -f -c {count} on {}: {} sent, {} answered, {loss:.3} % loss, {:.1} s",
        dut.board_name(),
        summary.transmitted,
        summary.received,
        output.elapsed.as_secs_f64()
    );
    assert_eq!(summary.transmitted, FLOOD_COUNT, "{}", output.stdout);
    assert!(
        loss <= FLOOD_MAX_LOSS_PERCENT,
        "the flood lost {loss:.3} % (at most {FLOOD_MAX_LOSS_PERCENT} % allowed):\n{}",
        output.stdout
    );
    let mut client = dut.lab_client().expect("HELLO after the ping flood");
    assert_eq!(client.echo("after the flood").unwrap(), "after the flood");
    dut.assert_running();
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn summary_parses() {
        let out = "--- 192.168.69.1 ping statistics ---\n\
                   20000 packets transmitted, 19998 received, 0.01% packet loss, time 2604ms\n";
        let s = Summary::parse(out).unwrap();
        assert_eq!(s.transmitted, 20000);
        assert_eq!(s.received, 19998);
        assert!((s.loss_percent() - 0.01).abs() < 1e-9);
        let lost = "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n";
        assert_eq!(Summary::parse(lost).unwrap().received, 0);
        let errors = "3 packets transmitted, 0 received, +3 errors, 100% packet loss\n";
        assert_eq!(Summary::parse(errors).unwrap().received, 0);
    }
}
