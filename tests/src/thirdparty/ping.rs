//! iputils `ping` against the device: IPv4 and IPv6, the largest datagram
//! that fits the link with "don't fragment", and a 20,000-packet flood.

use std::time::Duration;

use super::{alone, in_netns, run, ToolOutput};
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
    assert!(summary.transmitted > 0);
    summary
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
    // One byte more does not fit: ping itself refuses to send it with DF.
    let too_big = (LINK_MTU - 20 - 8 + 1).to_string();
    let (output, summary) = ping(
        &dut,
        &["-c", "1", "-W", "1", "-M", "do", "-s", &too_big],
        &v4(&dut),
        Duration::from_secs(10),
    );
    assert_eq!(
        summary.received, 0,
        "a datagram over the MTU with DF was answered:\n{}",
        output.stdout
    );
    println!(
        "figures: ping on {}: v4 and v6 answered; largest unfragmented: {} B ICMPv4 payload \
         ({LINK_MTU} B datagram), {} B ICMPv6 payload",
        dut.board_name(),
        v4_payload,
        v6_payload
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
