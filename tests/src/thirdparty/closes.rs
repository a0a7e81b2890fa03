//! Every connection of the captured mixed session that closed cleanly ends
//! as RFC 9293 says, read by tshark from every capture of it (the wire, and
//! on linux-tap the device's own capture too): FIN and its ACK both ways, no
//! RST from the device, and no client FIN retransmitted (the device
//! acknowledged it the first time).

use std::collections::BTreeMap;
use std::time::Duration;

use super::tshark::{
    dissect, finish_captures, mixed_session, start_with_captures, Capture, Frame, Segment,
};
use super::TempDir;
use crate::BoardKind;

/// What one TCP connection of a capture did.
#[derive(Debug, Default, Clone)]
pub struct Connection {
    /// The device's port.
    pub port: u16,
    /// The device accepted it (sent SYN-ACK).
    pub accepted: bool,
    /// The client's SYNs.
    pub client_syns: usize,
    /// FIN segments the client sent (more than one: retransmitted).
    pub client_fins: Vec<Segment>,
    /// FIN segments the device sent.
    pub device_fins: Vec<Segment>,
    /// The client reset it.
    pub client_rst: bool,
    /// RST segments the device sent, by frame number.
    pub device_rsts: Vec<u32>,
    /// Acknowledgement numbers the device sent.
    pub device_acks: Vec<u64>,
    /// Acknowledgement numbers the client sent.
    pub client_acks: Vec<u64>,
}

/// The sequence number just past a FIN segment (what its ACK carries).
fn past(fin: &Segment) -> u64 {
    fin.seq + fin.len + 1
}

impl Connection {
    /// The client sent a SYN, the device its SYN-ACK, and the client a RST
    /// and nothing else: the client's connect had given up. No data, no FIN,
    /// no RST from the device.
    pub fn abandoned_handshake(&self) -> bool {
        self.accepted
            && self.client_syns > 0
            && self.client_rst
            && self.client_acks.is_empty()
            && self.client_fins.is_empty()
            && self.device_fins.is_empty()
            && self.device_rsts.is_empty()
    }

    /// Why this connection did not close cleanly, if it did not.
    pub fn close_problem(&self) -> Option<String> {
        if !self.device_rsts.is_empty() {
            return Some(format!(
                "the device sent RST in frames {:?}",
                self.device_rsts
            ));
        }
        let Some(client_fin) = self.client_fins.first() else {
            return Some("the client sent no FIN".to_owned());
        };
        let Some(device_fin) = self.device_fins.first() else {
            return Some("the device sent no FIN".to_owned());
        };
        if self.client_fins.len() > 1 {
            return Some(format!(
                "the client sent its FIN {} times",
                self.client_fins.len()
            ));
        }
        if !self.device_acks.contains(&past(client_fin)) {
            return Some("the device never acknowledged the client's FIN".to_owned());
        }
        if !self.client_acks.contains(&past(device_fin)) {
            return Some("the client never acknowledged the device's FIN".to_owned());
        }
        None
    }
}

/// Groups a capture's TCP frames by connection.
pub fn connections(frames: &[Frame]) -> BTreeMap<u32, Connection> {
    let mut all: BTreeMap<u32, Connection> = BTreeMap::new();
    for frame in frames {
        let Some(s) = frame.tcp else { continue };
        let c = all.entry(s.stream).or_default();
        if frame.from_device {
            c.accepted |= s.syn && s.ack;
            if s.fin {
                c.device_fins.push(s);
            }
            if s.rst {
                c.device_rsts.push(frame.number);
            }
            if s.ack {
                c.device_acks.push(s.ack_no);
            }
        } else {
            c.port = s.dst_port;
            if s.syn {
                c.client_syns += 1;
            }
            if s.fin {
                c.client_fins.push(s);
            }
            c.client_rst |= s.rst;
            if s.ack {
                c.client_acks.push(s.ack_no);
            }
        }
    }
    all
}

/// Captures the mixed session and checks every connection's close: each one
/// the device accepted and the client did not reset ends FIN/ACK both ways
/// with no RST from the device and no client FIN retransmitted; each refused
/// one got exactly the device's RST.
pub fn every_clean_close_ends_with_fin_ack_both_ways(board: BoardKind) {
    let dir = TempDir::new("closes");
    let (dut, wire) = start_with_captures(board, dir.path());
    let (expected_clean, expected_refused) = mixed_session(&dut);
    // A client FIN the device left unacknowledged is retransmitted after
    // Linux's 200 ms minimum RTO: wait long enough to see it.
    std::thread::sleep(Duration::from_secs(1));
    dut.assert_running();
    for capture in finish_captures(board, dir.path(), wire) {
        check_closes(&dut, &capture, expected_clean, expected_refused);
    }
}

fn check_closes(
    dut: &crate::Dut,
    capture: &Capture,
    expected_clean: usize,
    expected_refused: usize,
) {
    let label = capture.label;
    let frames = dissect(&capture.pcap);
    let all = connections(&frames);
    let mut checked = 0;
    let mut refused = 0;
    let mut device_rsts = 0;
    let mut before = 0;
    let mut abandoned = 0;
    let mut problems = Vec::new();
    for (stream, c) in &all {
        if capture.wire.is_some() && !c.accepted && c.client_syns == 0 {
            // The wire capture starts once the device is up: the end of the
            // launcher's own check (a HELLO, then QUIT) may still be on the
            // wire; the device's own capture has every connection whole.
            before += 1;
        } else if c.accepted && !c.client_rst {
            checked += 1;
            device_rsts += c.device_rsts.len();
            if let Some(problem) = c.close_problem() {
                problems.push(format!("connection {stream} to port {}: {problem}", c.port));
            }
        } else if !c.accepted && c.client_syns > 0 && c.device_rsts.len() == 1 {
            refused += 1;
        } else if c.abandoned_handshake() {
            // A connect that gave up (the launcher's readiness check, under
            // load) before the device's SYN-ACK came: the client's kernel
            // answers that SYN-ACK with RST. No connection was made, so there
            // is no close to check; the device sent no RST.
            abandoned += 1;
        } else {
            problems.push(format!(
                "connection {stream}: neither closed nor refused: {c:?}"
            ));
        }
    }
    println!(
        "figures: tshark closes on {}, {label}: {checked} closes checked, {device_rsts} RSTs \
         from the device on them, {} client FINs retransmitted; {refused} refused connects got \
         one RST each; {before} begun before the capture; {abandoned} handshakes the client \
         abandoned",
        dut.board_name(),
        all.values()
            .map(|c| c.client_fins.len().saturating_sub(1))
            .sum::<usize>()
    );
    assert!(
        problems.is_empty(),
        "{label}: {} unclean closes, the first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    // The launcher's own readiness check (a HELLO, then QUIT) is one more.
    assert!(
        checked >= expected_clean,
        "{label}: {checked} connections closed cleanly, the session closed {expected_clean}"
    );
    assert_eq!(refused, expected_refused, "{label}: connections refused");
}
