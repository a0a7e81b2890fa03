//! The frames cases: a [`Session`] with clients in the middle of things,
//! the seed frames mutations start from, and hand-made TCP segments.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use socklab_app::protocol;
use socklab_app::smoltcp::phy::ChecksumCapabilities;
use socklab_app::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv6Address, NdiscRepr,
    RawHardwareAddress, TcpPacket, TcpSeqNumber,
};
use socklab_app::{config, BacklogPolicy};

use super::{fix_frame, fuzz_config, mutate, Mutation, PooledNet, DRAIN_MS, ETH_LEN, FUZZ_SIZES};
use crate::common::{
    device, device_v4, device_v6, ip_frame, ip_of, ping_frame, syn_frame, tcp_of, Conn, Dir,
    CLIENT_MAC, CLIENT_V4, CLIENT_V6,
};

/// Who a hand-made TCP segment claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of the [`Session`]'s connections (index modulo their number):
    /// its addresses, and sequence numbers relative to its own.
    Conn(usize),
    /// A new client port to `PORTS[port % PORTS.len()]` on the device;
    /// sequence numbers as given.
    Port { port: usize, v6: bool },
}

/// The device's services and a closed port.
pub const PORTS: [u16; 5] = [
    protocol::LAB_PORT,
    protocol::ECHO_PORT,
    protocol::DISCARD_PORT,
    protocol::CHARGEN_PORT,
    1234,
];

/// A TCP segment written field by field, with a correct checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its connection.
    pub target: Target,
    /// Added to the connection's next sequence number.
    pub seq: i32,
    /// Added to the connection's next acknowledgment number.
    pub ack: i32,
    /// The flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10,
    /// URG 0x20, ECE 0x40, CWR 0x80), any combination.
    pub flags: u8,
    /// Window field.
    pub window: u16,
    /// Raw option bytes (at most 40 used, zero-padded to a multiple of 4).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// One frame of a frames case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameInput {
    /// These bytes, exactly.
    Raw(Vec<u8>),
    /// An Ethernet header from the client to the device with `ethertype`,
    /// then `bytes`.
    Ethernet { ethertype: u16, bytes: Vec<u8> },
    /// A well-formed IPv4 or IPv6 header from the client to the device,
    /// protocol `protocol`, then `payload` (its checksum fixed if `fix`).
    Ip {
        v6: bool,
        protocol: u8,
        payload: Vec<u8>,
        fix: bool,
    },
    /// Seed frame `index` (modulo [`seed_frames`]' length), mutated, then
    /// fixed as [`fix_frame`] says.
    Seed {
        index: usize,
        mutations: Vec<Mutation>,
        fix_lengths: bool,
        fix_checksums: bool,
    },
    /// A hand-made TCP segment.
    Segment(Segment),
    /// Not a frame: the [`Session`]'s client `conn` (index modulo their
    /// number) queues `bytes`, as much as its buffer takes, so that real
    /// traffic runs between the injected frames.
    Send { conn: usize, bytes: Vec<u8> },
}

/// A frame to inject, then how long to let pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameStep {
    /// The frame.
    pub input: FrameInput,
    /// Simulated milliseconds to run after injecting it.
    pub wait_ms: u16,
}

/// A session connection's addresses and what its client would send next.
#[derive(Debug, Clone, Copy)]
struct Flow {
    local: SocketAddr,
    remote: SocketAddr,
    seq: TcpSeqNumber,
    ack: TcpSeqNumber,
}

/// The device in the middle of things: two lab clients (IPv4, IPv6) that
/// have talked, and an echo, a discard and a chargen client. Every
/// session is the same frame for frame, so a frame captured from one is in
/// sequence for the next.
pub struct Session {
    /// The device and the clients' interface.
    pub net: PooledNet,
    /// The clients' connections.
    pub conns: Vec<Conn>,
    flows: Vec<Flow>,
    /// Frames the clients sent while the session was set up.
    pub sent: Vec<Vec<u8>>,
}

impl Session {
    /// Sets the session up.
    pub fn new() -> Session {
        let mut net = PooledNet::new(fuzz_config(BacklogPolicy::Wait), FUZZ_SIZES);
        net.set_capture(true);
        let (mut v4, _) = net.lab(false);
        let (mut v6, _) = net.lab(true);
        assert_eq!(net.ask(&mut v4, "ECHO seed"), "seed");
        assert_eq!(net.ask(&mut v6, "SAY seed"), protocol::OK);
        assert!(net.line(&mut v4).starts_with("FROM "));
        let echo = net.connect(device(false, protocol::ECHO_PORT));
        net.send(&echo, b"echo me");
        let discard = net.connect(device(true, protocol::DISCARD_PORT));
        net.send(&discard, &[0x5a; 300]);
        // A small window: chargen fills it and waits.
        let chargen = net.open_with(device(false, protocol::CHARGEN_PORT), 512, 512);
        net.established(&chargen);
        net.run(20);
        let conns = vec![v4, v6, echo, discard, chargen];

        let sent: Vec<Vec<u8>> = net
            .captured
            .drain(..)
            .filter(|(dir, _)| *dir == Dir::ToApp)
            .map(|(_, frame)| frame)
            .collect();
        net.set_capture(false);
        let flows = conns
            .iter()
            .map(|conn| {
                let last = sent
                    .iter()
                    .rev()
                    .find_map(|f| next_of(f, conn.local, conn.remote))
                    .expect("every session client sent something");
                Flow {
                    local: conn.local,
                    remote: conn.remote,
                    seq: last.0,
                    ack: last.1,
                }
            })
            .collect();
        Session {
            net,
            conns,
            flows,
            sent,
        }
    }

    /// The frame `input` describes in this session (empty for
    /// [`FrameInput::Send`], which is no frame).
    pub fn frame(&self, input: &FrameInput) -> Vec<u8> {
        match input {
            FrameInput::Raw(bytes) => bytes.clone(),
            FrameInput::Ethernet { ethertype, bytes } => {
                let mut frame = vec![0; ETH_LEN];
                EthernetRepr {
                    src_addr: CLIENT_MAC,
                    dst_addr: config::DEFAULT_MAC,
                    ethertype: EthernetProtocol::from(*ethertype),
                }
                .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
                frame.extend_from_slice(bytes);
                frame
            }
            FrameInput::Ip {
                v6,
                protocol,
                payload,
                fix,
            } => {
                let (src, dst): (IpAddr, IpAddr) = if *v6 {
                    (CLIENT_V6.into(), device_v6().into())
                } else {
                    (CLIENT_V4.into(), device_v4().into())
                };
                let mut frame =
                    ip_frame(src, dst, IpProtocol::from(*protocol), payload.len(), |b| {
                        b.copy_from_slice(payload)
                    });
                fix_frame(&mut frame, false, *fix);
                frame
            }
            FrameInput::Seed {
                index,
                mutations,
                fix_lengths,
                fix_checksums,
            } => {
                let seeds = seed_frames();
                let mut frame = seeds[index % seeds.len()].clone();
                for mutation in mutations {
                    mutate(&mut frame, mutation);
                }
                fix_frame(&mut frame, *fix_lengths, *fix_checksums);
                frame
            }
            FrameInput::Segment(segment) => self.segment(segment),
            FrameInput::Send { .. } => Vec::new(),
        }
    }

    /// Injects the frame of `step` (or has the session's client send),
    /// then runs the net for the step's wait.
    pub fn step(&mut self, step: &FrameStep) {
        match &step.input {
            FrameInput::Send { conn, bytes } => {
                let conn = &self.conns[conn % self.conns.len()];
                let socket = self.net.socket(conn);
                if socket.may_send() {
                    let _ = socket.send_slice(bytes);
                }
            }
            input => {
                let frame = self.frame(input);
                self.net.inject(frame);
            }
        }
        self.net.run(u64::from(step.wait_ms));
    }

    fn segment(&self, s: &Segment) -> Vec<u8> {
        let (local, remote, seq, ack) = match s.target {
            Target::Conn(i) => {
                let flow = self.flows[i % self.flows.len()];
                (flow.local, flow.remote, flow.seq, flow.ack)
            }
            Target::Port { port, v6 } => {
                let client = SocketAddr::new(
                    if v6 {
                        CLIENT_V6.into()
                    } else {
                        CLIENT_V4.into()
                    },
                    50_000,
                );
                let device = device(v6, PORTS[port % PORTS.len()]);
                (client, device, TcpSeqNumber(0), TcpSeqNumber(0))
            }
        };
        let seq = TcpSeqNumber(seq.0.wrapping_add(s.seq));
        let ack = TcpSeqNumber(ack.0.wrapping_add(s.ack));
        let mut options = s.options.clone();
        options.truncate(40);
        options.resize(options.len().div_ceil(4) * 4, 0);
        let header = 20 + options.len();
        let mut tcp = vec![0u8; header];
        tcp[0..2].copy_from_slice(&local.port().to_be_bytes());
        tcp[2..4].copy_from_slice(&remote.port().to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.0.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.0.to_be_bytes());
        tcp[12] = ((header / 4) as u8) << 4;
        tcp[13] = s.flags;
        tcp[14..16].copy_from_slice(&s.window.to_be_bytes());
        tcp[20..].copy_from_slice(&options);
        tcp.extend_from_slice(&s.payload);
        let (src, dst) = (IpAddress::from(local.ip()), IpAddress::from(remote.ip()));
        TcpPacket::new_unchecked(&mut tcp[..]).fill_checksum(&src, &dst);
        ip_frame(local.ip(), remote.ip(), IpProtocol::Tcp, tcp.len(), |b| {
            b.copy_from_slice(&tcp)
        })
    }

    /// Gets every client out of the way (reset, and forgotten), lets
    /// [`DRAIN_MS`] pass and asserts every end is counted and the pool
    /// is whole.
    pub fn finish(mut self) {
        self.leave();
        // Not `assert_no_end_counted_twice`: a handshake the stack ends
        // is counted as a reset (tests/fuzz.rs, ignored tests).
        self.net.assert_no_end_uncounted();
        self.net.assert_pool_whole();
    }

    /// Resets and forgets every client, then lets [`DRAIN_MS`] pass.
    pub fn leave(&mut self) {
        for conn in self.conns.drain(..) {
            self.net.socket(&conn).abort();
            self.net.settle();
            self.net.remove(conn);
        }
        self.net.run(DRAIN_MS);
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// If `frame` is a TCP segment from `local` to `remote`: the sequence
/// number after it and its acknowledgment number.
fn next_of(
    frame: &[u8],
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<(TcpSeqNumber, TcpSeqNumber)> {
    let seen = tcp_of(frame)?;
    if seen.src != local || seen.dst != remote {
        return None;
    }
    let (_, _, _, payload) = ip_of(frame)?;
    let tcp = TcpPacket::new_checked(payload).ok()?;
    let len = tcp.payload().len() + usize::from(tcp.syn()) + usize::from(tcp.fin());
    Some((tcp.seq_number() + len, tcp.ack_number()))
}

/// The frames mutations start from: everything the clients of a
/// [`Session`] sent (handshakes, lab lines, bulk data, ACKs, window
/// updates), then ARP, NDISC, pings, SYNs to every service and a closed
/// port, and UDP, all built with `smoltcp::wire`.
pub fn seed_frames() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Session::new().sent;
        let (c4, c6): (IpAddr, IpAddr) = (CLIENT_V4.into(), CLIENT_V6.into());
        let (d4, d6): (IpAddr, IpAddr) = (device_v4().into(), device_v6().into());
        seeds.push(arp_frame(ArpOperation::Request));
        seeds.push(arp_frame(ArpOperation::Reply));
        seeds.push(neighbor_solicitation());
        seeds.push(ping_frame(c4, d4, 0x1234, 1, b"ping seed"));
        seeds.push(ping_frame(c6, d6, 0x1234, 2, b"ping seed"));
        for (i, port) in PORTS.into_iter().enumerate() {
            let seq = 1_000 * i as i32;
            let port4 = SocketAddr::new(c4, 51_000 + i as u16);
            let port6 = SocketAddr::new(c6, 52_000 + i as u16);
            seeds.push(syn_frame(port4, device(false, port), seq));
            seeds.push(syn_frame(port6, device(true, port), seq));
        }
        for (src, dst) in [(c4, d4), (c6, d6)] {
            let udp = [0x9c, 0x40, 0x00, 0x44, 0x00, 0x0c, 0, 0, 1, 2, 3, 4];
            let mut frame = ip_frame(src, dst, IpProtocol::Udp, udp.len(), |b| {
                b.copy_from_slice(&udp)
            });
            fix_frame(&mut frame, false, true);
            seeds.push(frame);
        }
        seeds
    })
}

fn arp_frame(operation: ArpOperation) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: CLIENT_MAC,
        source_protocol_addr: CLIENT_V4,
        target_hardware_addr: match operation {
            ArpOperation::Reply => config::DEFAULT_MAC,
            _ => EthernetAddress([0; 6]),
        },
        target_protocol_addr: device_v4(),
    };
    let mut frame = vec![0; ETH_LEN + repr.buffer_len()];
    EthernetRepr {
        src_addr: CLIENT_MAC,
        dst_addr: match operation {
            ArpOperation::Reply => config::DEFAULT_MAC,
            _ => EthernetAddress::BROADCAST,
        },
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    repr.emit(&mut ArpPacket::new_unchecked(&mut frame[ETH_LEN..]));
    frame
}

fn neighbor_solicitation() -> Vec<u8> {
    let target: Ipv6Address = device_v6();
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(CLIENT_MAC)),
    });
    let (src, dst) = (CLIENT_V6, device_v6());
    let mut frame = ip_frame(
        src.into(),
        dst.into(),
        IpProtocol::Icmpv6,
        repr.buffer_len(),
        |b| {
            repr.emit(
                &src,
                &dst,
                &mut Icmpv6Packet::new_unchecked(b),
                &ChecksumCapabilities::default(),
            )
        },
    );
    // NDISC wants a hop limit of 255.
    frame[ETH_LEN + 7] = 255;
    frame
}

/// Injects every frame of `steps` into a [`Session`], running the net
/// after each, then finishes it (every client gone, the pool checked).
pub fn run_frames(steps: &[FrameStep]) {
    let mut session = Session::new();
    for step in steps {
        session.step(step);
    }
    session.finish();
}
