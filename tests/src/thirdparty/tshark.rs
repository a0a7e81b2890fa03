//! tshark on the device's own capture (`socklab-tap --pcap`, QEMU's
//! `filter-dump`) of a mixed session: lab sessions closed by `QUIT` and by
//! the client, echo/discard/chargen transfers, clients waiting in the
//! backlog, refused ports and pings. Wireshark's dissectors must find no
//! malformed frame, and every frame the device sent must carry valid IP,
//! TCP, UDP and ICMP checksums.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::time::Duration;

use socklab_app::config::DEFAULT_MAC;
use socklab_app::protocol::{info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};
use socklab_host::client::LabClient;

use super::{info_value, require, run, TempDir};
use crate::{eventually, BoardKind, Dut, StartOptions};

/// The fields tshark prints per frame, in this order.
const FIELDS: &[&str] = &[
    "frame.number",
    "eth.src",
    "ip.checksum.status",
    "tcp.checksum.status",
    "udp.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
    "tcp.stream",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.fin",
    "tcp.flags.reset",
    "tcp.seq",
    "tcp.ack",
    "tcp.len",
    "tcp.analysis.retransmission",
    "tcp.dstport",
];

/// One frame as tshark dissected it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its number in the capture.
    pub number: u32,
    /// Sent by the device (its MAC is the source).
    pub from_device: bool,
    /// Checksum verdicts present in the frame (protocol, tshark's status:
    /// 0 bad, 1 good, 2 unverified).
    pub checksums: Vec<(&'static str, u8)>,
    /// The TCP segment, if any.
    pub tcp: Option<Segment>,
}

/// A TCP segment's header facts (relative sequence numbers).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// tshark's connection index.
    pub stream: u32,
    /// SYN, ACK, FIN, RST.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Relative sequence number.
    pub seq: u64,
    /// Relative acknowledgement number.
    pub ack_no: u64,
    /// Payload bytes.
    pub len: u64,
    /// tshark flagged it as a retransmission.
    pub retransmission: bool,
    /// Destination port.
    pub dst_port: u16,
}

fn flag(field: &str) -> bool {
    matches!(field, "1" | "True" | "true")
}

impl Frame {
    /// Parses one line of `tshark -T fields` with [`FIELDS`].
    pub fn parse(line: &str) -> Option<Frame> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != FIELDS.len() {
            return None;
        }
        // smoltcp writes 02-00-00-00-00-01, tshark 02:00:00:00:00:01.
        let device_mac = DEFAULT_MAC.to_string().replace('-', ":");
        let checksums = [
            ("ip", f[2]),
            ("tcp", f[3]),
            ("udp", f[4]),
            ("icmp", f[5]),
            ("icmpv6", f[6]),
        ]
        .into_iter()
        // A frame may carry one protocol twice (an ICMP error quotes the
        // datagram it answers): every verdict counts.
        .flat_map(|(proto, v)| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(move |s| s.parse().map(|n| (proto, n)))
        })
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
        let tcp = if f[7].is_empty() {
            None
        } else {
            let first = |s: &str| s.split(',').next().unwrap_or("").to_owned();
            Some(Segment {
                stream: first(f[7]).parse().ok()?,
                syn: flag(&first(f[8])),
                ack: flag(&first(f[9])),
                fin: flag(&first(f[10])),
                rst: flag(&first(f[11])),
                seq: first(f[12]).parse().ok()?,
                ack_no: first(f[13]).parse().unwrap_or(0),
                len: first(f[14]).parse().unwrap_or(0),
                retransmission: !f[15].is_empty(),
                dst_port: first(f[16]).parse().ok()?,
            })
        };
        Some(Frame {
            number: f[0].parse().ok()?,
            from_device: f[1].eq_ignore_ascii_case(&device_mac),
            checksums,
            tcp,
        })
    }
}

/// Dissects `pcap` with tshark, every checksum check on, and returns its
/// frames.
pub fn dissect(pcap: &Path) -> Vec<Frame> {
    require("tshark");
    let mut command = std::process::Command::new("tshark");
    command.arg("-n").arg("-r").arg(pcap).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    let output = run(command, Duration::from_secs(120));
    output.assert_success();
    output
        .stdout
        .lines()
        .map(|l| {
            Frame::parse(l)
                .unwrap_or_else(|| panic!("cannot read tshark's line {l:?} ({})", output.command))
        })
        .collect()
}

/// The frames tshark calls malformed (`_ws.malformed`), as its one-line
/// summaries.
pub fn malformed(pcap: &Path) -> Vec<String> {
    let mut command = std::process::Command::new("tshark");
    command
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", "_ws.malformed || _ws.expert.severity == error"])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(["-o", "udp.check_checksum:TRUE"]);
    let output = run(command, Duration::from_secs(120));
    output.assert_success();
    output.stdout.lines().map(str::to_owned).collect()
}

/// Starts a device on `board` that captures its own frames to `pcap`.
pub fn start_with_capture(board: BoardKind, pcap: &Path) -> Dut {
    Dut::start_opts(
        board,
        StartOptions {
            pcap: Some(pcap.to_owned()),
            ..StartOptions::default()
        },
    )
}

/// Reads from `stream` until the peer closes; returns the bytes.
fn read_to_close(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
        .read_to_end(&mut bytes)
        .expect("the device closes after the client's FIN");
    bytes
}

/// A client that closes first: its FIN, then it reads until the device's.
fn close_from_client(mut stream: std::net::TcpStream) {
    stream.shutdown(Shutdown::Write).expect("send FIN");
    read_to_close(&mut stream);
}

/// The mixed session the capture records. Returns how many connections it
/// closed cleanly and how many it had refused.
pub fn mixed_session(dut: &Dut) -> (usize, usize) {
    let mut clean = 0;
    // A lab session closed by QUIT (the device closes first).
    let mut a = dut.lab_client().expect("HELLO");
    let mut b = dut.lab_client().expect("HELLO");
    assert_eq!(a.echo("captured").unwrap(), "captured");
    a.say("to b").unwrap();
    b.next_message(Duration::from_secs(5)).expect("FROM");
    a.who().unwrap();
    a.netstat().unwrap();
    let slots = info_value(&mut a, info::LAB_SLOTS) as usize;
    a.quit().unwrap();
    clean += 1;
    // A lab session the client closes.
    let b_stream = b.stream().try_clone().unwrap();
    drop(b);
    close_from_client(b_stream);
    clean += 1;
    // echo, discard, chargen, each closed by the client.
    let mut echo = dut.connect(ECHO_PORT).unwrap();
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    echo.write_all(&data).unwrap();
    echo.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut echo), data, "echo returns the bytes");
    clean += 1;
    let mut discard = dut.connect(DISCARD_PORT).unwrap();
    discard.write_all(&vec![b'x'; 256 * 1024]).unwrap();
    close_from_client(discard);
    clean += 1;
    let mut chargen = dut.connect(CHARGEN_PORT).unwrap();
    let mut some = vec![0u8; 16 * 1024];
    chargen.read_exact(&mut some).unwrap();
    close_from_client(chargen);
    clean += 1;
    // Every slot busy, two clients wait in the backlog, are served as two
    // clients QUIT, then everyone QUITs.
    let mut served: Vec<LabClient> = (0..slots)
        .map(|_| dut.lab_client().expect("HELLO"))
        .collect();
    let waiting: Vec<_> = (0..2).map(|_| dut.connect(LAB_PORT).unwrap()).collect();
    let queued = eventually(Duration::from_secs(10), || {
        (info_value(&mut served[0], info::LAB_QUEUED) == 2).then_some(())
    });
    assert!(queued.is_some(), "two clients wait in the backlog");
    for stream in waiting {
        served.pop().unwrap().quit().unwrap();
        clean += 1;
        let c = LabClient::from_stream(stream, Duration::from_secs(10)).expect("HELLO at last");
        served.insert(0, c);
    }
    for c in served {
        c.quit().unwrap();
        clean += 1;
    }
    // Refused ports and pings.
    let mut refused = 0;
    for &port in dut.closed_ports() {
        dut.connect(port).expect_err("nothing listens there");
        refused += 1;
    }
    dut.ping4().expect("ping answered");
    if dut.addr6(0).is_some() {
        dut.ping6().expect("ping6 answered");
    }
    (clean, refused)
}

/// Captures a mixed session and checks every frame: nothing malformed, and
/// every checksum in every frame the device sent is valid.
pub fn device_frames_are_well_formed_with_valid_checksums(board: BoardKind) {
    let dir = TempDir::new("tshark");
    let pcap = dir.path().join("session.pcap");
    let dut = start_with_capture(board, &pcap);
    let (clean, refused) = mixed_session(&dut);
    // Let the last ACKs reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    dut.assert_running();
    let frames = dissect(&pcap);
    let bad = malformed(&pcap);
    assert!(
        bad.is_empty(),
        "tshark finds errors in frames:\n{}",
        bad.join("\n")
    );
    let sent: Vec<&Frame> = frames.iter().filter(|f| f.from_device).collect();
    let mut verified: BTreeMap<&str, usize> = BTreeMap::new();
    for frame in &sent {
        for (proto, status) in &frame.checksums {
            assert_eq!(
                *status, 1,
                "frame {} from the device: {proto} checksum status {status} (0 bad, 2 unverified)",
                frame.number
            );
            *verified.entry(proto).or_default() += 1;
        }
    }
    for proto in ["tcp", "icmp"] {
        assert!(verified.contains_key(proto), "no {proto} checksum checked");
    }
    println!(
        "figures: tshark on {}'s capture: {} frames ({} from the device), 0 malformed; \
         checksums verified on device frames: {verified:?}; session: {clean} clean closes, \
         {refused} refused connects",
        dut.board_name(),
        frames.len(),
        sent.len()
    );
}

#[cfg(test)]
mod tests {
    use super::{Frame, FIELDS};

    #[test]
    fn field_line_parses() {
        let line = "12\t02:00:00:00:00:01\t2\t1\t\t\t\t3\t0\t1\t1\t0\t73\t40\t0\t\t6666";
        assert_eq!(line.split('\t').count(), FIELDS.len());
        let f = Frame::parse(line).unwrap();
        assert!(f.from_device);
        assert_eq!(f.checksums, [("ip", 2), ("tcp", 1)]);
        let s = f.tcp.unwrap();
        assert!(s.fin && s.ack && !s.syn && !s.rst && !s.retransmission);
        assert_eq!((s.stream, s.seq, s.ack_no, s.dst_port), (3, 73, 40, 6666));
        let icmp = "5\t0a:bb:cc:dd:ee:ff\t1,1\t\t\t1\t\t\t\t\t\t\t\t\t\t\t";
        let f = Frame::parse(icmp).unwrap();
        assert!(!f.from_device && f.tcp.is_none());
        assert_eq!(f.checksums.len(), 3);
    }
}
