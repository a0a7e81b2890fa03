//! The JSON API's documents, `/api/info`, `/api/sockets` and `/api/events`,
//! written piece by piece (an opening, one piece per key, socket or event, a
//! closing) so that a document of any length streams through a small
//! transmit buffer.

use core::fmt::Write;

use smoltcp::iface::SocketSet;
use smoltcp::socket::Socket;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::pool::socket::{socket_addr, state_name};
use crate::services::report::Device;
use crate::status::line::{LineWriter, OutLine};
use crate::wire::protocol::{self, info, IfaceRow, Mac};

/// Largest piece: one socket with two IPv6 addresses is about 330 bytes.
pub(crate) const PIECE_BYTES: usize = 512;
/// A piece being formatted.
pub(crate) type Piece = heapless::Vec<u8, PIECE_BYTES>;

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doc {
    /// `/api/info`: every `INFO` key.
    Info,
    /// `/api/sockets`: every TCP socket, then the counters.
    Sockets,
    /// `/api/events?since=N`: the kept events from `N` on.
    Events { since: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    Items,
    /// `/api/info`'s `ifconfig` list: interface `n` next (one piece each, then `]`).
    Iface(usize),
    Close,
    /// `/api/sockets`' bad-link counts: one piece per entry of [`SOCKETS_BADLINK`].
    Badlink(usize),
    Done,
}

/// Where a document's writing stands: cheap to copy, so that a piece that
/// does not fit is formatted again later instead of being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    doc: Doc,
    stage: Stage,
    next: u64,
    any: bool,
}

/// What the documents are made from, borrowed for one piece.
pub(crate) struct Sources<'c, 'r, 'a> {
    /// The whole device, every service included.
    pub device: &'c Device<'r, 'a>,
    /// Every socket.
    pub sockets: &'c SocketSet<'a>,
}

impl Sources<'_, '_, '_> {
    /// Milliseconds since start.
    fn uptime_ms(&self) -> u64 {
        self.device.view.uptime(self.device.now).total_millis()
    }
}

/// The counters `/api/sockets` ends with, by their `INFO` keys.
const SOCKETS_COUNTERS: &[&str] = &[
    info::FRAMES_RX,
    info::FRAMES_TX,
    info::CONN_ACCEPTED,
    info::CONN_REFUSED,
    info::CONN_TIMED_OUT,
    info::CONN_RESET,
    info::CONN_CLOSED,
    info::CONN_BUSY,
    info::LINES_TOO_LONG,
    info::HTTP_REQUESTS,
];

/// The bad link's counts `/api/sockets` ends with (its `badlink` object), by
/// their `INFO` keys: every key 0 on a device without a bad link. One piece
/// per direction, as both together could outgrow [`PIECE_BYTES`].
const SOCKETS_BADLINK: [&[&str]; 2] = [&info::BADLINK_RX, &info::BADLINK_TX];

/// Writes `s` as a JSON string.
struct Json<'p>(&'p mut Piece);

impl Write for Json<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| core::fmt::Error)
    }
}

fn string(out: &mut Piece, text: &str) -> core::fmt::Result {
    let mut w = Json(out);
    w.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

/// A value as INFO printed it: a number stays a number, anything else is a string.
fn value(out: &mut Piece, text: &str) -> core::fmt::Result {
    if !text.is_empty() && text.len() < 20 && text.bytes().all(|b| b.is_ascii_digit()) {
        Json(out).write_str(text)
    } else {
        string(out, text)
    }
}

/// Part `part` of `/api/sockets`' `badlink` object: its opening with the
/// first part, the closing of the object and of the document with the last.
fn badlink(part: usize, ctx: &Sources<'_, '_, '_>, out: &mut Piece) -> core::fmt::Result {
    let mut w = Json(out);
    w.write_str(if part == 0 { ",\"badlink\":{" } else { "," })?;
    for (k, name) in SOCKETS_BADLINK[part].iter().enumerate() {
        let comma = if k > 0 { "," } else { "" };
        write!(w, "{comma}\"{name}\":")?;
        ctx.device.info_value(name, &mut w)?;
    }
    if part + 1 == SOCKETS_BADLINK.len() {
        w.write_str("}}")
    } else {
        Ok(())
    }
}

/// Piece `index` of `/api/info`'s `ifconfig` list: interface `index` as an object
/// with `IFCONFIG`'s fields (the list opens before the first, closes after the last).
fn iface(index: usize, nets: &[IfaceRow<'_>], out: &mut Piece) -> core::fmt::Result {
    let mut w = Json(out);
    let Some(net) = nets.get(index) else {
        return w.write_str("]");
    };
    w.write_str(if index == 0 { ",\"ifconfig\":[" } else { "," })?;
    write!(
        w,
        "{{\"name\":\"{}\",\"mac\":\"{}\",\"mtu\":{},\"ipv4\":",
        net.name,
        Mac(net.mac),
        net.mtu
    )?;
    match net.ipv4 {
        Some(cidr) => write!(w, "\"{cidr}\"")?,
        None => w.write_str("null")?,
    }
    write!(
        w,
        ",\"ipv4_source\":\"{}\",\"ipv6\":\"{}\",\"rx_frames\":{},\"rx_bytes\":{},\
         \"rx_dropped\":{},\"tx_frames\":{},\"tx_bytes\":{},\"tx_dropped\":{}}}",
        net.ipv4_source,
        net.ipv6,
        net.rx_frames,
        net.rx_bytes,
        net.rx_dropped,
        net.tx_frames,
        net.tx_bytes,
        net.tx_dropped
    )
}

/// The name of the interface whose address `local` is (`eth0`, `eth1`, ...), if any.
fn iface_of<'n>(local: IpEndpoint, nets: &[IfaceRow<'n>]) -> Option<&'n str> {
    nets.iter()
        .find(|net| match local.addr {
            IpAddress::Ipv4(v4) => net.ipv4.is_some_and(|cidr| cidr.address() == v4),
            IpAddress::Ipv6(v6) => net.ipv6.address() == v6,
        })
        .map(|net| net.name)
}

impl Cursor {
    /// The start of `doc`.
    pub fn new(doc: Doc) -> Self {
        let next = match doc {
            Doc::Events { since } => since,
            _ => 0,
        };
        Cursor {
            doc,
            stage: Stage::Open,
            next,
            any: false,
        }
    }

    /// True once the closing piece is written.
    pub fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Formats the next piece into `out` and moves past it; false when the
    /// document is complete (nothing written).
    pub fn next_piece(&mut self, ctx: &Sources<'_, '_, '_>, out: &mut Piece) -> bool {
        loop {
            let written = match self.stage {
                Stage::Done => return false,
                Stage::Open => {
                    self.stage = Stage::Items;
                    self.open(ctx, out)
                }
                Stage::Close => {
                    self.stage = match self.doc {
                        Doc::Sockets => Stage::Badlink(0),
                        _ => Stage::Done,
                    };
                    self.close(ctx, out)
                }
                Stage::Badlink(part) => {
                    self.stage = if part + 1 < SOCKETS_BADLINK.len() {
                        Stage::Badlink(part + 1)
                    } else {
                        Stage::Done
                    };
                    badlink(part, ctx, out)
                }
                Stage::Items => match self.item(ctx, out) {
                    Some(result) => result,
                    None => {
                        self.stage = match self.doc {
                            Doc::Info => Stage::Iface(0),
                            _ => Stage::Close,
                        };
                        continue;
                    }
                },
                Stage::Iface(index) => {
                    let nets = ctx.device.view.nets;
                    self.stage = if index < nets.len() {
                        Stage::Iface(index + 1)
                    } else {
                        Stage::Close
                    };
                    iface(index, nets, out)
                }
            };
            // A piece that overflowed is cut short: the document says so
            // rather than break the JSON (never happens by the sizes above).
            if written.is_err() {
                out.clear();
                let _ = out.extend_from_slice(b"null");
            }
            return true;
        }
    }

    fn open(&self, ctx: &Sources<'_, '_, '_>, out: &mut Piece) -> core::fmt::Result {
        let mut w = Json(out);
        match self.doc {
            Doc::Info => w.write_str("{"),
            Doc::Sockets => write!(w, "{{\"uptime_ms\":{},\"sockets\":[", ctx.uptime_ms()),
            Doc::Events { .. } => write!(
                w,
                "{{\"uptime_ms\":{},\"next\":{},\"events\":[",
                ctx.uptime_ms(),
                ctx.device.view.events.next_seq()
            ),
        }
    }

    fn close(&self, ctx: &Sources<'_, '_, '_>, out: &mut Piece) -> core::fmt::Result {
        match self.doc {
            Doc::Info => Json(out).write_str("}"),
            Doc::Events { .. } => Json(out).write_str("]}"),
            Doc::Sockets => {
                let device = ctx.device;
                let mut w = Json(out);
                write!(w, "],\"{}\":", info::LAB_IN_USE)?;
                device.info_value(info::LAB_IN_USE, &mut w)?;
                write!(w, ",\"{}\":", info::LAB_QUEUED)?;
                device.info_value(info::LAB_QUEUED, &mut w)?;
                w.write_str(",\"counters\":{")?;
                for (k, name) in SOCKETS_COUNTERS.iter().enumerate() {
                    let comma = if k > 0 { "," } else { "" };
                    write!(w, "{comma}\"{name}\":")?;
                    device.info_value(name, &mut w)?;
                }
                // The document's own `}` closes the last bad-link piece.
                w.write_str("}")
            }
        }
    }

    /// The next item, or `None` after the last.
    fn item(&mut self, ctx: &Sources<'_, '_, '_>, out: &mut Piece) -> Option<core::fmt::Result> {
        let comma = if self.any { "," } else { "" };
        let result = match self.doc {
            Doc::Info => {
                let mut line = OutLine::new();
                if !ctx
                    .device
                    .info_line(self.next as usize, &mut LineWriter(&mut line))
                {
                    return None;
                }
                self.next += 1;
                let text = core::str::from_utf8(&line).unwrap_or("");
                let (key, val) = protocol::parse_info(text).unwrap_or((text, ""));
                let mut entry = || {
                    Json(out).write_str(comma)?;
                    string(out, key)?;
                    Json(out).write_str(":")?;
                    value(out, val)
                };
                entry()
            }
            Doc::Events { .. } => {
                let event = ctx.device.view.events.first_from(self.next)?;
                self.next = event.seq + 1;
                let result = write!(
                    Json(out),
                    "{comma}{{\"seq\":{},\"t_ms\":{},\"socket\":{},\"port\":{},\
                     \"service\":\"{}\",\"from\":\"{}\",\"to\":\"{}\",\"remote\":",
                    event.seq,
                    event.at_ms,
                    event.socket,
                    event.port,
                    ctx.device.service_name(event.port),
                    state_name(event.from),
                    state_name(event.to),
                );
                result.and_then(|_| match event.remote {
                    Some(remote) => write!(Json(out), "\"{remote}\"}}"),
                    None => Json(out).write_str("null}"),
                })
            }
            Doc::Sockets => {
                let index = self.next as usize;
                let (handle, socket) = ctx
                    .sockets
                    .iter()
                    .filter_map(|(h, s)| match s {
                        Socket::Tcp(t) => Some((h, t)),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
                    .nth(index)?;
                self.next += 1;
                let state = socket.state();
                let port = socket
                    .local_endpoint()
                    .map(|e| e.port)
                    .unwrap_or(socket.listen_endpoint().port);
                let (role, slot, position) = match ctx.device.role(handle) {
                    Some(role) => (role.name, role.slot, role.position),
                    None => ("service", None, None),
                };
                let mut w = Json(out);
                let mut result = write!(
                    w,
                    "{comma}{{\"id\":{index},\"service\":\"{}\",\"port\":{port},\"role\":\"{role}\",\
                     \"state\":\"{}\",\"state_ms\":{},\"rx_queued\":{},\"rx_capacity\":{},\
                     \"tx_queued\":{},\"tx_capacity\":{}",
                    ctx.device.service_name(port),
                    state_name(state),
                    ctx.device
                        .view
                        .events
                        .time_in_state(index, ctx.uptime_ms())
                        .unwrap_or(0),
                    socket.recv_queue(),
                    socket.recv_capacity(),
                    socket.send_queue(),
                    socket.send_capacity(),
                );
                if let Some(slot) = slot {
                    result = result.and_then(|_| write!(w, ",\"slot\":{slot}"));
                }
                if let Some(position) = position {
                    result = result.and_then(|_| write!(w, ",\"position\":{position}"));
                }
                if let Some(local) = socket.local_endpoint() {
                    result =
                        result.and_then(|_| write!(w, ",\"local\":\"{}\"", socket_addr(local)));
                    if let Some(iface) = iface_of(local, ctx.device.view.nets) {
                        result = result.and_then(|_| write!(w, ",\"iface\":\"{iface}\""));
                    }
                }
                if let Some(remote) = socket.remote_endpoint() {
                    result =
                        result.and_then(|_| write!(w, ",\"remote\":\"{}\"", socket_addr(remote)));
                }
                result.and_then(|_| w.write_str("}"))
            }
        };
        self.any = true;
        Some(result)
    }
}
