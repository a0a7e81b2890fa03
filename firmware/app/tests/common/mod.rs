//! Test harness: the [`App`] and a client smoltcp [`Interface`] connected back
//! to back over an in-memory Ethernet link, driven by a simulated clock.
//!
//! Nothing here needs privileges or sleeps: frames are `Vec<u8>`s moved between
//! two queue-backed devices, and time only moves when the harness advances it
//! (to the next instant either side asked to be polled at, at least
//! [`MIN_STEP_MS`]). Every loop is bounded, so a test that waits for something
//! that never happens fails instead of hanging.
//!
//! The tests (`tests/*.rs`) and the benches (`benches/*.rs`) share this file;
//! each uses only part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socklab_app::protocol::{self, Hello, NetstatRow};
use socklab_app::smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use socklab_app::smoltcp::phy::{
    ChecksumCapabilities, Device, DeviceCapabilities, Medium, RxToken, TxToken,
};
use socklab_app::smoltcp::socket::tcp;
use socklab_app::smoltcp::time::{Duration, Instant};
use socklab_app::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpCidr, IpProtocol, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};
use socklab_app::{config, App, ClosingSocket, Config, LabSlot, Sizes, Storage, UdpPacketMetadata};

/// The client's Ethernet address.
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
/// The client's IPv4 address (the host side of the TAP in the README).
pub const CLIENT_V4: Ipv4Addr = config::HOST_IPV4;
/// The client's IPv6 address.
pub const CLIENT_V6: Ipv6Addr = config::HOST_IPV6;
/// Frame size both devices accept: a 1500-byte IP MTU plus the Ethernet header.
pub const LINK_MTU: usize = 1514;
/// Smallest step of the simulated clock, in milliseconds.
pub const MIN_STEP_MS: u64 = 1;
/// Most poll rounds at one instant before the harness declares a livelock.
const SETTLE_ROUNDS: usize = 10_000;
/// How long [`Net::line`] waits for a line, in simulated milliseconds.
pub const LINE_WAIT_MS: u64 = 3_000;
/// Buffer size of a client socket unless a test asks otherwise.
pub const CLIENT_BUFFER: usize = 64 * 1024;
/// First local port the client uses; each connection takes the next one.
const FIRST_CLIENT_PORT: u16 = 40_000;

/// A small pool, so that exhausting it is cheap.
pub const SMALL: Sizes = Sizes {
    lab_backlog: 0,
    lab_slots: 4,
    lab_rx: 1024,
    lab_tx: 2048,
    bulk_slots: 2,
    bulk_rx: 4096,
    bulk_tx: 4096,
    iperf3_sockets: 0,
    iperf3_rx: 0,
    iperf3_tx: 0,
    iperf2_sockets: 0,
    iperf2_rx: 0,
    lab_closing: 2,
    bulk_closing: 1,
};

/// The device's IPv4 address.
pub fn device_v4() -> Ipv4Addr {
    config::DEFAULT_IPV4.address()
}

/// The device's IPv6 address.
pub fn device_v6() -> Ipv6Addr {
    config::DEFAULT_IPV6.address()
}

/// The device's address on `port`, IPv6 if `v6`.
pub fn device(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(device_v6().into(), port)
    } else {
        SocketAddr::new(device_v4().into(), port)
    }
}

/// The device's lab service.
pub fn lab_addr(v6: bool) -> SocketAddr {
    device(v6, protocol::LAB_PORT)
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Sent by the application, on its way to the client.
    ToClient,
    /// Sent by the client, on its way to the application.
    ToApp,
}

/// One end of the link: frames to receive and frames transmitted, as queues.
#[derive(Debug, Default)]
pub struct QueueDevice {
    /// Frames waiting to be received by this end.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames this end transmitted, waiting to cross the link.
    pub tx: VecDeque<Vec<u8>>,
}

/// A received frame, handed to smoltcp.
pub struct QueueRx(Vec<u8>);

/// Room for one frame to transmit.
pub struct QueueTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl Device for QueueDevice {
    type RxToken<'a> = QueueRx;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((QueueRx(frame), QueueTx(&mut self.tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(QueueTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = LINK_MTU;
        caps
    }
}

impl RxToken for QueueRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for QueueTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.0.push_back(frame);
        result
    }
}

/// Decides whether a frame crosses the link (`false`: it is lost).
pub type Filter = Box<dyn FnMut(Dir, &[u8]) -> bool>;

/// The application, a client interface, the link between them and the clock.
pub struct Net {
    /// The simulated time.
    pub now: Instant,
    /// The device under test.
    pub app: App<'static>,
    app_dev: QueueDevice,
    /// The client's interface (192.168.69.100/24, fdaa::100/64).
    pub iface: Interface,
    client_dev: QueueDevice,
    /// The client's sockets.
    pub sockets: SocketSet<'static>,
    app_delay: Option<Duration>,
    next_port: u16,
    capture: bool,
    /// Frames that crossed the link (or were dropped) while capture was on.
    pub captured: Vec<(Dir, Vec<u8>)>,
    filter: Option<Filter>,
}

/// Leaks `len` values: each test's pool lives as long as the test process,
/// as a board's statics do.
fn leak<T>(len: usize, value: impl Fn() -> T) -> &'static mut [T] {
    (0..len).map(|_| value()).collect::<Vec<_>>().leak()
}

impl Net {
    /// The default `Config` and the [`SMALL`] pool.
    pub fn small() -> Net {
        Net::new(Config::default(), SMALL)
    }

    /// A device with `config` and `sizes`, and a client with no socket.
    pub fn new(config: Config, sizes: Sizes) -> Net {
        let storage = Storage {
            sockets: leak(sizes.sockets(), || SocketStorage::EMPTY),
            lab: leak(sizes.lab_sockets(), || LabSlot::EMPTY),
            closing: leak(sizes.closing_sockets(), || ClosingSocket::EMPTY),
            buffers: leak(sizes.buffer_bytes(), || 0u8),
            udp: leak(sizes.udp_packets(), || UdpPacketMetadata::EMPTY),
        };
        Net::with_storage(config, sizes, storage)
    }

    /// Starts or stops recording every frame on the link in [`Net::captured`].
    pub fn set_capture(&mut self, on: bool) {
        self.capture = on;
    }

    /// Installs a filter that may drop frames on the link.
    pub fn set_filter(&mut self, filter: impl FnMut(Dir, &[u8]) -> bool + 'static) {
        self.filter = Some(Box::new(filter));
    }

    /// Puts a hand-made frame in the application's receive queue.
    pub fn inject(&mut self, frame: Vec<u8>) {
        if self.capture {
            self.captured.push((Dir::ToApp, frame.clone()));
        }
        self.app_dev.rx.push_back(frame);
    }

    /// Frames the application sent while capture was on.
    pub fn frames_to_client(&self) -> impl Iterator<Item = &[u8]> {
        self.captured
            .iter()
            .filter(|(dir, _)| *dir == Dir::ToClient)
            .map(|(_, frame)| frame.as_slice())
    }

    /// Polls the application once at the current time, then moves what it
    /// sent to the client's queue (the client is not polled).
    pub fn poll_app(&mut self) -> Option<Duration> {
        self.app_delay = self.app.poll(self.now, &mut self.app_dev);
        self.app_delay
    }

    /// Moves the frames `dir` side sent across the link; true if there were any.
    fn cross(&mut self, dir: Dir) -> bool {
        let (from, to) = match dir {
            Dir::ToClient => (&mut self.app_dev.tx, &mut self.client_dev.rx),
            Dir::ToApp => (&mut self.client_dev.tx, &mut self.app_dev.rx),
        };
        let moved = !from.is_empty();
        while let Some(frame) = from.pop_front() {
            let pass = self.filter.as_mut().is_none_or(|f| f(dir, &frame));
            if self.capture {
                self.captured.push((dir, frame.clone()));
            }
            if pass {
                to.push_back(frame);
            }
        }
        moved
    }

    /// One round at the current instant: the application, the link, the
    /// client, the link. True if a frame crossed.
    pub fn round(&mut self) -> bool {
        self.poll_app();
        let mut moved = self.cross(Dir::ToClient);
        self.iface
            .poll(self.now, &mut self.client_dev, &mut self.sockets);
        moved |= self.cross(Dir::ToApp);
        moved
    }

    /// Runs rounds at the current instant until no frame crosses the link.
    pub fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            if !self.round() && self.app_dev.rx.is_empty() {
                return;
            }
        }
        panic!(
            "the link is still busy after {SETTLE_ROUNDS} rounds at {}",
            self.now
        );
    }

    /// Moves the clock to the next instant either side wants to be polled at
    /// (at least [`MIN_STEP_MS`], at most `end`).
    fn step(&mut self, end: Instant) {
        let client = self.iface.poll_delay(self.now, &self.sockets);
        let wait = [self.app_delay, client]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(3600))
            .max(Duration::from_millis(MIN_STEP_MS));
        self.now = (self.now + wait).min(end);
    }

    /// Lets `ms` simulated milliseconds pass.
    pub fn run(&mut self, ms: u64) {
        self.run_until(ms, |_| false);
    }

    /// Runs until `done` says so or `max_ms` have passed; says whether `done`
    /// did. `done` may act on the client's sockets; what it does is sent
    /// before the clock moves on.
    pub fn run_until(&mut self, max_ms: u64, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + Duration::from_millis(max_ms);
        loop {
            self.settle();
            if done(self) {
                return true;
            }
            self.settle();
            if self.now >= end {
                return false;
            }
            self.step(end);
        }
    }

    /// Creates a client socket connecting to `remote`, with
    /// [`CLIENT_BUFFER`]-byte buffers. Nothing is sent until the net runs.
    pub fn open(&mut self, remote: SocketAddr) -> Conn {
        self.open_with(remote, CLIENT_BUFFER, CLIENT_BUFFER)
    }

    /// Like [`Net::open`], with the client's buffer sizes.
    pub fn open_with(&mut self, remote: SocketAddr, rx: usize, tx: usize) -> Conn {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).expect("out of client ports");
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        );
        socket
            .connect(self.iface.context(), remote, port)
            .expect("client connect");
        let handle = self.sockets.add(socket);
        let ip: IpAddr = match remote {
            SocketAddr::V4(_) => CLIENT_V4.into(),
            SocketAddr::V6(_) => CLIENT_V6.into(),
        };
        Conn {
            handle,
            local: SocketAddr::new(ip, port),
            remote,
            inbox: Vec::new(),
        }
    }

    /// Connects to `remote` and waits for the handshake; panics if refused.
    pub fn connect(&mut self, remote: SocketAddr) -> Conn {
        let conn = self.open(remote);
        self.established(&conn);
        conn
    }

    /// Waits until `conn` is established; panics if it is not.
    pub fn established(&mut self, conn: &Conn) {
        let ok = self.run_until(LINE_WAIT_MS, |net| {
            !matches!(
                net.state(conn),
                tcp::State::SynSent | tcp::State::SynReceived
            )
        });
        let state = self.state(conn);
        assert!(
            ok && state == tcp::State::Established,
            "connect {} -> {}: {state}",
            conn.local,
            conn.remote
        );
    }

    /// Connects to the lab service and reads its `HELLO`, checking the
    /// banner's fields against the connection.
    pub fn lab(&mut self, v6: bool) -> (Conn, usize) {
        let mut conn = self.connect(lab_addr(v6));
        let slot = self.hello(&mut conn);
        (conn, slot)
    }

    /// Reads the `HELLO` of a fresh lab connection; returns its slot.
    pub fn hello(&mut self, conn: &mut Conn) -> usize {
        let line = self.line(conn);
        let hello = Hello::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        assert_eq!(hello.version, protocol::VERSION, "{line}");
        assert_eq!(hello.peer, conn.local, "{line}");
        assert_eq!(hello.local, conn.remote, "{line}");
        hello.slot
    }

    /// The client socket of `conn`.
    pub fn socket(&mut self, conn: &Conn) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(conn.handle)
    }

    /// The TCP state of the client side of `conn`.
    pub fn state(&self, conn: &Conn) -> tcp::State {
        self.sockets.get::<tcp::Socket>(conn.handle).state()
    }

    /// Queues all of `data` on `conn`, running the net while the client's
    /// transmit buffer is full.
    pub fn send(&mut self, conn: &Conn, data: &[u8]) {
        let mut sent = 0;
        let ok = self.run_until(LINE_WAIT_MS, |net| {
            let socket = net.socket(conn);
            if socket.can_send() {
                sent += socket.send_slice(&data[sent..]).expect("client send");
            }
            sent == data.len()
        });
        assert!(
            ok,
            "{}: only {sent} of {} bytes sent",
            conn.local,
            data.len()
        );
    }

    /// Sends `line` and a LF.
    pub fn send_line(&mut self, conn: &Conn, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send(conn, &bytes);
    }

    /// Moves everything the client socket received into `conn`'s inbox;
    /// returns how many bytes.
    pub fn pull(&mut self, conn: &mut Conn) -> usize {
        let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
        let mut total = 0;
        while socket.can_recv() {
            let n = socket
                .recv(|buf| {
                    conn.inbox.extend_from_slice(buf);
                    (buf.len(), buf.len())
                })
                .expect("client recv");
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }

    /// A whole line received on `conn`, if there is one (without its LF; a
    /// CR is kept, the device never sends one).
    pub fn try_line(&mut self, conn: &mut Conn) -> Option<String> {
        self.pull(conn);
        conn.take_line()
    }

    /// Waits for the next line on `conn`; panics after [`LINE_WAIT_MS`].
    pub fn line(&mut self, conn: &mut Conn) -> String {
        let mut line = None;
        self.run_until(LINE_WAIT_MS, |net| {
            line = net.try_line(conn);
            line.is_some()
        });
        line.unwrap_or_else(|| {
            panic!(
                "{}: no line within {LINE_WAIT_MS} ms (state {}, inbox {:?})",
                conn.local,
                self.state(conn),
                String::from_utf8_lossy(&conn.inbox)
            )
        })
    }

    /// Sends `command`, returns the one line answered.
    pub fn ask(&mut self, conn: &mut Conn, command: &str) -> String {
        self.send_line(conn, command);
        self.line(conn)
    }

    /// Reads lines up to `END` (not included).
    pub fn lines_to_end(&mut self, conn: &mut Conn) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line(conn);
            if line == protocol::END {
                return lines;
            }
            lines.push(line);
            assert!(lines.len() < 10_000, "no END after 10000 lines");
        }
    }

    /// Sends `command`, returns the lines of its multi-line answer.
    pub fn ask_multi(&mut self, conn: &mut Conn, command: &str) -> Vec<String> {
        self.send_line(conn, command);
        self.lines_to_end(conn)
    }

    /// `NETSTAT` rows, as lines.
    pub fn netstat(&mut self, conn: &mut Conn) -> Vec<String> {
        let rows = self.ask_multi(conn, "NETSTAT");
        for row in &rows {
            NetstatRow::parse(row).unwrap_or_else(|e| panic!("`{row}`: {e}"));
        }
        rows
    }

    /// `INFO` as (key, value) pairs, in order.
    pub fn info(&mut self, conn: &mut Conn) -> Vec<(String, String)> {
        self.ask_multi(conn, "INFO")
            .iter()
            .map(|line| {
                let (k, v) = protocol::parse_info(line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// Lets `ms` pass and asserts `conn` received nothing meanwhile.
    pub fn quiet(&mut self, conn: &mut Conn, ms: u64) {
        self.run(ms);
        self.pull(conn);
        assert!(
            conn.inbox.is_empty(),
            "{}: unexpected {:?}",
            conn.local,
            String::from_utf8_lossy(&conn.inbox)
        );
    }

    /// Waits until the client side of `conn` is closed (or gone to
    /// TIME-WAIT); says whether it did within `max_ms`.
    pub fn wait_closed(&mut self, conn: &Conn, max_ms: u64) -> bool {
        self.run_until(max_ms, |net| {
            matches!(net.state(conn), tcp::State::Closed | tcp::State::TimeWait)
        })
    }

    /// Forgets the client socket of `conn` (it should be closed).
    pub fn remove(&mut self, conn: Conn) {
        self.sockets.remove(conn.handle);
    }
}

/// A client connection: its socket and the bytes received but not yet
/// taken as lines.
pub struct Conn {
    /// The client socket.
    pub handle: SocketHandle,
    /// The client's address of this connection.
    pub local: SocketAddr,
    /// The device's address of this connection.
    pub remote: SocketAddr,
    /// Bytes received and not yet taken.
    pub inbox: Vec<u8>,
}

impl Conn {
    /// Takes the first whole line out of the inbox.
    pub fn take_line(&mut self) -> Option<String> {
        let end = self.inbox.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.inbox.drain(..=end).take(end).collect();
        Some(String::from_utf8(line).expect("the device sent a line that is not UTF-8"))
    }

    /// Takes the first whole line out of the inbox, as bytes.
    pub fn take_raw_line(&mut self) -> Option<Vec<u8>> {
        let end = self.inbox.iter().position(|&b| b == b'\n')?;
        Some(self.inbox.drain(..=end).take(end).collect())
    }
}

/// Wraps an IP packet of `payload_len` bytes, written by `emit`, in an
/// Ethernet frame from the client to the device.
fn ip_frame(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    payload_len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let eth_len = EthernetFrame::<&[u8]>::header_len();
    let (ethertype, ip_len) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EthernetProtocol::Ipv4, 20),
        (IpAddr::V6(_), IpAddr::V6(_)) => (EthernetProtocol::Ipv6, 40),
        _ => panic!("mixed address families"),
    };
    let mut frame = vec![0u8; eth_len + ip_len + payload_len];
    let eth = EthernetRepr {
        src_addr: CLIENT_MAC,
        dst_addr: config::DEFAULT_MAC,
        ethertype,
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    let ip = &mut frame[eth_len..];
    match (src, dst) {
        (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
            let repr = Ipv4Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit: 64,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut *ip), &caps);
        }
        (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
            let repr = Ipv6Repr {
                src_addr,
                dst_addr,
                next_header: protocol,
                payload_len,
                hop_limit: 64,
            };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut *ip));
        }
        _ => unreachable!(),
    }
    emit(&mut ip[ip_len..]);
    frame
}

/// A bare SYN from the client's `src` to the device's `dst`: a handshake
/// that the client's own stack knows nothing of.
pub fn syn_frame(src: SocketAddr, dst: SocketAddr, seq: i32) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq),
        ack_number: None,
        window_len: 64_000,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip_frame(
        src.ip(),
        dst.ip(),
        IpProtocol::Tcp,
        repr.buffer_len(),
        |buf| {
            repr.emit(
                &mut TcpPacket::new_unchecked(buf),
                &s,
                &d,
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// An ICMP (v4) or ICMPv6 echo request from the client's `src` to `dst`.
pub fn ping_frame(src: IpAddr, dst: IpAddr, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let repr = Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            ip_frame(src, dst, IpProtocol::Icmp, repr.buffer_len(), |buf| {
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps)
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            ip_frame(src, dst, IpProtocol::Icmpv6, repr.buffer_len(), |buf| {
                repr.emit(&s, &d, &mut Icmpv6Packet::new_unchecked(buf), &caps)
            })
        }
        _ => panic!("mixed address families"),
    }
}

/// The IP packet of an Ethernet frame: source, destination, protocol, payload.
fn ip_of(frame: &[u8]) -> Option<(IpAddr, IpAddr, IpProtocol, &[u8])> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let payload = &frame[EthernetFrame::<&[u8]>::header_len()..];
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(payload).ok()?;
            let header = ip.header_len() as usize;
            let total = ip.total_len() as usize;
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                &payload[header..total],
            ))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(payload).ok()?;
            let len = ip.payload_len() as usize;
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                &payload[40..40 + len],
            ))
        }
        _ => None,
    }
}

/// The TCP header fields of a frame that the tests look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeen {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// RST flag.
    pub rst: bool,
    /// FIN flag.
    pub fin: bool,
}

/// The TCP segment in `frame`, if it holds one.
pub fn tcp_of(frame: &[u8]) -> Option<TcpSeen> {
    let (src, dst, protocol, payload) = ip_of(frame)?;
    if protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).ok()?;
    Some(TcpSeen {
        src: SocketAddr::new(src, tcp.src_port()),
        dst: SocketAddr::new(dst, tcp.dst_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        rst: tcp.rst(),
        fin: tcp.fin(),
    })
}

/// An ICMP or ICMPv6 echo reply in `frame`: (source, destination, ident,
/// sequence number, data).
pub fn echo_reply_of(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16, Vec<u8>)> {
    let caps = ChecksumCapabilities::default();
    let (src, dst, protocol, payload) = ip_of(frame)?;
    match (protocol, src, dst) {
        (IpProtocol::Icmp, _, _) => {
            let packet = Icmpv4Packet::new_checked(payload).ok()?;
            match Icmpv4Repr::parse(&packet, &caps).ok()? {
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => Some((src, dst, ident, seq_no, data.to_vec())),
                _ => None,
            }
        }
        (IpProtocol::Icmpv6, IpAddr::V6(s), IpAddr::V6(d)) => {
            let packet = Icmpv6Packet::new_checked(payload).ok()?;
            match Icmpv6Repr::parse(&s, &d, &packet, &caps).ok()? {
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => Some((src, dst, ident, seq_no, data.to_vec())),
                _ => None,
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Fuzzing

/// What the property tests (`tests/fuzz.rs`) and the cargo-fuzz targets
/// (`fuzz/`) feed the device, how a case is run, and the check that the pool
/// is whole afterwards.
///
/// Inputs are plain data: the property tests build them with proptest
/// strategies, the fuzz targets decode them from the fuzzer's bytes
/// ([`fuzz::frames_from_bytes`], [`fuzz::lab_from_bytes`]); both run them with
/// [`fuzz::run_frames`] and [`fuzz::run_lab`]. A case is whatever the device
/// does with its input, then every client gone (reset, closed, vanished, or
/// lingering silently), the clock driven past every timeout, and
/// [`Net::assert_pool_whole`].
pub mod fuzz {
    use std::cell::RefCell;
    use std::mem::ManuallyDrop;
    use std::ops::{Deref, DerefMut};
    use std::rc::Rc;
    use std::sync::OnceLock;

    use socklab_app::protocol::{SockName, MAX_RESPONSE_LINE};
    use socklab_app::smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, Icmpv6Packet, Ipv6Address, NdiscRepr, RawHardwareAddress,
        UdpPacket,
    };
    use socklab_app::storage::UDP_SOCKETS;
    use socklab_app::{BacklogPolicy, Timeouts};

    use super::*;

    /// A tiny pool: two slots, one backlog place, one socket per bulk
    /// service, buffers so small that windows close after a few lines.
    pub const FUZZ_SIZES: Sizes = Sizes {
        lab_slots: 2,
        lab_backlog: 1,
        lab_rx: 128,
        lab_tx: 512,
        bulk_slots: 1,
        bulk_rx: 256,
        bulk_tx: 256,
        iperf3_sockets: 0,
        iperf3_rx: 0,
        iperf3_tx: 0,
        iperf2_sockets: 0,
        iperf2_rx: 0,
        lab_closing: 1,
        bulk_closing: 1,
    };

    /// Short timeouts, so that a case frees everything in a few simulated
    /// seconds.
    pub const FUZZ_TIMEOUTS: Timeouts = Timeouts {
        idle_ms: 2_000,
        slow_reader_ms: 1_000,
        handshake_ms: 1_000,
        closing_ms: 1_000,
        keep_alive_ms: 1_000,
        dead_peer_ms: 3_000,
        http_request_ms: 1_000,
        http_idle_ms: 2_000,
    };

    /// How long a case lets pass once its clients are gone: longer than any
    /// chain of [`FUZZ_TIMEOUTS`] (a waiting client promoted, then idle, then
    /// closing), and than smoltcp's neighbor-cache lifetime (60 s), so that a
    /// neighbor entry an injected ARP or NDISC frame poisoned has expired too.
    pub const DRAIN_MS: u64 = 65_000;

    /// The device's config for fuzzing: defaults, [`FUZZ_TIMEOUTS`], `backlog`.
    pub fn fuzz_config(backlog: BacklogPolicy) -> Config {
        Config {
            timeouts: FUZZ_TIMEOUTS,
            backlog,
            ..Config::default()
        }
    }

    // -- a pool that is reused, not leaked --------------------------------

    impl Net {
        /// Like [`Net::new`], over `storage` instead of freshly leaked
        /// storage.
        pub fn with_storage(config: Config, sizes: Sizes, storage: Storage<'static>) -> Net {
            let now = Instant::from_secs(1);
            let mut app_dev = QueueDevice::default();
            let app = match App::new(config, sizes, storage, &mut app_dev, now) {
                Ok(app) => app,
                Err(error) => panic!("storage does not fit the sizes: {error}"),
            };
            let mut client_dev = QueueDevice::default();
            let mut iface_config = iface::Config::new(HardwareAddress::Ethernet(CLIENT_MAC));
            iface_config.random_seed = 0x00c1_1e47;
            let mut iface = Interface::new(iface_config, &mut client_dev, now);
            iface.update_ip_addrs(|addrs| {
                addrs.push(IpCidr::new(CLIENT_V4.into(), 24)).unwrap();
                addrs.push(IpCidr::new(CLIENT_V6.into(), 64)).unwrap();
            });
            Net {
                now,
                app,
                app_dev,
                iface,
                client_dev,
                sockets: SocketSet::new(vec![]),
                app_delay: None,
                next_port: FIRST_CLIENT_PORT,
                capture: false,
                captured: Vec::new(),
                filter: None,
            }
        }
    }

    /// One pool's storage, allocated once and lent to one [`Net`] at a time.
    struct Spare {
        sizes: Sizes,
        sockets: *mut [SocketStorage<'static>],
        lab: *mut [LabSlot],
        closing: *mut [ClosingSocket],
        buffers: *mut [u8],
        udp: *mut [UdpPacketMetadata],
    }

    impl Spare {
        fn new(sizes: Sizes) -> Spare {
            Spare {
                sizes,
                sockets: Box::into_raw(
                    (0..sizes.sockets()).map(|_| SocketStorage::EMPTY).collect(),
                ),
                lab: Box::into_raw((0..sizes.lab_sockets()).map(|_| LabSlot::EMPTY).collect()),
                closing: Box::into_raw(
                    (0..sizes.closing_sockets())
                        .map(|_| ClosingSocket::EMPTY)
                        .collect(),
                ),
                buffers: Box::into_raw(vec![0u8; sizes.buffer_bytes()].into()),
                udp: Box::into_raw(
                    (0..sizes.udp_packets())
                        .map(|_| UdpPacketMetadata::EMPTY)
                        .collect(),
                ),
            }
        }

        /// The storage, emptied.
        ///
        /// # Safety
        /// Nothing made from an earlier loan may be alive.
        unsafe fn lend(&self) -> Storage<'static> {
            // SAFETY: the boxes live until `self` is dropped, which only
            // happens when no loan is alive; the caller vouches for that now.
            let (sockets, lab, closing, buffers, udp) = unsafe {
                (
                    &mut *self.sockets,
                    &mut *self.lab,
                    &mut *self.closing,
                    &mut *self.buffers,
                    &mut *self.udp,
                )
            };
            sockets.fill_with(|| SocketStorage::EMPTY);
            lab.fill_with(|| LabSlot::EMPTY);
            closing.fill_with(|| ClosingSocket::EMPTY);
            buffers.fill(0);
            udp.fill_with(|| UdpPacketMetadata::EMPTY);
            Storage {
                sockets,
                lab,
                closing,
                buffers,
                udp,
            }
        }
    }

    impl Drop for Spare {
        fn drop(&mut self) {
            // SAFETY: the pointers come from `Box::into_raw` and no loan is
            // alive (a `PooledNet` drops its net before its spare).
            unsafe {
                drop(Box::from_raw(self.sockets));
                drop(Box::from_raw(self.lab));
                drop(Box::from_raw(self.closing));
                drop(Box::from_raw(self.buffers));
                drop(Box::from_raw(self.udp));
            }
        }
    }

    thread_local! {
        /// Storage of the pools whose nets are gone, ready for the next.
        static SPARES: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
    }

    /// A [`Net`] whose pool storage is reused instead of leaked: dropped,
    /// it hands its storage to the next `PooledNet` of the same sizes on the
    /// same thread. A fuzzer runs millions of cases; this keeps its memory
    /// flat (and LeakSanitizer quiet). Use it as a `Net`.
    pub struct PooledNet {
        net: ManuallyDrop<Net>,
        spare: Option<Spare>,
    }

    impl PooledNet {
        /// A device with `config` and `sizes`, and a client with no socket.
        pub fn new(config: Config, sizes: Sizes) -> PooledNet {
            let spare = SPARES
                .with(|spares| {
                    let mut spares = spares.borrow_mut();
                    let i = spares.iter().position(|s| s.sizes == sizes)?;
                    Some(spares.swap_remove(i))
                })
                .unwrap_or_else(|| Spare::new(sizes));
            // SAFETY: a spare is only in the list, or here, once the net made
            // from its previous loan is dropped.
            let storage = unsafe { spare.lend() };
            PooledNet {
                net: ManuallyDrop::new(Net::with_storage(config, sizes, storage)),
                spare: Some(spare),
            }
        }
    }

    impl Deref for PooledNet {
        type Target = Net;

        fn deref(&self) -> &Net {
            &self.net
        }
    }

    impl DerefMut for PooledNet {
        fn deref_mut(&mut self) -> &mut Net {
            &mut self.net
        }
    }

    impl Drop for PooledNet {
        fn drop(&mut self) {
            // SAFETY: `net` is not used again; it goes before its storage.
            unsafe { ManuallyDrop::drop(&mut self.net) };
            if let Some(spare) = self.spare.take() {
                // During a thread's teardown the list may be gone: then the
                // spare frees its storage as it drops.
                let _ = SPARES.try_with(|spares| spares.borrow_mut().push(spare));
            }
        }
    }

    // -- the check -------------------------------------------------------

    impl Net {
        /// Asserts that the pool is whole: nobody served or waiting, a new
        /// client gets its `HELLO` and an `ECHO` answered, `NETSTAT` shows
        /// every other socket listening (the backlog's closed under the
        /// `refuse` policy) and `WHO` only the new client. Call it once every
        /// client is gone and the timeouts have passed.
        pub fn assert_pool_whole(&mut self) {
            assert_eq!(self.app.lab_in_use(), 0, "lab clients still served");
            assert_eq!(self.app.lab_queued(), 0, "lab clients still waiting");
            let (mut conn, slot) = self.lab(false);
            assert_eq!(self.ask(&mut conn, "ECHO whole"), "whole");

            let sizes = self.app.sizes();
            let refuse = self
                .info(&mut conn)
                .iter()
                .any(|(k, v)| k == protocol::info::BACKLOG_POLICY && v == "refuse");
            let lines = self.netstat(&mut conn);
            // The services' sockets (TCP, then the UDP ones), then the
            // closing pool's busy ones (free ones are not shown): only closes
            // still finishing.
            let served = sizes.tcp_sockets() - sizes.closing_sockets() + UDP_SOCKETS;
            assert!(
                (served..=sizes.tcp_sockets() + UDP_SOCKETS).contains(&lines.len()),
                "{lines:#?}"
            );
            let rows: Vec<NetstatRow<'_>> = lines
                .iter()
                .map(|l| NetstatRow::parse(l).expect("netstat() checked the rows"))
                .collect();
            let (rows, closing) = rows.split_at(served);
            assert!(
                rows[served - UDP_SOCKETS..]
                    .iter()
                    .all(|r| r.proto == protocol::UDP && r.state == protocol::NO_STATE),
                "{lines:#?}"
            );
            for row in closing {
                assert!(
                    matches!(row.state, "TIME-WAIT" | "LAST-ACK" | "FIN-WAIT-2"),
                    "{lines:#?}"
                );
            }
            let (lab, bulk) = rows.split_at(sizes.lab_sockets());
            let ours = |r: &&NetstatRow<'_>| {
                r.state == "ESTABLISHED"
                    && r.local == SockName::Addr(conn.remote)
                    && r.remote == SockName::Addr(conn.local)
            };
            let listening = |r: &&NetstatRow<'_>, port: u16| {
                r.state == "LISTEN" && r.local == SockName::Any(Some(port))
            };
            let closed = if refuse { sizes.lab_backlog } else { 0 };
            assert_eq!(lab.iter().filter(ours).count(), 1, "{lines:#?}");
            assert_eq!(
                lab.iter()
                    .filter(|r| listening(r, protocol::LAB_PORT))
                    .count(),
                sizes.lab_sockets() - 1 - closed,
                "lab sockets not listening again: {lines:#?}"
            );
            assert_eq!(
                lab.iter().filter(|r| r.state == "CLOSED").count(),
                closed,
                "{lines:#?}"
            );
            for port in [
                protocol::ECHO_PORT,
                protocol::DISCARD_PORT,
                protocol::CHARGEN_PORT,
            ] {
                assert_eq!(
                    bulk.iter().filter(|r| listening(r, port)).count(),
                    sizes.bulk_slots,
                    "port {port} sockets not listening again: {lines:#?}"
                );
            }

            let who = self.ask_multi(&mut conn, "WHO");
            assert_eq!(who, vec![format!("{slot} {}", conn.local)]);
            assert_eq!(self.ask(&mut conn, "QUIT"), protocol::BYE);
        }

        /// Asserts that every connection accepted so far has its end
        /// counted (closed, reset or timed out). The bound is loose:
        /// `conn_timed_out` also counts handshakes that never completed.
        /// Call it once every client is gone.
        pub fn assert_no_end_uncounted(&self) {
            let c = self.app.counters();
            assert!(
                c.closed + c.reset + c.timed_out >= c.accepted,
                "accepted connections whose end was not counted: {c:?}"
            );
        }

        /// Asserts that no more connections were counted closed or reset
        /// than were accepted.
        pub fn assert_no_end_counted_twice(&self) {
            let c = self.app.counters();
            assert!(
                c.closed + c.reset <= c.accepted,
                "more connections ended than accepted: {c:?}"
            );
        }
    }

    // -- frames ------------------------------------------------------------

    /// A part of a frame, for mutations aimed at one header.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Layer {
        /// From the Ethernet header on.
        Ethernet,
        /// From the IP (or ARP) header on.
        Network,
        /// From the TCP, UDP or ICMP header on.
        Transport,
        /// From the transport's payload on.
        Payload,
    }

    /// One change to a frame. Positions wrap around the frame's length, so
    /// every mutation applies to every frame.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Mutation {
        /// Flips bit `bit % 8` of byte `at`.
        Flip { at: usize, bit: u8 },
        /// Writes the low bytes of `value`, big-endian, `offset` bytes into
        /// `layer`: one byte if `width % 3` is 0, two if 1, four if 2.
        Field {
            layer: Layer,
            offset: usize,
            width: u8,
            value: u32,
        },
        /// Inserts `bytes` before byte `at`.
        Insert { at: usize, bytes: Vec<u8> },
        /// Deletes `len` bytes from `at`.
        Delete { at: usize, len: usize },
        /// Keeps the first `len` bytes.
        Truncate { len: usize },
    }

    const ETH_LEN: usize = 14;

    /// Where `layer` starts in `frame` (may be past its end).
    fn layer_start(frame: &[u8], layer: Layer) -> usize {
        let byte = |i: usize| frame.get(i).copied().unwrap_or(0) as usize;
        let ethertype = (byte(12) << 8) | byte(13);
        let (transport, protocol) = match ethertype {
            0x0800 => (ETH_LEN + (byte(ETH_LEN) & 0x0f) * 4, byte(ETH_LEN + 9)),
            0x86dd => (ETH_LEN + 40, byte(ETH_LEN + 6)),
            _ => (ETH_LEN, 0),
        };
        let payload = match protocol {
            6 => transport + (byte(transport + 12) >> 4) * 4,
            _ => transport + 8,
        };
        match layer {
            Layer::Ethernet => 0,
            Layer::Network => ETH_LEN,
            Layer::Transport => transport,
            Layer::Payload => payload,
        }
    }

    /// Applies `mutation` to `frame`.
    pub fn mutate(frame: &mut Vec<u8>, mutation: &Mutation) {
        let len = frame.len();
        match mutation {
            Mutation::Flip { at, bit } => {
                if len > 0 {
                    frame[at % len] ^= 1 << (bit % 8);
                }
            }
            Mutation::Field {
                layer,
                offset,
                width,
                value,
            } => {
                let width = match width % 3 {
                    0 => 1,
                    1 => 2,
                    _ => 4,
                };
                let start = layer_start(frame, *layer) + offset;
                let bytes = &value.to_be_bytes()[4 - width..];
                for (i, &b) in bytes.iter().enumerate() {
                    if let Some(slot) = frame.get_mut(start + i) {
                        *slot = b;
                    }
                }
            }
            Mutation::Insert { at, bytes } => {
                let at = at % (len + 1);
                frame.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                if len > 0 {
                    let at = at % len;
                    frame.drain(at..(at + n).min(len));
                }
            }
            Mutation::Truncate { len: n } => frame.truncate(*n),
        }
    }

    /// Makes a mutated frame acceptable again: IP lengths set to the frame's
    /// (`lengths`) and IPv4, TCP, UDP, ICMP and ICMPv6 checksums recomputed
    /// (`checksums`), so that the damage reaches TCP and the services instead
    /// of dying on a checksum. Leaves what it cannot parse as it is.
    pub fn fix_frame(frame: &mut [u8], lengths: bool, checksums: bool) {
        if frame.len() < ETH_LEN {
            return;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &mut frame[ETH_LEN..];
        let (src, dst, protocol, payload) = match ethertype {
            0x0800 => {
                if ip.len() < 20 {
                    return;
                }
                let header = usize::from(ip[0] & 0x0f) * 4;
                if header < 20 || header > ip.len() {
                    return;
                }
                if lengths {
                    let total = ip.len().min(usize::from(u16::MAX)) as u16;
                    Ipv4Packet::new_unchecked(&mut *ip).set_total_len(total);
                }
                let mut packet = Ipv4Packet::new_unchecked(&mut *ip);
                if checksums {
                    packet.fill_checksum();
                }
                let total = usize::from(packet.total_len()).min(ip.len());
                if total < header {
                    return;
                }
                let packet = Ipv4Packet::new_unchecked(&*ip);
                let (src, dst) = (packet.src_addr(), packet.dst_addr());
                let protocol = packet.next_header();
                (
                    IpAddress::Ipv4(src),
                    IpAddress::Ipv4(dst),
                    protocol,
                    &mut ip[header..total],
                )
            }
            0x86dd => {
                if ip.len() < 40 {
                    return;
                }
                if lengths {
                    let payload = (ip.len() - 40).min(usize::from(u16::MAX)) as u16;
                    Ipv6Packet::new_unchecked(&mut *ip).set_payload_len(payload);
                }
                let packet = Ipv6Packet::new_unchecked(&*ip);
                let end = (40 + usize::from(packet.payload_len())).min(ip.len());
                let (src, dst) = (packet.src_addr(), packet.dst_addr());
                let protocol = packet.next_header();
                (
                    IpAddress::Ipv6(src),
                    IpAddress::Ipv6(dst),
                    protocol,
                    &mut ip[40..end],
                )
            }
            _ => return,
        };
        let len = payload.len();
        if protocol == IpProtocol::Udp && len >= 8 && lengths {
            UdpPacket::new_unchecked(&mut *payload).set_len(len.min(usize::from(u16::MAX)) as u16);
        }
        if !checksums {
            return;
        }
        match protocol {
            IpProtocol::Tcp if payload.len() >= 20 => {
                TcpPacket::new_unchecked(payload).fill_checksum(&src, &dst)
            }
            IpProtocol::Udp if payload.len() >= 8 => {
                // The checksum covers the length the header gives.
                let mut udp = UdpPacket::new_unchecked(&mut *payload);
                if (8..=len).contains(&usize::from(udp.len())) {
                    udp.fill_checksum(&src, &dst)
                }
            }
            IpProtocol::Icmp if payload.len() >= 4 => {
                Icmpv4Packet::new_unchecked(payload).fill_checksum()
            }
            IpProtocol::Icmpv6 if payload.len() >= 4 => {
                if let (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) = (src, dst) {
                    Icmpv6Packet::new_unchecked(payload).fill_checksum(&s, &d)
                }
            }
            _ => {}
        }
    }

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

    // -- lab byte streams ------------------------------------------------

    /// How a lab client leaves at the end of a case.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum End {
        /// Stays connected, silent (reading or not, as it was).
        Linger,
        /// Closes its side (FIN) and goes on as it was.
        Close,
        /// Resets.
        Abort,
        /// Disappears: nothing it sends or is sent crosses the link any more.
        Vanish,
    }

    /// A lab client of a case.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LabClient {
        /// Connects over IPv6.
        pub v6: bool,
        /// Its receive buffer (its window), bytes.
        pub rx_buffer: usize,
        /// Nagle's algorithm on its socket.
        pub nagle: bool,
        /// Reads what it receives (at first; [`LabAct::Reading`] changes it).
        pub reading: bool,
        /// How it leaves.
        pub end: End,
    }

    /// One thing a lab client does. Client indexes wrap around.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum LabAct {
        /// Queues as much of `bytes` as its transmit buffer takes.
        Send { client: usize, bytes: Vec<u8> },
        /// Lets time pass.
        Wait { ms: u16 },
        /// Starts or stops reading.
        Reading { client: usize, on: bool },
        /// Closes its side (FIN).
        Close { client: usize },
        /// Resets its connection.
        Abort { client: usize },
        /// Disappears from the link.
        Vanish { client: usize },
        /// A SYN from a new port that never completes its handshake (the
        /// device's answers are lost): one packet of a SYN flood.
        HalfOpen { v6: bool },
    }

    /// A lab case: the pool, the policy, the clients (connecting together
    /// at the start) and what they do.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LabCase {
        /// The device's pool ([`FUZZ_SIZES`] or a variation of its lab part).
        pub sizes: Sizes,
        /// The device's backlog policy.
        pub policy: BacklogPolicy,
        /// The device's timeouts ([`FUZZ_TIMEOUTS`] or a variation: each at
        /// most a few seconds, so that [`DRAIN_MS`] outlasts any chain).
        pub timeouts: Timeouts,
        /// The clients, at least one.
        pub clients: Vec<LabClient>,
        /// What they do, in order.
        pub acts: Vec<LabAct>,
    }

    /// A client of a running lab case.
    struct Running {
        conn: Conn,
        reading: bool,
        /// Lines received so far (the first must be `HELLO` or `ERR busy`).
        lines: usize,
    }

    /// Checks the lines a client received: each at most
    /// [`MAX_RESPONSE_LINE`] bytes, the first a `HELLO` or `ERR busy`.
    fn check_output(client: &mut Running) {
        while let Some(line) = client.conn.take_raw_line() {
            assert!(
                line.len() <= MAX_RESPONSE_LINE,
                "{}: a {}-byte line",
                client.conn.local,
                line.len()
            );
            if client.lines == 0 {
                assert!(
                    line.starts_with(b"HELLO ") || line == protocol::ERR_BUSY.as_bytes(),
                    "{}: first line {:?}",
                    client.conn.local,
                    String::from_utf8_lossy(&line)
                );
            }
            client.lines += 1;
        }
        assert!(
            client.conn.inbox.len() <= MAX_RESPONSE_LINE,
            "{}: {} bytes without a LF",
            client.conn.local,
            client.conn.inbox.len()
        );
    }

    /// Runs the net for `ms`, the reading clients reading as it goes.
    fn pump(net: &mut Net, clients: &mut [Running], ms: u64) {
        net.run_until(ms, |net| {
            for client in clients.iter_mut().filter(|c| c.reading) {
                net.pull(&mut client.conn);
                check_output(client);
            }
            false
        });
    }

    /// Runs a lab case: the clients connect, act, leave as their [`End`]
    /// says; then the clock passes every timeout, every connection's end
    /// must be counted and the pool must be whole.
    pub fn run_lab(case: &LabCase) {
        assert!(!case.clients.is_empty(), "a lab case needs a client");
        let config = Config {
            timeouts: case.timeouts,
            ..fuzz_config(case.policy)
        };
        let mut net = PooledNet::new(config, case.sizes);
        let vanished: Rc<RefCell<Vec<SocketAddr>>> = Rc::default();
        let gone = Rc::clone(&vanished);
        net.set_filter(move |_, frame| {
            let gone = gone.borrow();
            !tcp_of(frame).is_some_and(|t| gone.contains(&t.src) || gone.contains(&t.dst))
        });
        let mut clients: Vec<Running> = case
            .clients
            .iter()
            .map(|spec| {
                let conn = net.open_with(lab_addr(spec.v6), spec.rx_buffer, CLIENT_BUFFER);
                net.socket(&conn).set_nagle_enabled(spec.nagle);
                Running {
                    conn,
                    reading: spec.reading,
                    lines: 0,
                }
            })
            .collect();
        pump(&mut net, &mut clients, 0);

        let n = clients.len();
        let mut half_open = 0u16;
        for act in &case.acts {
            match act {
                LabAct::Send { client, bytes } => {
                    let socket = net.socket(&clients[client % n].conn);
                    if socket.may_send() {
                        let _ = socket.send_slice(bytes);
                    }
                }
                LabAct::Wait { ms } => pump(&mut net, &mut clients, u64::from(*ms)),
                LabAct::Reading { client, on } => clients[client % n].reading = *on,
                LabAct::Close { client } => net.socket(&clients[client % n].conn).close(),
                LabAct::Abort { client } => net.socket(&clients[client % n].conn).abort(),
                LabAct::Vanish { client } => {
                    vanished.borrow_mut().push(clients[client % n].conn.local);
                }
                LabAct::HalfOpen { v6 } => {
                    let ip: IpAddr = if *v6 {
                        CLIENT_V6.into()
                    } else {
                        CLIENT_V4.into()
                    };
                    half_open += 1;
                    let src = SocketAddr::new(ip, 50_000 + half_open);
                    vanished.borrow_mut().push(src);
                    net.inject(syn_frame(src, lab_addr(*v6), i32::from(half_open)));
                }
            }
            pump(&mut net, &mut clients, 0);
        }

        for (client, spec) in clients.iter().zip(&case.clients) {
            match spec.end {
                End::Linger => {}
                End::Close => net.socket(&client.conn).close(),
                End::Abort => net.socket(&client.conn).abort(),
                End::Vanish => vanished.borrow_mut().push(client.conn.local),
            }
        }
        pump(&mut net, &mut clients, DRAIN_MS);
        net.assert_no_end_uncounted();
        // A handshake the stack times out before the app does is counted as
        // a reset (tests/fuzz.rs: an ignored test shows it).
        if case.timeouts.dead_peer_ms > case.timeouts.handshake_ms {
            net.assert_no_end_counted_twice();
        }
        net.assert_pool_whole();
    }

    // -- fuzzer bytes ------------------------------------------------------

    /// Reads a fuzzer's bytes as a series of choices; past the end every
    /// choice is zero.
    pub struct Choices<'d>(&'d [u8]);

    impl<'d> Choices<'d> {
        /// Choices from `data`.
        pub fn new(data: &'d [u8]) -> Self {
            Choices(data)
        }

        /// True once every byte is used.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        /// The next `n` bytes (fewer at the end).
        pub fn bytes(&mut self, n: usize) -> &'d [u8] {
            let (head, tail) = self.0.split_at(n.min(self.0.len()));
            self.0 = tail;
            head
        }

        /// The next byte.
        pub fn u8(&mut self) -> u8 {
            self.bytes(1).first().copied().unwrap_or(0)
        }

        /// The next two bytes, big-endian.
        pub fn u16(&mut self) -> u16 {
            u16::from_be_bytes([self.u8(), self.u8()])
        }

        /// The next four bytes, big-endian.
        pub fn u32(&mut self) -> u32 {
            u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
        }

        /// A length-prefixed byte string of at most `max` bytes.
        pub fn vec(&mut self, max: usize) -> Vec<u8> {
            let len = usize::from(self.u16()) % (max + 1);
            self.bytes(len).to_vec()
        }
    }

    /// Most frames one fuzzer input injects.
    pub const MAX_FUZZ_FRAMES: usize = 16;
    /// Most acts one fuzzer input makes lab clients do.
    pub const MAX_FUZZ_ACTS: usize = 64;

    /// Decodes a fuzzer's bytes into frame steps (at most
    /// [`MAX_FUZZ_FRAMES`]): per frame a kind byte, its fields, a wait byte.
    pub fn frames_from_bytes(data: &[u8]) -> Vec<FrameStep> {
        let mut c = Choices::new(data);
        let mut steps = Vec::new();
        while !c.is_empty() && steps.len() < MAX_FUZZ_FRAMES {
            let input = match c.u8() % 6 {
                0 => FrameInput::Raw(c.vec(LINK_MTU + 64)),
                1 => FrameInput::Ethernet {
                    ethertype: c.u16(),
                    bytes: c.vec(LINK_MTU),
                },
                2 => {
                    let flags = c.u8();
                    FrameInput::Ip {
                        v6: flags & 1 != 0,
                        fix: flags & 2 != 0,
                        protocol: c.u8(),
                        payload: c.vec(1400),
                    }
                }
                3 => {
                    let index = usize::from(c.u8());
                    let flags = c.u8();
                    let mutations = (0..flags >> 4).map(|_| mutation_from(&mut c)).collect();
                    FrameInput::Seed {
                        index,
                        mutations,
                        fix_lengths: flags & 1 != 0,
                        fix_checksums: flags & 2 != 0,
                    }
                }
                4 => FrameInput::Send {
                    conn: usize::from(c.u8()),
                    bytes: c.vec(2048),
                },
                _ => {
                    let which = c.u8();
                    let target = if which & 0x80 == 0 {
                        Target::Conn(usize::from(which))
                    } else {
                        Target::Port {
                            port: usize::from(which & 0x3f),
                            v6: which & 0x40 != 0,
                        }
                    };
                    FrameInput::Segment(Segment {
                        target,
                        seq: c.u32() as i32,
                        ack: c.u32() as i32,
                        flags: c.u8(),
                        window: c.u16(),
                        options: c.vec(40),
                        payload: c.vec(1400),
                    })
                }
            };
            let wait_ms = u16::from(c.u8()) * 16;
            steps.push(FrameStep { input, wait_ms });
        }
        steps
    }

    fn mutation_from(c: &mut Choices<'_>) -> Mutation {
        match c.u8() % 5 {
            0 => Mutation::Flip {
                at: usize::from(c.u16()),
                bit: c.u8(),
            },
            1 => Mutation::Field {
                layer: match c.u8() % 4 {
                    0 => Layer::Ethernet,
                    1 => Layer::Network,
                    2 => Layer::Transport,
                    _ => Layer::Payload,
                },
                offset: usize::from(c.u8()),
                width: c.u8(),
                value: c.u32(),
            },
            2 => Mutation::Insert {
                at: usize::from(c.u16()),
                bytes: c.vec(256),
            },
            3 => Mutation::Delete {
                at: usize::from(c.u16()),
                len: usize::from(c.u16()),
            },
            _ => Mutation::Truncate {
                len: usize::from(c.u16()),
            },
        }
    }

    /// Decodes a fuzzer's bytes into a lab case: a pool byte, a policy
    /// byte, a client count, a byte and a buffer size per client, then acts
    /// (at most [`MAX_FUZZ_ACTS`]), each a kind byte and its fields.
    pub fn lab_from_bytes(data: &[u8]) -> LabCase {
        let mut c = Choices::new(data);
        let pool = c.u8();
        let sizes = lab_sizes(
            usize::from(pool & 3),
            usize::from((pool >> 2) & 3),
            usize::from((pool >> 4) & 3),
            usize::from(pool >> 6),
        );
        let policy = match c.u8() % 3 {
            0 => BacklogPolicy::Wait,
            1 => BacklogPolicy::Refuse,
            _ => BacklogPolicy::Busy,
        };
        let timeouts = if c.u8() & 1 == 0 {
            FUZZ_TIMEOUTS
        } else {
            let choices = [c.u8(), c.u8(), c.u8()];
            lab_timeouts(choices.map(usize::from))
        };
        let count = 1 + usize::from(c.u8() % 5);
        let clients = (0..count)
            .map(|_| {
                let flags = c.u8();
                LabClient {
                    v6: flags & 1 != 0,
                    nagle: flags & 2 != 0,
                    reading: flags & 4 == 0,
                    end: match (flags >> 3) % 4 {
                        0 => End::Linger,
                        1 => End::Close,
                        2 => End::Abort,
                        _ => End::Vanish,
                    },
                    rx_buffer: 64 << (c.u8() % 8),
                }
            })
            .collect();
        let mut acts = Vec::new();
        while !c.is_empty() && acts.len() < MAX_FUZZ_ACTS {
            let kind = c.u8();
            let client = usize::from(kind >> 4);
            acts.push(match kind % 9 {
                0..=2 => LabAct::Send {
                    client,
                    bytes: c.vec(2048),
                },
                3 => LabAct::Wait {
                    ms: u16::from(c.u8()) * 16,
                },
                4 => LabAct::Reading {
                    client,
                    on: kind & 8 != 0,
                },
                5 => LabAct::Close { client },
                6 => LabAct::Abort { client },
                7 => LabAct::Vanish { client },
                _ => LabAct::HalfOpen { v6: kind & 8 != 0 },
            });
        }
        LabCase {
            sizes,
            policy,
            timeouts,
            clients,
            acts,
        }
    }

    /// Timeouts from three choices (any numbers; each digit in base 4 picks
    /// one timeout's value): idle and slow reader from the first, handshake
    /// and closing from the second, keep-alive and dead peer from the third.
    /// Every one is at most 4 s.
    pub fn lab_timeouts(choices: [usize; 3]) -> Timeouts {
        const SHORT: [u64; 4] = [200, 700, 1_500, 4_000];
        let pick = |choice: usize, digit: u32| SHORT[(choice / 4usize.pow(digit)) % 4];
        Timeouts {
            idle_ms: pick(choices[0], 0),
            slow_reader_ms: pick(choices[0], 1),
            handshake_ms: pick(choices[1], 0),
            closing_ms: pick(choices[1], 1),
            keep_alive_ms: pick(choices[2], 0),
            dead_peer_ms: pick(choices[2], 1),
            http_request_ms: pick(choices[1], 0),
            http_idle_ms: pick(choices[0], 0),
        }
    }

    /// [`FUZZ_SIZES`] with `slots` (0 to 3: 1, 2, 2, 3) lab slots,
    /// `backlog` (0 to 3: 0, 1, 1, 2) backlog places, and receive and
    /// transmit buffers of choice `rx` and `tx` (0 to 3, from the smallest
    /// allowed up).
    pub fn lab_sizes(slots: usize, backlog: usize, rx: usize, tx: usize) -> Sizes {
        Sizes {
            lab_slots: [1, 2, 2, 3][slots % 4],
            lab_backlog: [0, 1, 1, 2][backlog % 4],
            lab_rx: [64, 128, 128, 1024][rx % 4],
            lab_tx: [MAX_RESPONSE_LINE + 1, 512, 512, 4096][tx % 4],
            ..FUZZ_SIZES
        }
    }
}
