//! The HTTP/1.1 server on port 80: the device's status page and its JSON API,
//! on a small pool of its own sockets, apart from the lab's, so the page
//! works while the lab is full.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page (HTML, CSS and JS in one file, gzip-coded when the client takes it) |
//! | `GET /api/info` | every `INFO` key as JSON |
//! | `GET /api/sockets` | every TCP socket: service, slot, addresses, state, time in state, buffers; the counters and the bad link's counts |
//! | `GET /api/events?since=N` | the connection state changes from sequence number `N` on |
//! | `HEAD` of any of these | the same head, no body |
//!
//! Keep-alive and pipelined requests are served in order; `Connection:
//! close` and HTTP/1.0 close after the answer. Bad requests get 400, 404,
//! 405 (with `Allow`), 408 (a head unfinished after the request timeout),
//! 414, 431, 501 (a request body with a transfer coding) or 505; those that
//! leave the request's framing in doubt close the connection. An idle
//! keep-alive connection is closed after the idle timeout; one that leaves
//! its answer unread past the slow-reader timeout is aborted. Dynamic
//! answers stream in chunks as the client reads, so any pool fits through a
//! small transmit buffer.

pub mod request;

mod api;
mod page;

use core::cell::Cell;
use core::fmt::Write;

use log::debug;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

use crate::pool::socket::listen;
use crate::services::report::Device;
use crate::services::service::{
    Context, Declared, Footprint, Inventory, Role, Service, ServicePort, SocketFactory, Sockets,
    Value, Values,
};
use crate::status::view::View;
use crate::wire::protocol::{info as key, HTTP_PORT};
use api::{Cursor, Doc, Piece, Sources};
pub use request::MAX_REQUEST_HEAD;
use request::{HeadReader, Method, Progress, Refusal, Request};

/// Sockets of the HTTP server: clients served at once (a browser needs one).
pub const HTTP_SOCKETS: usize = 4;
/// Receive buffer of each HTTP socket, bytes: a request head and the next.
pub const HTTP_RX_BUFFER: usize = 2048;
/// Transmit buffer of each HTTP socket, bytes.
pub const HTTP_TX_BUFFER: usize = 4096;

/// The HTTP server's port and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[ServicePort::tcp("http", HTTP_PORT)],
    info_keys: &[
        key::HTTP_SOCKETS,
        key::HTTP_RX_BUFFER,
        key::HTTP_TX_BUFFER,
        key::HTTP_MAX_HEAD,
        key::HTTP_REQUEST_TIMEOUT_MS,
        key::HTTP_IDLE_TIMEOUT_MS,
        key::HTTP_REQUESTS,
    ],
};

/// What the HTTP server takes: fixed.
pub const FOOTPRINT: Footprint = Footprint {
    tcp_sockets: HTTP_SOCKETS,
    udp_sockets: 0,
    udp_packets: 0,
    buffer_bytes: HTTP_SOCKETS * (HTTP_RX_BUFFER + HTTP_TX_BUFFER),
};
/// Free transmit space needed before a request is read: its answer's head
/// and a short error body always fit.
const RESPONSE_ROOM: usize = 640;
/// Most bytes in one chunk of a streamed answer.
const CHUNK_BYTES: usize = 1024;
/// Chunk framing: a size line and the CRLF after the data.
const CHUNK_FRAMING: usize = 8;
/// The last chunk of a streamed answer.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// An answer's head, formatted before it is written.
type Head = heapless::Vec<u8, RESPONSE_ROOM>;

/// What remains of an answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    /// Bytes of the image, from `offset`.
    Static {
        data: &'static [u8],
        offset: usize,
    },
    /// A JSON document; `chunked` for HTTP/1.1, else ended by the close.
    Json {
        cursor: Cursor,
        chunked: bool,
    },
}

/// One connection's state.
struct Slot {
    reader: HeadReader,
    /// When the first byte of the head being read arrived.
    request_since: Option<Instant>,
    /// Last time a request arrived or an answer finished.
    idle_since: Instant,
    /// Request body bytes still to skip.
    discard: u64,
    body: Body,
    /// Close once the body is out.
    close_after: bool,
    /// Since when the close has been under way.
    closing_since: Option<Instant>,
    /// Since when the body has had no room.
    blocked_since: Option<Instant>,
    /// Since when the handshake has been under way.
    handshake_since: Option<Instant>,
    last_state: State,
}

impl Slot {
    const FRESH: Slot = Slot {
        reader: HeadReader::new(),
        request_since: None,
        idle_since: Instant::ZERO,
        discard: 0,
        body: Body::None,
        close_after: false,
        closing_since: None,
        blocked_since: None,
        handshake_since: None,
        last_state: State::Listen,
    };
}

/// The HTTP server: its sockets and their connections.
pub(crate) struct Http {
    sockets: HttpSockets,
    slots: [Slot; HTTP_SOCKETS],
}

/// The HTTP server's sockets and what it counts: what the reports read
/// while a connection is being served.
struct HttpSockets {
    handles: [SocketHandle; HTTP_SOCKETS],
    /// Requests answered since start.
    requests: Cell<u64>,
}

fn room(socket: &tcp::Socket) -> usize {
    socket.send_capacity() - socket.send_queue()
}

/// The reason phrase of a status code.
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Everything an answer's head says.
struct Answer {
    code: u16,
    content_type: &'static str,
    /// `Some(n)`: a body of `n` bytes; `None`: chunked or ended by the close.
    length: Option<usize>,
    chunked: bool,
    gzip: bool,
    close: bool,
    /// The page varies with Accept-Encoding.
    vary: bool,
}

fn head(answer: &Answer, out: &mut Head) -> core::fmt::Result {
    let mut w = HeadWriter(out);
    let code = answer.code;
    write!(w, "HTTP/1.1 {code} {}\r\n", reason(code))?;
    write!(w, "Server: socklab/{}\r\n", crate::protocol::VERSION)?;
    write!(w, "Content-Type: {}\r\n", answer.content_type)?;
    if let Some(length) = answer.length {
        write!(w, "Content-Length: {length}\r\n")?;
    }
    if answer.chunked {
        w.write_str("Transfer-Encoding: chunked\r\n")?;
    }
    if answer.gzip {
        w.write_str("Content-Encoding: gzip\r\n")?;
    }
    if answer.vary {
        w.write_str("Vary: Accept-Encoding\r\n")?;
    }
    if code == 405 {
        w.write_str("Allow: GET, HEAD\r\n")?;
    }
    w.write_str("Cache-Control: no-store\r\n")?;
    if answer.close {
        w.write_str("Connection: close\r\n")?;
    }
    w.write_str("\r\n")
}

struct HeadWriter<'h>(&'h mut Head);

impl Write for HeadWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| core::fmt::Error)
    }
}

impl Http {
    /// Its [`HTTP_SOCKETS`] sockets, listening.
    pub fn new(factory: &mut SocketFactory<'_, '_>) -> Self {
        let handles = core::array::from_fn(|_| {
            let mut socket = factory.tcp_socket(HTTP_RX_BUFFER, HTTP_TX_BUFFER);
            listen(&mut socket, HTTP_PORT);
            factory.sockets.add(socket)
        });
        Http {
            sockets: HttpSockets {
                handles,
                requests: Cell::new(0),
            },
            slots: [Slot::FRESH; HTTP_SOCKETS],
        }
    }
}

impl Inventory for HttpSockets {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::tcp(&self.handles)
    }

    fn info(&self, view: &View<'_>, values: &mut Values) {
        let t = &view.config.timeouts;
        values.extend([
            Value::from(HTTP_SOCKETS),
            HTTP_RX_BUFFER.into(),
            HTTP_TX_BUFFER.into(),
            MAX_REQUEST_HEAD.into(),
            t.http_request_ms.into(),
            t.http_idle_ms.into(),
            self.requests.get().into(),
        ]);
    }

    fn role(&self, handle: SocketHandle) -> Option<Role> {
        let slot = self.handles.iter().position(|h| *h == handle)?;
        Some(Role {
            name: "http",
            slot: Some(slot),
            position: None,
        })
    }
}

impl Service for Http {
    fn inventory(&self) -> &dyn Inventory {
        &self.sockets
    }

    /// Serves every connection once; returns the earliest time one needs
    /// another look.
    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let Http {
            sockets: own,
            slots,
        } = self;
        let device = Device {
            now: cx.now,
            view: cx.view,
            counters: cx.counters,
            closing: cx.closing,
            peers: cx.peers,
            me: &*own,
        };
        for (slot, handle) in slots.iter_mut().zip(own.handles.iter()) {
            let turn = Served {
                device: &device,
                now: cx.now,
                requests: &own.requests,
            };
            if let Some(at) = serve_one(slot, *handle, cx.sockets, turn) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            slot.last_state = cx.sockets.get::<tcp::Socket>(*handle).state();
        }
        next
    }
}

/// What one connection's turn needs besides its slot.
struct Served<'s, 'r, 'a> {
    device: &'s Device<'r, 'a>,
    now: Instant,
    requests: &'s Cell<u64>,
}

/// One connection's turn: follows its TCP state, writes what is pending,
/// reads and answers requests, applies the timeouts.
fn serve_one<'a>(
    slot: &mut Slot,
    handle: SocketHandle,
    sockets: &mut SocketSet<'a>,
    mut ctx: Served<'_, '_, 'a>,
) -> Option<Instant> {
    let timeouts = ctx.device.view.config.timeouts;
    let ms = Duration::from_millis;
    let now = ctx.now;
    let socket = sockets.get_mut::<tcp::Socket>(handle);
    match socket.state() {
        State::Listen => {
            if slot.last_state != State::Listen {
                *slot = Slot::FRESH;
            }
            return None;
        }
        State::SynReceived => {
            let since = *slot.handshake_since.get_or_insert(now);
            let deadline = since + ms(timeouts.handshake_ms);
            if now < deadline {
                return Some(deadline);
            }
            socket.abort();
            listen(socket, HTTP_PORT);
            *slot = Slot::FRESH;
            return None;
        }
        State::Closed => {
            listen(socket, HTTP_PORT);
            *slot = Slot::FRESH;
            return None;
        }
        State::TimeWait => {
            // Our ACK of the client's FIN went out on the poll that saw
            // TIME-WAIT first; the socket listens again on the next one.
            if slot.last_state == State::TimeWait {
                listen(socket, HTTP_PORT);
                *slot = Slot::FRESH;
                return None;
            }
            return Some(now);
        }
        _ => {}
    }
    if matches!(slot.last_state, State::Listen | State::SynReceived) {
        *slot = Slot::FRESH;
        slot.idle_since = now;
        slot.last_state = State::Established;
    }

    if let Some(since) = slot.closing_since {
        // Anything the client still sends is dropped.
        while socket.can_recv() {
            if socket.recv(|b| (b.len(), ())).is_err() {
                break;
            }
        }
        let deadline = since + ms(timeouts.closing_ms);
        if now < deadline {
            return Some(deadline);
        }
        debug!("http: close timed out");
        socket.abort();
        return None;
    }

    loop {
        match write_body(slot, handle, sockets, &ctx) {
            Written::All => slot.blocked_since = None,
            Written::Some => {
                slot.blocked_since = Some(now);
                return Some(now + ms(timeouts.slow_reader_ms));
            }
            Written::Nothing => {
                let since = *slot.blocked_since.get_or_insert(now);
                let deadline = since + ms(timeouts.slow_reader_ms);
                if now < deadline {
                    return Some(deadline);
                }
                debug!("http: answer left unread: aborted");
                sockets.get_mut::<tcp::Socket>(handle).abort();
                return None;
            }
        }
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if slot.close_after {
            socket.close();
            slot.closing_since = Some(now);
            return Some(now + ms(timeouts.closing_ms));
        }
        if room(socket) < RESPONSE_ROOM || !socket.may_send() {
            break;
        }
        if slot.discard > 0 {
            let want = slot.discard;
            let skipped = socket
                .recv(|b| {
                    let n = (b.len() as u64).min(want) as usize;
                    (n, n)
                })
                .unwrap_or(0);
            slot.discard -= skipped as u64;
            if slot.discard > 0 {
                break;
            }
        }
        match read_head(slot, socket) {
            None => break,
            Some(progress) => {
                slot.request_since.get_or_insert(now);
                match progress {
                    Progress::More => break,
                    Progress::Complete => {
                        answer(slot, socket, &mut ctx);
                        slot.reader.clear();
                        slot.request_since = None;
                        slot.idle_since = now;
                    }
                    Progress::LineTooLong => {
                        refuse(slot, socket, 414, "the request line is too long", &mut ctx);
                    }
                    Progress::HeadTooLarge => {
                        refuse(slot, socket, 431, "the request head is too large", &mut ctx);
                    }
                }
            }
        }
    }

    let socket = sockets.get_mut::<tcp::Socket>(handle);
    let pending = slot.body != Body::None || slot.close_after;
    if !socket.may_recv() && !pending && slot.discard == 0 {
        // The client has finished sending and has its answers.
        socket.close();
        slot.closing_since = Some(now);
        return Some(now + ms(timeouts.closing_ms));
    }
    if let Some(since) = slot.request_since {
        let deadline = since + ms(timeouts.http_request_ms);
        if now < deadline {
            return Some(deadline);
        }
        refuse(
            slot,
            socket,
            408,
            "the request did not arrive in time",
            &mut ctx,
        );
        // Written at once if it fits; the close follows on the next turn.
        return Some(now);
    }
    if !pending {
        let deadline = slot.idle_since + ms(timeouts.http_idle_ms);
        if now < deadline {
            return Some(deadline);
        }
        socket.close();
        slot.closing_since = Some(now);
        return Some(now + ms(timeouts.closing_ms));
    }
    None
}

/// Moves received bytes into the head reader up to the end of a head or a
/// limit. `None`: nothing was received.
fn read_head(slot: &mut Slot, socket: &mut tcp::Socket) -> Option<Progress> {
    let mut got = false;
    // Two passes at most: the receive ring may hand its bytes out in two pieces.
    for _ in 0..2 {
        let read = socket.recv(|buf| {
            for (i, &byte) in buf.iter().enumerate() {
                match slot.reader.push(byte) {
                    Progress::More => {}
                    done => return (i + 1, (i + 1, Some(done))),
                }
            }
            (buf.len(), (buf.len(), None))
        });
        match read {
            Ok((_, Some(done))) => return Some(done),
            Ok((n, None)) => {
                got |= n > 0;
                if !socket.can_recv() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got.then_some(Progress::More)
}

/// Answers a complete head.
fn answer(slot: &mut Slot, socket: &mut tcp::Socket, ctx: &mut Served<'_, '_, '_>) {
    let request = match request::parse(slot.reader.head()) {
        Ok(request) => request,
        Err(Refusal::BadRequest(why)) => return refuse(slot, socket, 400, why, ctx),
        Err(Refusal::VersionNotSupported) => {
            return refuse(
                slot,
                socket,
                505,
                "this server speaks HTTP/1.1 and 1.0",
                ctx,
            )
        }
        Err(Refusal::NotImplemented) => {
            return refuse(
                slot,
                socket,
                501,
                "request bodies with a transfer coding",
                ctx,
            )
        }
    };
    ctx.requests.set(ctx.requests.get() + 1);
    slot.discard = request.content_length;
    let close = !request.keep_alive;
    let route = route(&request);
    let (code, detail) = match route {
        Err(404) => (404, "no such page; try / or /api/sockets"),
        Err(_) => (400, "since must be a number"),
        Ok(_) if request.method == Method::Other => (405, "only GET and HEAD"),
        Ok(_) => (200, ""),
    };
    if code != 200 {
        return error(
            slot,
            socket,
            code,
            detail,
            close,
            request.method == Method::Head,
        );
    }
    let head_only = request.method == Method::Head;
    let mut out = Head::new();
    let (answer_head, body) = match route {
        Ok(Route::Page) => {
            let (data, gzip) = page::body(request.accepts_gzip);
            let answer = Answer {
                code,
                content_type: "text/html; charset=utf-8",
                length: Some(data.len()),
                chunked: false,
                gzip,
                close,
                vary: true,
            };
            (answer, Body::Static { data, offset: 0 })
        }
        Ok(Route::Json(doc)) => {
            let chunked = request.minor >= 1;
            let answer = Answer {
                code,
                content_type: "application/json",
                length: None,
                chunked,
                gzip: false,
                close: close || !chunked,
                vary: false,
            };
            let body = Body::Json {
                cursor: Cursor::new(doc),
                chunked,
            };
            (answer, body)
        }
        Err(_) => return,
    };
    // The head fits RESPONSE_ROOM, which the caller checked.
    let _ = head(&answer_head, &mut out);
    let _ = socket.send_slice(&out);
    slot.body = if head_only { Body::None } else { body };
    slot.close_after = answer_head.close;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Json(Doc),
}

/// The route of a request: `Err(404)` for none, `Err(400)` for a bad query.
fn route(request: &Request<'_>) -> Result<Route, u16> {
    match request.path {
        "/" | "/index.html" => Ok(Route::Page),
        "/api/info" => Ok(Route::Json(Doc::Info)),
        "/api/sockets" => Ok(Route::Json(Doc::Sockets)),
        "/api/events" => match request::query_value(request.query, "since") {
            None => Ok(Route::Json(Doc::Events { since: 0 })),
            Some(since) => since
                .parse()
                .map(|since| Route::Json(Doc::Events { since }))
                .map_err(|_| 400),
        },
        _ => Err(404),
    }
}

/// Answers a head that could not be read or parsed, and closes.
fn refuse(
    slot: &mut Slot,
    socket: &mut tcp::Socket,
    code: u16,
    detail: &str,
    ctx: &mut Served<'_, '_, '_>,
) {
    ctx.requests.set(ctx.requests.get() + 1);
    error(slot, socket, code, detail, true, false);
    slot.reader.clear();
    slot.request_since = None;
}

/// Writes an error answer with a one-line text body.
fn error(
    slot: &mut Slot,
    socket: &mut tcp::Socket,
    code: u16,
    detail: &str,
    close: bool,
    head_only: bool,
) {
    debug!("http: {code} {detail}");
    let mut text = Head::new();
    let _ = writeln!(HeadWriter(&mut text), "{code} {}: {detail}", reason(code));
    let answer = Answer {
        code,
        content_type: "text/plain; charset=utf-8",
        length: Some(text.len()),
        chunked: false,
        gzip: false,
        close,
        vary: false,
    };
    let mut out = Head::new();
    let _ = head(&answer, &mut out);
    if room(socket) >= out.len() + text.len() {
        let _ = socket.send_slice(&out);
        if !head_only {
            let _ = socket.send_slice(&text);
        }
    }
    slot.body = Body::None;
    slot.close_after = close;
}

/// How much of a body a turn wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Everything: nothing is pending.
    All,
    /// Some; more is pending.
    Some,
    /// Nothing fitted.
    Nothing,
}

/// Writes as much of the body as fits.
fn write_body<'a>(
    slot: &mut Slot,
    handle: SocketHandle,
    sockets: &mut SocketSet<'a>,
    ctx: &Served<'_, '_, 'a>,
) -> Written {
    let mut wrote = Written::Nothing;
    loop {
        match slot.body {
            Body::None => return Written::All,
            Body::Static { data, offset } => {
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                let sent = socket.send_slice(&data[offset..]).unwrap_or(0);
                let offset = offset + sent;
                if offset >= data.len() {
                    slot.body = Body::None;
                    return Written::All;
                }
                slot.body = Body::Static { data, offset };
                return if sent > 0 { Written::Some } else { wrote };
            }
            Body::Json { cursor, chunked } => {
                let free = room(sockets.get::<tcp::Socket>(handle));
                let framing = if chunked {
                    CHUNK_FRAMING + LAST_CHUNK.len()
                } else {
                    0
                };
                if free < api::PIECE_BYTES + framing {
                    return wrote;
                }
                let limit = (free - framing).min(CHUNK_BYTES);
                let mut chunk: heapless::Vec<u8, CHUNK_BYTES> = heapless::Vec::new();
                let mut cursor = cursor;
                {
                    let json = Sources {
                        device: ctx.device,
                        sockets,
                    };
                    let mut piece = Piece::new();
                    loop {
                        let mut trial = cursor;
                        piece.clear();
                        if !trial.next_piece(&json, &mut piece) || chunk.len() + piece.len() > limit
                        {
                            break;
                        }
                        let _ = chunk.extend_from_slice(&piece);
                        cursor = trial;
                    }
                }
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                if chunked && !chunk.is_empty() {
                    let mut size: heapless::Vec<u8, CHUNK_FRAMING> = heapless::Vec::new();
                    let _ = write!(SizeWriter(&mut size), "{:x}\r\n", chunk.len());
                    let _ = socket.send_slice(&size);
                    let _ = socket.send_slice(&chunk);
                    let _ = socket.send_slice(b"\r\n");
                } else {
                    let _ = socket.send_slice(&chunk);
                }
                if cursor.done() {
                    if chunked {
                        let _ = socket.send_slice(LAST_CHUNK);
                    }
                    slot.body = Body::None;
                    return Written::All;
                }
                slot.body = Body::Json { cursor, chunked };
                if chunk.is_empty() {
                    return wrote;
                }
                wrote = Written::Some;
            }
        }
    }
}

struct SizeWriter<'s>(&'s mut heapless::Vec<u8, CHUNK_FRAMING>);

impl Write for SizeWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| core::fmt::Error)
    }
}
