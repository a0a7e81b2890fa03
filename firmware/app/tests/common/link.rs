//! The in-memory link: two queue-backed devices, the application on one
//! end and a client smoltcp interface on the other ([`Net`]), the client's
//! connections ([`Conn`]) and the simulated clock that drives them.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use socklab_app::protocol::{self, Hello, NetstatRow};
use socklab_app::smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use socklab_app::smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use socklab_app::smoltcp::socket::tcp;
use socklab_app::smoltcp::time::{Duration, Instant};
use socklab_app::smoltcp::wire::{HardwareAddress, IpCidr};
use socklab_app::{App, ClosingSocket, Config, LabSlot, Sizes, Storage, UdpPacketMetadata};

use super::{
    lab_addr, CLIENT_BUFFER, CLIENT_MAC, CLIENT_V4, CLIENT_V6, LINE_WAIT_MS, LINK_MTU, MIN_STEP_MS,
    SMALL,
};

/// Most poll rounds at one instant before the harness declares a livelock.
const SETTLE_ROUNDS: usize = 10_000;
/// First local port the client uses; each connection takes the next one.
const FIRST_CLIENT_PORT: u16 = 40_000;

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
    /// The client port of the next connection (set it to connect again from
    /// a port already used).
    pub next_port: u16,
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
            lab: leak(sizes.lab_states(), || LabSlot::EMPTY),
            closing: leak(sizes.closing_sockets(), || ClosingSocket::EMPTY),
            buffers: leak(sizes.buffer_bytes(), || 0u8),
            udp: leak(sizes.udp_packets(), || UdpPacketMetadata::EMPTY),
        };
        Net::with_storage(config, sizes, storage)
    }

    /// Like [`Net::new`], over `storage` instead of freshly leaked
    /// storage.
    pub fn with_storage(config: Config, sizes: Sizes, storage: Storage<'static>) -> Net {
        let now = Instant::from_secs(1);
        let mut app_dev = QueueDevice::default();
        let app = match App::new(
            config,
            sizes,
            storage,
            core::slice::from_mut(&mut app_dev),
            now,
        ) {
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
        self.app_delay = self
            .app
            .poll(self.now, core::slice::from_mut(&mut self.app_dev));
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
