//! The iperf3 server on port 5201: esnet iperf3's control protocol and its TCP
//! streams, one test at a time, over a fixed set of sockets.
//!
//! Every socket listens on 5201. A connection opens with a cookie: the first
//! while the server is idle becomes the test's control connection; while the
//! test waits for its streams, connections with the same cookie become its
//! streams; any other connection is told "busy" (`ACCESS_DENIED`) and closed.
//! The control connection then walks iperf3's states (parameters, create
//! streams, start, running, end, exchange results, display results, done).
//! The device counts the bytes it moved itself and reports them; it cannot
//! measure its CPU or count retransmissions, so it reports 0 and -1 for those.
//! A test that makes no progress for [`IPERF3_TIMEOUT`], whatever its
//! phase, is ended and its sockets listen again.

use core::fmt::{self, Write};

use heapless::Vec;
use log::{info, warn};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

use crate::pool::socket::{end_of_connection, listen};
use crate::services::service::{
    Context, Declared, HoldsSocket, Inventory, Service, ServicePort, SocketFactory, Sockets,
    Value as InfoValue, Values,
};
use crate::status::counters::Counters;
use crate::status::view::View;
use crate::wire::json::{self, Value};
use crate::wire::protocol::info as key;
use crate::wire::protocol::iperf3::{self as msg, COOKIE_LEN};
use crate::wire::protocol::{chargen_fill, IPERF3_PORT};

/// Most sockets the iperf3 server may have.
pub const MAX_IPERF3_SOCKETS: usize = 34;
/// Longest parameter object accepted from a client, bytes; a longer one is
/// answered with iperf3's "unable to receive parameters" error.
pub const IPERF3_MAX_PARAMS: usize = 2048;
/// A test that makes no progress this long is ended: a connection that does
/// not deliver its cookie, a phase that does not complete, a running test
/// through which no byte moves.
pub const IPERF3_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Largest results object accepted from a client (read and dropped), bytes.
const MAX_RESULTS: usize = 1 << 20;
/// Longest `time` (plus `omit`) a client may ask for, seconds (iperf3's own limit).
const MAX_TEST_SECONDS: i64 = 86_400;

/// Sockets a test cannot use for streams: its control connection, and one
/// more so that a second client can be told "busy" during a test.
pub const IPERF3_RESERVED_SOCKETS: usize = 2;

/// What one socket is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Listening.
    Idle,
    /// Connected; its cookie is arriving.
    Cookie,
    /// The test's control connection.
    Control,
    /// A stream with the test's cookie, waiting for its siblings.
    Joined,
    /// Stream `index` of the running test.
    Stream(usize),
    /// Answered or ended: drained, closed once the client has closed its
    /// side, and listening again once closed (reset after the timeout).
    Closing,
}

struct Conn {
    handle: SocketHandle,
    role: Role,
    /// When the role began.
    since: Instant,
    /// Arrival order (connections are numbered as they leave LISTEN).
    order: u32,
    cookie: [u8; COOKIE_LEN],
    cookie_len: usize,
    last_state: State,
    /// TIME-WAIT seen once: the last ACK is out after that poll's egress.
    time_wait_seen: bool,
    /// Ended by one of the device's timeouts.
    timed_out: bool,
    /// A stream of the test, after `TEST_END`.
    ended_stream: bool,
}

impl HoldsSocket for Conn {
    fn held(&self) -> Option<SocketHandle> {
        Some(self.handle)
    }
}

/// Where the test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No test: the next cookie starts one.
    Idle,
    /// `PARAM_EXCHANGE` sent; reading the parameter object.
    Params,
    /// `CREATE_STREAMS` sent; waiting for the streams.
    Streams,
    /// `TEST_RUNNING` sent; data flows until the client's `TEST_END`.
    Running,
    /// `EXCHANGE_RESULTS` sent; reading (and dropping) the client's results.
    ResultsIn,
    /// Writing the device's results and `DISPLAY_RESULTS`.
    ResultsOut,
    /// Waiting for `IPERF_DONE`.
    Display,
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Params {
    tcp: bool,
    other_protocol: bool,
    reverse: bool,
    bidir: bool,
    parallel: i64,
    time_s: i64,
    omit_s: i64,
    bytes: i64,
    blocks: i64,
    len: i64,
}

/// One stream's result.
#[derive(Debug, Clone, Copy)]
struct StreamResult {
    id: usize,
    sending: bool,
    /// Bytes moved after the omitted seconds.
    bytes: u64,
    /// Bytes queued in all (a sending stream's position in its payload).
    queued: u64,
}

/// A length-prefixed JSON object arriving on the control connection.
#[derive(Debug, Clone, Copy, Default)]
struct Prefixed {
    len: [u8; 4],
    len_got: usize,
    body_got: usize,
}

impl Prefixed {
    fn body_len(&self) -> Option<usize> {
        (self.len_got == 4).then(|| u32::from_be_bytes(self.len) as usize)
    }
}

/// The test in progress.
struct Test {
    phase: Phase,
    control: usize,
    cookie: [u8; COOKIE_LEN],
    params: Params,
    json: [u8; IPERF3_MAX_PARAMS],
    incoming: Prefixed,
    streams: Vec<StreamResult, MAX_IPERF3_SOCKETS>,
    /// The phase's deadline, or the last progress plus the timeout.
    deadline: Instant,
    /// The test must end by then (`time` + `omit` + the timeout).
    run_until: Option<Instant>,
    started: Instant,
    counting_from: Instant,
    ended: Instant,
    /// Bytes the device may still send (`-n`/`-k` with `-R`), if bounded.
    send_left: Option<u64>,
}

/// The iperf3 server's port and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[ServicePort::tcp("iperf3", IPERF3_PORT)],
    info_keys: &[
        key::IPERF3_SOCKETS,
        key::IPERF3_MAX_STREAMS,
        key::IPERF3_RX_BUFFER,
        key::IPERF3_TX_BUFFER,
        key::IPERF3_MAX_PARAMS,
        key::IPERF3_TIMEOUT_MS,
        key::IPERF3_TESTS,
        key::IPERF3_FAILED,
        key::IPERF3_BUSY,
    ],
};

/// The iperf3 server's part of the [`Sizes`](crate::Sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iperf3Sizes {
    /// Sockets on the iperf3 port: a test's control connection, its
    /// streams, and one more to tell a second client "busy" (0: no iperf3
    /// server).
    pub sockets: usize,
    /// Receive buffer of each socket, bytes.
    pub rx: usize,
    /// Transmit buffer of each socket, bytes.
    pub tx: usize,
}

impl Iperf3Sizes {
    /// A control connection, a spare and 4 streams, 8 KiB each way.
    pub const DEFAULT: Iperf3Sizes = Iperf3Sizes {
        sockets: 6,
        rx: 8 * 1024,
        tx: 8 * 1024,
    };

    /// No iperf3 server: what the part counts without the `iperf3` feature.
    pub const NONE: Iperf3Sizes = Iperf3Sizes {
        sockets: 0,
        ..Iperf3Sizes::DEFAULT
    };

    /// Streams one test may open (`-P`, or twice `-P` with `--bidir`).
    pub const fn max_streams(&self) -> usize {
        self.sockets.saturating_sub(IPERF3_RESERVED_SOCKETS)
    }

    /// Buffer bytes of every iperf3 socket.
    pub const fn buffer_bytes(&self) -> usize {
        self.sockets * (self.rx + self.tx)
    }

    /// Refuses sizes the server cannot run with.
    pub const fn check(&self) -> Result<(), &'static str> {
        if self.sockets > MAX_IPERF3_SOCKETS
            || (self.sockets != 0 && self.sockets <= IPERF3_RESERVED_SOCKETS)
        {
            return Err(
                "iperf3 sockets must be 0 or 3 to 34 (a control connection, a spare, the streams)",
            );
        }
        if self.sockets != 0 && (self.rx < 64 || self.tx < 4096) {
            return Err(
                "iperf3 buffers too small (rx at least 64, tx at least 4096 for the results)",
            );
        }
        Ok(())
    }
}

/// What the iperf3 server counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Tests run to the end.
    tests: u64,
    /// Tests ended early (error, timeout, client gone).
    failed: u64,
    /// Clients told "the server is busy".
    busy: u64,
}

/// The iperf3 server.
pub(crate) struct Iperf3 {
    conns: Vec<Conn, MAX_IPERF3_SOCKETS>,
    test: Test,
    next_order: u32,
    sizes: Iperf3Sizes,
    counts: Counts,
}

/// Why a test ended early.
enum Failure {
    /// Tell the client with `SERVER_ERROR`, iperf3's error number and an errno.
    Error(u32, u32, &'static str),
    /// Reset every connection of the test.
    Abort(&'static str),
}

impl Iperf3 {
    /// `sizes.sockets` sockets listening on the iperf3 port.
    pub fn new(factory: &mut SocketFactory<'_, '_>, sizes: &Iperf3Sizes) -> Self {
        let mut server = Iperf3::idle(*sizes);
        for _ in 0..sizes.sockets {
            let handle = factory.listener(sizes.rx, sizes.tx, IPERF3_PORT);
            server.add(handle);
        }
        server
    }

    /// A server without sockets yet.
    const fn idle(sizes: Iperf3Sizes) -> Self {
        Iperf3 {
            sizes,
            counts: Counts {
                tests: 0,
                failed: 0,
                busy: 0,
            },
            conns: Vec::new(),
            test: Test {
                phase: Phase::Idle,
                control: 0,
                cookie: [0; COOKIE_LEN],
                params: Params {
                    tcp: false,
                    other_protocol: false,
                    reverse: false,
                    bidir: false,
                    parallel: 0,
                    time_s: 0,
                    omit_s: 0,
                    bytes: 0,
                    blocks: 0,
                    len: 0,
                },
                json: [0; IPERF3_MAX_PARAMS],
                incoming: Prefixed {
                    len: [0; 4],
                    len_got: 0,
                    body_got: 0,
                },
                streams: Vec::new(),
                deadline: Instant::ZERO,
                run_until: None,
                started: Instant::ZERO,
                counting_from: Instant::ZERO,
                ended: Instant::ZERO,
                send_left: None,
            },
            next_order: 0,
        }
    }

    /// Registers a socket listening on the iperf3 port.
    fn add(&mut self, handle: SocketHandle) {
        // `Sizes::check` bounds the count by MAX_IPERF3_SOCKETS.
        let _ = self.conns.push(Conn {
            handle,
            role: Role::Idle,
            since: Instant::ZERO,
            order: 0,
            cookie: [0; COOKIE_LEN],
            cookie_len: 0,
            last_state: State::Listen,
            time_wait_seen: false,
            timed_out: false,
            ended_stream: false,
        });
    }

    /// Serves every iperf3 socket once; returns when it next needs a look.
    fn serve_all(
        &mut self,
        sockets: &mut SocketSet<'_>,
        counters: &mut Counters,
        now: Instant,
    ) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut soon = |at: Instant| wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        let mut moved = false;

        let mut control_gone = false;
        for i in 0..self.conns.len() {
            let phase = self.test.phase;
            let conn = &mut self.conns[i];
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            let state = socket.state();
            match (conn.role, state) {
                (Role::Idle, State::Listen) => continue,
                (Role::Idle, State::Closed | State::TimeWait) => {
                    listen(socket, IPERF3_PORT);
                    continue;
                }
                (Role::Idle, _) => {
                    counters.accepted += 1;
                    conn.role = Role::Cookie;
                    conn.since = now;
                    conn.order = self.next_order;
                    conn.cookie_len = 0;
                    conn.timed_out = false;
                    conn.time_wait_seen = false;
                    conn.ended_stream = false;
                    self.next_order = self.next_order.wrapping_add(1);
                }
                (_, State::Closed | State::TimeWait | State::Listen) => {
                    // Listen: smoltcp sends a socket whose handshake was reset
                    // back to listening by itself.
                    if state == State::TimeWait && !conn.time_wait_seen {
                        // Let this poll's egress send the last ACK first.
                        conn.time_wait_seen = true;
                        soon(now + Duration::from_millis(1));
                        continue;
                    }
                    if conn.timed_out {
                        counters.timed_out += 1;
                    } else {
                        end_of_connection(conn.last_state, state, counters);
                    }
                    if conn.role == Role::Control {
                        if phase == Phase::Display {
                            self.test.phase = Phase::Idle;
                        } else if phase != Phase::Idle {
                            control_gone = true;
                        }
                    }
                    conn.role = Role::Idle;
                    if state != State::Listen {
                        listen(socket, IPERF3_PORT);
                    }
                    conn.last_state = State::Listen;
                    continue;
                }
                _ => {}
            }
            conn.last_state = socket.state();

            match conn.role {
                // As iperf3 does, a client arriving during a test is
                // answered without reading its cookie.
                Role::Cookie
                    if !matches!(phase, Phase::Idle | Phase::Streams) && socket.may_send() =>
                {
                    deny(socket, conn, &mut self.counts.busy, now);
                }
                Role::Cookie if !matches!(phase, Phase::Idle | Phase::Streams) => {}
                Role::Cookie => {
                    if let Ok(n) = socket.recv_slice(&mut conn.cookie[conn.cookie_len..]) {
                        conn.cookie_len += n;
                    }
                    if conn.cookie_len == COOKIE_LEN {
                        let cookie = conn.cookie;
                        if phase == Phase::Idle {
                            conn.role = Role::Control;
                            conn.since = now;
                            let _ = socket.send_slice(&[msg::PARAM_EXCHANGE]);
                            self.test.start(i, cookie, now);
                        } else if cookie == self.test.cookie && self.joined() < self.test.wanted() {
                            self.conns[i].role = Role::Joined;
                        } else {
                            deny(socket, &mut self.conns[i], &mut self.counts.busy, now);
                        }
                    } else if now - conn.since >= IPERF3_TIMEOUT || peer_closed(socket) {
                        warn!("iperf3: a connection sent no whole cookie: reset");
                        conn.timed_out = !peer_closed(socket);
                        socket.abort();
                        conn.role = Role::Closing;
                        conn.since = now;
                    } else {
                        soon(conn.since + IPERF3_TIMEOUT);
                    }
                }
                Role::Stream(index) if phase == Phase::Running => {
                    let test = &mut self.test;
                    let Some(stream) = test.streams.get_mut(index) else {
                        continue;
                    };
                    let n = if stream.sending {
                        fill(socket, &mut test.send_left, &mut stream.queued)
                    } else {
                        drain(socket)
                    };
                    if n > 0 {
                        moved = true;
                        if now >= test.counting_from {
                            stream.bytes += n as u64;
                        }
                    }
                }
                Role::Closing => {
                    drain(socket);
                    if socket.state() == State::CloseWait {
                        socket.close();
                    }
                    if now - conn.since >= IPERF3_TIMEOUT {
                        socket.abort();
                    } else {
                        soon(conn.since + IPERF3_TIMEOUT);
                    }
                }
                _ => {}
            }
        }
        if control_gone {
            self.fail(
                sockets,
                Failure::Abort("the client closed the control connection"),
                now,
            );
        }

        if self.test.phase != Phase::Idle {
            if moved {
                self.test.deadline = now + IPERF3_TIMEOUT;
            }
            if let Err(failure) = self.step(sockets, now) {
                self.fail(sockets, failure, now);
            }
            if self.test.phase != Phase::Idle {
                soon(self.test.deadline);
                if let Some(until) = self.test.run_until {
                    soon(until);
                }
            }
        }
        wake
    }

    /// Streams that have joined the test so far.
    fn joined(&self) -> usize {
        self.conns.iter().filter(|c| c.role == Role::Joined).count()
    }

    /// Moves the control connection on as far as it can go.
    fn step(&mut self, sockets: &mut SocketSet<'_>, now: Instant) -> Result<(), Failure> {
        let control = self.conns[self.test.control].handle;
        if now >= self.test.deadline {
            return Err(Failure::Abort(match self.test.phase {
                Phase::Running => "no byte moved",
                _ => "the client did not answer",
            }));
        }
        if self.test.run_until.is_some_and(|until| now >= until) {
            return Err(Failure::Abort("the client did not end the test in time"));
        }
        loop {
            let socket = sockets.get_mut::<tcp::Socket>(control);
            let test = &mut self.test;
            match test.phase {
                Phase::Idle => return Ok(()),
                Phase::Params => {
                    if !read_prefixed(socket, &mut test.incoming, Some(&mut test.json))? {
                        return closed_early(socket);
                    }
                    let len = test.incoming.body_len().unwrap_or(0);
                    test.params = parse_params(&test.json[..len])?;
                    let p = test.params;
                    if p.other_protocol || !p.tcp {
                        return Err(Failure::Error(
                            msg::IE_UNIMP,
                            0,
                            "UDP and SCTP tests are not served",
                        ));
                    }
                    if test.wanted() > self.conns.len().saturating_sub(IPERF3_RESERVED_SOCKETS) {
                        return Err(Failure::Error(
                            msg::IE_STREAM_LISTEN,
                            msg::ENOBUFS,
                            "more streams than sockets",
                        ));
                    }
                    info!(
                        "iperf3: test: {} stream(s){}{}, {} s",
                        p.parallel,
                        if p.reverse { ", reverse" } else { "" },
                        if p.bidir { ", bidirectional" } else { "" },
                        p.time_s
                    );
                    let limit = if p.bytes > 0 {
                        Some(p.bytes as u64)
                    } else if p.blocks > 0 {
                        Some((p.blocks as u64).saturating_mul(p.len.max(1) as u64))
                    } else {
                        None
                    };
                    test.send_left = limit;
                    let _ = socket.send_slice(&[msg::CREATE_STREAMS]);
                    test.phase = Phase::Streams;
                    test.deadline = now + IPERF3_TIMEOUT;
                }
                Phase::Streams => {
                    if control_closed(socket) {
                        return closed_early(socket);
                    }
                    let wanted = test.wanted();
                    let joined = self.conns.iter().filter(|c| c.role == Role::Joined).count();
                    if joined < wanted {
                        return Ok(());
                    }
                    // Number the streams in the order the client connected them:
                    // with --bidir its sending streams come first.
                    let p = self.test.params;
                    self.test.streams.clear();
                    for k in 0..wanted {
                        let Some(next) = self
                            .conns
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| c.role == Role::Joined)
                            .min_by_key(|(_, c)| c.order)
                            .map(|(i, _)| i)
                        else {
                            break;
                        };
                        let sending = p.reverse || (p.bidir && k >= p.parallel as usize);
                        let _ = self.test.streams.push(StreamResult {
                            id: msg::stream_id(k),
                            sending,
                            bytes: 0,
                            queued: 0,
                        });
                        self.conns[next].role = Role::Stream(k);
                    }
                    let socket = sockets.get_mut::<tcp::Socket>(control);
                    let test = &mut self.test;
                    let _ = socket.send_slice(&[msg::TEST_START, msg::TEST_RUNNING]);
                    test.phase = Phase::Running;
                    test.started = now;
                    test.counting_from = now + Duration::from_secs(p.omit_s as u64);
                    test.deadline = now + IPERF3_TIMEOUT;
                    test.run_until = (p.time_s > 0).then(|| {
                        now + Duration::from_secs((p.time_s + p.omit_s) as u64) + IPERF3_TIMEOUT
                    });
                }
                Phase::Running => {
                    let mut byte = [0u8];
                    match socket.recv_slice(&mut byte) {
                        Ok(1) => {}
                        _ if control_closed(socket) => return closed_early(socket),
                        _ => return Ok(()),
                    }
                    match byte[0] {
                        msg::TEST_END => {}
                        msg::CLIENT_TERMINATE => {
                            return Err(Failure::Abort("the client ended the test"))
                        }
                        _ => return Err(Failure::Abort("unexpected message from the client")),
                    }
                    test.ended = now;
                    test.run_until = None;
                    test.incoming = Prefixed::default();
                    let _ = socket.send_slice(&[msg::EXCHANGE_RESULTS]);
                    test.phase = Phase::ResultsIn;
                    test.deadline = now + IPERF3_TIMEOUT;
                    self.end_streams(sockets, now);
                }
                Phase::ResultsIn => {
                    if !read_prefixed(socket, &mut test.incoming, None)? {
                        return closed_early(socket);
                    }
                    test.phase = Phase::ResultsOut;
                }
                Phase::ResultsOut => {
                    let mut count = Count(0);
                    let _ = test.write_results(&mut count);
                    let len = count.0;
                    if socket.send_capacity() - socket.send_queue() < 4 + len + 1 {
                        if socket.send_capacity() < 4 + len + 1 {
                            return Err(Failure::Abort("results larger than the send buffer"));
                        }
                        return Ok(());
                    }
                    let _ = socket.send_slice(&(len as u32).to_be_bytes());
                    let _ = test.write_results(&mut SocketWriter(socket));
                    let _ = socket.send_slice(&[msg::DISPLAY_RESULTS]);
                    test.phase = Phase::Display;
                    test.deadline = now + IPERF3_TIMEOUT;
                    self.counts.tests += 1;
                    let total: u64 = test.streams.iter().map(|s| s.bytes).sum();
                    info!(
                        "iperf3: test done: {} bytes in {} ms",
                        total,
                        (test.ended - test.counting_from.min(test.ended)).total_millis()
                    );
                }
                Phase::Display => {
                    let mut byte = [0u8];
                    let done =
                        matches!(socket.recv_slice(&mut byte), Ok(1)) || control_closed(socket);
                    if !done {
                        return Ok(());
                    }
                    // Closed once the client has closed its side (see end_streams).
                    let conn = &mut self.conns[self.test.control];
                    conn.role = Role::Closing;
                    conn.since = now;
                    // The client closed its streams before it said IPERF_DONE:
                    // what is left of them (data behind a closed window, a FIN
                    // not yet through) is of no use to anyone. Free them now.
                    for conn in self.conns.iter_mut().filter(|c| c.ended_stream) {
                        let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
                        if !matches!(socket.state(), State::Closed | State::TimeWait) {
                            socket.abort();
                        }
                        conn.ended_stream = false;
                    }
                    self.test.phase = Phase::Idle;
                    return Ok(());
                }
            }
        }
    }

    /// Lets the test's streams go at `TEST_END`. A stream the device sent on
    /// is closed (a FIN after what is queued), as iperf3 does: a client in
    /// reverse mode keeps reading until then. A stream it received on stays
    /// open, drained, until the client closes it (the client closes its
    /// streams after the results), so that its socket does not wait in
    /// FIN-WAIT while the next test connects.
    fn end_streams(&mut self, sockets: &mut SocketSet<'_>, now: Instant) {
        for conn in self.conns.iter_mut() {
            if let Role::Stream(index) = conn.role {
                if self.test.streams.get(index).is_some_and(|s| s.sending) {
                    sockets.get_mut::<tcp::Socket>(conn.handle).close();
                }
                conn.role = Role::Closing;
                conn.since = now;
                conn.ended_stream = true;
            }
        }
    }

    /// Ends the test early: an error the client can print, or resets.
    fn fail(&mut self, sockets: &mut SocketSet<'_>, failure: Failure, now: Instant) {
        self.counts.failed += 1;
        let (error, why) = match failure {
            Failure::Error(ie, errno, why) => (Some((ie, errno)), why),
            Failure::Abort(why) => (None, why),
        };
        warn!("iperf3: test ended: {why}");
        let timed_out = now >= self.test.deadline;
        for (i, conn) in self.conns.iter_mut().enumerate() {
            let ours =
                i == self.test.control || matches!(conn.role, Role::Joined | Role::Stream(_));
            if !ours || matches!(conn.role, Role::Idle | Role::Closing) {
                continue;
            }
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            match error {
                Some((ie, errno)) if i == self.test.control => {
                    let _ = socket.send_slice(&[msg::SERVER_ERROR]);
                    let _ = socket.send_slice(&ie.to_be_bytes());
                    let _ = socket.send_slice(&errno.to_be_bytes());
                    socket.close();
                }
                _ => {
                    socket.abort();
                    conn.timed_out = timed_out;
                }
            }
            conn.role = Role::Closing;
            conn.since = now;
        }
        self.test.phase = Phase::Idle;
    }
}

impl Inventory for Iperf3 {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::tcp(&self.conns)
    }

    fn info(&self, _view: &View<'_>, values: &mut Values) {
        let sizes = &self.sizes;
        let counts = &self.counts;
        let all = [
            InfoValue::from(sizes.sockets),
            sizes.max_streams().into(),
            sizes.rx.into(),
            sizes.tx.into(),
            IPERF3_MAX_PARAMS.into(),
            IPERF3_TIMEOUT.total_millis().into(),
            counts.tests.into(),
            counts.failed.into(),
            counts.busy.into(),
        ];
        values.extend(all);
    }
}

impl Service for Iperf3 {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        self.serve_all(cx.sockets, cx.counters, cx.now)
    }
}

impl Test {
    /// A new test on control connection `control`.
    fn start(&mut self, control: usize, cookie: [u8; COOKIE_LEN], now: Instant) {
        self.phase = Phase::Params;
        self.control = control;
        self.cookie = cookie;
        self.params = Params::default();
        self.incoming = Prefixed::default();
        self.streams.clear();
        self.deadline = now + IPERF3_TIMEOUT;
        self.run_until = None;
        self.send_left = None;
    }

    /// Streams the test asked for.
    fn wanted(&self) -> usize {
        let parallel = self.params.parallel.max(0) as usize;
        if self.params.bidir {
            parallel.saturating_mul(2)
        } else {
            parallel
        }
    }

    /// The device's results object, as iperf3's `get_results` reads it.
    fn write_results(&self, out: &mut impl Write) -> fmt::Result {
        // iperf3: -1 when the server only received; otherwise whether the
        // sender can count retransmissions, which the device cannot.
        let has_retransmits = if self.params.reverse || self.params.bidir {
            0
        } else {
            -1
        };
        write!(
            out,
            "{{\"cpu_util_total\":0,\"cpu_util_user\":0,\"cpu_util_system\":0,\
             \"sender_has_retransmits\":{has_retransmits},\"streams\":["
        )?;
        let ms = (self.ended - self.counting_from.min(self.ended)).total_millis();
        for (k, s) in self.streams.iter().enumerate() {
            if k > 0 {
                out.write_char(',')?;
            }
            write!(
                out,
                "{{\"id\":{},\"bytes\":{},\"retransmits\":-1,\"jitter\":0,\"errors\":0,\
                 \"packets\":0,\"start_time\":0,\"end_time\":{}.{:03}}}",
                s.id,
                s.bytes,
                ms / 1000,
                ms % 1000
            )?;
        }
        out.write_str("]}")
    }
}

/// Reads the client's parameters.
fn parse_params(text: &[u8]) -> Result<Params, Failure> {
    let mut p = Params {
        parallel: 1,
        ..Params::default()
    };
    json::for_each_member(text, |key, value| match (key, value) {
        (b"tcp", Value::Bool(b)) => p.tcp = b,
        (b"udp" | b"sctp", Value::Bool(true)) => p.other_protocol = true,
        (b"reverse", Value::Bool(b)) => p.reverse = b,
        (b"bidirectional", Value::Bool(b)) => p.bidir = b,
        (b"parallel", Value::Number(n)) => p.parallel = n,
        (b"time", Value::Number(n)) => p.time_s = n,
        (b"omit", Value::Number(n)) => p.omit_s = n,
        (b"num", Value::Number(n)) => p.bytes = n,
        (b"blockcount", Value::Number(n)) => p.blocks = n,
        (b"len", Value::Number(n)) => p.len = n,
        _ => {}
    })
    .map_err(|_| {
        Failure::Error(
            msg::IE_RECV_PARAMS,
            msg::EINVAL,
            "parameters are not a JSON object",
        )
    })?;
    let in_range = |n: i64, max: i64| (0..=max).contains(&n);
    if !(1..=MAX_IPERF3_SOCKETS as i64).contains(&p.parallel) && !p.other_protocol {
        return Err(Failure::Error(
            msg::IE_STREAM_LISTEN,
            msg::ENOBUFS,
            "more streams than sockets",
        ));
    }
    if !in_range(p.time_s, MAX_TEST_SECONDS)
        || !in_range(p.omit_s, MAX_TEST_SECONDS)
        || p.bytes < 0
        || p.blocks < 0
        || p.len < 0
    {
        return Err(Failure::Error(
            msg::IE_RECV_PARAMS,
            msg::EINVAL,
            "parameters out of range",
        ));
    }
    Ok(p)
}

/// Reads a 4-byte length and that many bytes, into `body` if given (else
/// dropped). Ok(true) once complete, Ok(false) while more is to come.
fn read_prefixed(
    socket: &mut tcp::Socket,
    incoming: &mut Prefixed,
    mut body: Option<&mut [u8; IPERF3_MAX_PARAMS]>,
) -> Result<bool, Failure> {
    while incoming.len_got < 4 {
        match socket.recv_slice(&mut incoming.len[incoming.len_got..]) {
            Ok(n) if n > 0 => incoming.len_got += n,
            _ => return Ok(false),
        }
    }
    let len = incoming.body_len().unwrap_or(0);
    let limit = if body.is_some() {
        IPERF3_MAX_PARAMS
    } else {
        MAX_RESULTS
    };
    if len > limit {
        return Err(if body.is_some() {
            Failure::Error(
                msg::IE_RECV_PARAMS,
                msg::EMSGSIZE,
                "parameter object too long",
            )
        } else {
            Failure::Abort("results object too long")
        });
    }
    while incoming.body_got < len {
        let got = match body.as_deref_mut() {
            Some(buf) => socket.recv_slice(&mut buf[incoming.body_got..len]),
            None => socket.recv(|b| {
                let n = b.len().min(len - incoming.body_got);
                (n, n)
            }),
        };
        match got {
            Ok(n) if n > 0 => incoming.body_got += n,
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Answers "the server is busy" and closes.
fn deny(socket: &mut tcp::Socket, conn: &mut Conn, busy: &mut u64, now: Instant) {
    let _ = socket.send_slice(&[msg::ACCESS_DENIED]);
    socket.close();
    *busy += 1;
    info!("iperf3: busy, a test is running: a client was turned away");
    conn.role = Role::Closing;
    conn.since = now;
}

/// Has the client closed its side (or the connection ended), with nothing
/// left to read?
fn peer_closed(socket: &tcp::Socket) -> bool {
    !matches!(socket.state(), State::Listen | State::SynReceived)
        && !socket.may_recv()
        && !socket.can_recv()
}

/// Has the client closed (or reset) its side of the control connection?
fn control_closed(socket: &tcp::Socket) -> bool {
    peer_closed(socket)
}

/// The control connection has nothing more to read: wait if it is alive,
/// fail if the client closed it.
fn closed_early(socket: &tcp::Socket) -> Result<(), Failure> {
    if control_closed(socket) {
        Err(Failure::Abort("the client closed the control connection"))
    } else {
        Ok(())
    }
}

/// Queues as much as fits (at most `left` bytes in all, if bounded), the
/// chargen pattern from position `pos` on; returns the bytes queued.
///
/// The payload is written, not left as whatever the buffer held: iperf3's
/// own sender copies its block into the socket on every write, and the
/// device's chargen service writes the same pattern, so an iperf3 `-R` test
/// and `socklab bench`'s device→host stream cost the device the same per
/// byte (without the copy, linux-tap spent 22 ms of CPU per GB on an
/// iperf3 `-R` stream against 24–27 ms on chargen).
fn fill(socket: &mut tcp::Socket, left: &mut Option<u64>, pos: &mut u64) -> usize {
    let mut queued = 0;
    while socket.can_send() && left.is_none_or(|l| l > 0) {
        let sent = socket.send(|buf| {
            let n = left.map_or(buf.len(), |l| buf.len().min(l as usize));
            chargen_fill(*pos, &mut buf[..n]);
            (n, n)
        });
        match sent {
            Ok(n) if n > 0 => {
                queued += n;
                *pos += n as u64;
                if let Some(l) = left.as_mut() {
                    *l -= n as u64;
                }
            }
            _ => break,
        }
    }
    queued
}

/// Drops everything received; returns how many bytes.
fn drain(socket: &mut tcp::Socket) -> usize {
    let mut total = 0;
    while socket.can_recv() {
        match socket.recv(|b| (b.len(), b.len())) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}

/// Counts what would be written.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes into a socket's transmit buffer (the caller checked the room).
struct SocketWriter<'s, 'a>(&'s mut tcp::Socket<'a>);

impl Write for SocketWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.0.send_slice(s.as_bytes()) {
            Ok(n) if n == s.len() => Ok(()),
            _ => Err(fmt::Error),
        }
    }
}
