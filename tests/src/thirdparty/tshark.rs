//! tshark on captures of a mixed session: lab sessions closed by `QUIT` and
//! by the client, echo/discard/chargen transfers (one client announcing an
//! MSS of 536), clients waiting in the backlog, refused ports and pings.
//! Every board's wire is read: QEMU's `filter-dump` on the QEMU boards; on
//! linux-tap, the TAP's namespace side ([`super::wire`]) next to the
//! device's own capture (`socklab-tap --pcap`), which tests that feature.
//! Wireshark's dissectors must find no malformed frame, every frame the
//! device sent must carry valid IP, TCP, UDP and ICMP checksums (on the TAP,
//! as the kernel completes its partial sums), and no segment to a client may
//! carry more than the MSS that client announced.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::time::Duration;

use socklab_app::config::DEFAULT_MAC;
use socklab_app::protocol::{info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};
use socklab_host::client::LabClient;

use super::wire::{WireCapture, WireFrame};
use super::{in_netns, info_value, require, run, TempDir};
use crate::{eventually, BoardKind, Dut, StartOptions};

/// The MSS the mixed session's small-segment client announces (the
/// smallest IPv4 MSS every host must accept).
pub const SMALL_MSS: u16 = 536;

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
    "tcp.options.mss_val",
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
    /// The MSS option, if the segment carries one.
    pub mss: Option<u16>,
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
        let device_mac = socklab_app::protocol::Mac(DEFAULT_MAC).to_string();
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
                mss: first(f[17]).parse().ok(),
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

/// A connection to the device's `port` from a socket that announces `mss`
/// (`TCP_MAXSEG` set before connecting).
fn connect_with_mss(dut: &Dut, port: u16, mss: u16) -> std::net::TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = dut.addr(port);
    dut.host_net()
        .run(move || -> std::io::Result<std::net::TcpStream> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_mss(u32::from(mss))?;
            socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
            socket.set_read_timeout(Some(Duration::from_secs(15)))?;
            Ok(socket.into())
        })
        .expect("enter the device's namespace")
        .unwrap_or_else(|e| panic!("connect to port {port} announcing MSS {mss}: {e}"))
}

/// The kernel's `rcvmss` of `stream` (`ss -tin`): its estimate of the
/// largest segment payload it received, capped at the MSS it announced.
fn rcvmss(dut: &Dut, stream: &std::net::TcpStream) -> u32 {
    let local = stream.local_addr().expect("the local address");
    let mut command = in_netns(dut, "ss");
    command.args(["-tin", "src", &local.to_string()]);
    let output = run(command, Duration::from_secs(10));
    output.assert_success();
    output
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rcvmss:")?.parse().ok())
        .unwrap_or_else(|| panic!("no rcvmss for {local} in `ss -tin`:\n{}", output.stdout))
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
    // A client announcing MSS 536 reads chargen's stream and has 16 KiB
    // echoed: no segment to it may carry more. The captures check each
    // segment; the kernel's `rcvmss` is only shown: it caps what it measured
    // at the MSS it announced, so it cannot see a larger segment.
    let mut small = connect_with_mss(dut, CHARGEN_PORT, SMALL_MSS);
    small.read_exact(&mut some).unwrap();
    println!(
        "figures: a client announcing MSS {SMALL_MSS} on {}: the kernel's rcvmss {}",
        dut.board_name(),
        rcvmss(dut, &small)
    );
    close_from_client(small);
    clean += 1;
    let mut small = connect_with_mss(dut, ECHO_PORT, SMALL_MSS);
    small.write_all(&data[..16 * 1024]).unwrap();
    small.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut small), &data[..16 * 1024], "echo");
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

/// Starts a device on `board` with its own capture in `dir`, and on
/// linux-tap a capture of the wire too.
pub fn start_with_captures(board: BoardKind, dir: &Path) -> (Dut, Option<WireCapture>) {
    let dut = start_with_capture(board, &dir.join("session.pcap"));
    let wire = (board == BoardKind::Tap).then(|| WireCapture::start(&dut));
    (dut, wire)
}

/// A capture to check: what it is, its file, and on the TAP's wire the
/// frames with their offload descriptions (in the file's order).
pub struct Capture {
    /// For messages.
    pub label: &'static str,
    /// The pcap file.
    pub pcap: std::path::PathBuf,
    /// The wire capture's frames.
    pub wire: Option<Vec<WireFrame>>,
    /// Its frames are the segments as they go on a link (not linux-tap's
    /// own capture, which records super-frames without their `gso_size`).
    pub segments: bool,
}

/// Stops the captures [`start_with_captures`] started: the device's own
/// (on QEMU boards, the wire) and, on linux-tap, the wire's.
pub fn finish_captures(board: BoardKind, dir: &Path, wire: Option<WireCapture>) -> Vec<Capture> {
    let own = match board {
        BoardKind::Tap => "the device's own capture",
        _ => "QEMU's capture of the wire",
    };
    let mut captures = vec![Capture {
        label: own,
        pcap: dir.join("session.pcap"),
        wire: None,
        segments: board != BoardKind::Tap,
    }];
    if let Some(wire) = wire {
        let pcap = dir.join("wire.pcap");
        let frames = wire.finish(&pcap);
        captures.push(Capture {
            label: "the wire (the TAP's namespace side)",
            pcap,
            wire: Some(frames),
            segments: true,
        });
    }
    captures
}

/// Captures a mixed session and checks every capture of it: nothing
/// malformed, every checksum in every frame the device sent valid (on the
/// TAP's wire, after completing the partial sums the offloads leave, whose
/// convention is checked too), and no segment to a client longer than the
/// MSS it announced (on the wire, a super-frame's `gso_size`).
pub fn device_frames_are_well_formed_with_valid_checksums(board: BoardKind) {
    let dir = TempDir::new("tshark");
    let (dut, wire) = start_with_captures(board, dir.path());
    let (clean, refused) = mixed_session(&dut);
    // Let the last ACKs reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    dut.assert_running();
    for capture in finish_captures(board, dir.path(), wire) {
        check_capture(&dut, &capture, clean, refused);
    }
}

fn check_capture(dut: &Dut, capture: &Capture, clean: usize, refused: usize) {
    let label = capture.label;
    let frames = dissect(&capture.pcap);
    let bad = malformed(&capture.pcap);
    assert!(
        bad.is_empty(),
        "tshark finds errors in frames of {label}:\n{}",
        bad.join("\n")
    );
    if let Some(wire) = &capture.wire {
        assert_eq!(wire.len(), frames.len(), "{label}: frames written and read");
    }
    let sent: Vec<&Frame> = frames.iter().filter(|f| f.from_device).collect();
    let mut verified: BTreeMap<&str, usize> = BTreeMap::new();
    for frame in &sent {
        for (proto, status) in &frame.checksums {
            assert_eq!(
                *status, 1,
                "{label}: frame {} from the device: {proto} checksum status {status} \
                 (0 bad, 2 unverified)",
                frame.number
            );
            *verified.entry(proto).or_default() += 1;
        }
    }
    for proto in ["tcp", "icmp"] {
        assert!(
            verified.contains_key(proto),
            "{label}: no {proto} checksum checked"
        );
    }
    // The offloads: each partial sum by the kernel's convention; each
    // segment within its client's MSS.
    let wire = capture.wire.as_deref();
    let mut partial = 0;
    let mut super_frames = 0;
    if let Some(wire) = wire {
        for (frame, w) in frames.iter().zip(wire).filter(|(f, _)| f.from_device) {
            assert!(!w.to_device, "{label}: frame {} direction", frame.number);
            if w.offload.needs_csum() {
                partial += 1;
            }
            if let Some(problem) = &w.partial_sum_problem {
                panic!("{label}: frame {} from the device: {problem}", frame.number);
            }
        }
    }
    let mut client_mss: BTreeMap<u32, u16> = BTreeMap::new();
    for s in frames
        .iter()
        .filter(|f| !f.from_device)
        .filter_map(|f| f.tcp)
    {
        if let (true, Some(mss)) = (s.syn, s.mss) {
            client_mss.insert(s.stream, mss);
        }
    }
    let mut small_mss_segments = 0;
    let mut largest_to_small = 0;
    let segments = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| capture.segments && f.from_device);
    for (n, frame) in segments {
        let Some(s) = frame.tcp else { continue };
        let Some(&mss) = client_mss.get(&s.stream) else {
            continue;
        };
        let offload = wire.map(|w| w[n].offload).unwrap_or_default();
        let segment = if offload.gso_type != 0 {
            super_frames += 1;
            u64::from(offload.gso_size)
        } else {
            s.len
        };
        assert!(
            segment <= u64::from(mss),
            "{label}: frame {} from the device carries segments of {segment} bytes to a client \
             that announced MSS {mss} (gso_size {}, payload {})",
            frame.number,
            offload.gso_size,
            s.len
        );
        if mss == SMALL_MSS && s.len > 0 {
            small_mss_segments += 1;
            largest_to_small = largest_to_small.max(segment);
        }
    }
    assert!(
        !capture.segments || small_mss_segments > 0,
        "{label}: no data segment to the client that announced MSS {SMALL_MSS}"
    );
    let mss_verdict = if capture.segments {
        format!(
            "every segment within its client's MSS (largest to the MSS {SMALL_MSS} client: \
             {largest_to_small} B)"
        )
    } else {
        "segment sizes not read (super-frames without their gso_size)".to_owned()
    };
    println!(
        "figures: tshark on {}, {label}: {} frames ({} from the device), 0 malformed; \
         checksums verified on device frames: {verified:?}; {partial} partial sums completed, \
         {super_frames} super-frames, {mss_verdict}; session: {clean} clean closes, \
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
        let line = "12\t02:00:00:00:00:01\t2\t1\t\t\t\t3\t0\t1\t1\t0\t73\t40\t0\t\t6666\t";
        assert_eq!(line.split('\t').count(), FIELDS.len());
        let f = Frame::parse(line).unwrap();
        assert!(f.from_device);
        assert_eq!(f.checksums, [("ip", 2), ("tcp", 1)]);
        let s = f.tcp.unwrap();
        assert!(s.fin && s.ack && !s.syn && !s.rst && !s.retransmission);
        assert_eq!((s.stream, s.seq, s.ack_no, s.dst_port), (3, 73, 40, 6666));
        assert_eq!(s.mss, None);
        let syn = "1\t0a:bb:cc:dd:ee:ff\t1\t1\t\t\t\t0\t1\t0\t0\t0\t0\t0\t0\t\t19\t536";
        assert_eq!(Frame::parse(syn).unwrap().tcp.unwrap().mss, Some(536));
        let icmp = "5\t0a:bb:cc:dd:ee:ff\t1,1\t\t\t1\t\t\t\t\t\t\t\t\t\t\t\t";
        let f = Frame::parse(icmp).unwrap();
        assert!(!f.from_device && f.tcp.is_none());
        assert_eq!(f.checksums.len(), 3);
    }
}
