//! The wire protocol, written once: service ports, the lab's command words and
//! response formats, their parsers, and RFC 864's chargen pattern.
//!
//! The device formats with these definitions and the host tools parse with them,
//! so the two sides cannot drift apart. Everything here is `no_std` and
//! allocation-free: parsers borrow from the line they are given.

use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;

use smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};

/// Product name, the first half of the `HELLO` banner's `socklab/<version>`.
pub const PRODUCT: &str = "socklab";
/// Version announced in `HELLO`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The lab service: the line protocol of this module.
pub const LAB_PORT: u16 = 6666;
/// RFC 862 echo: every byte received is sent back.
pub const ECHO_PORT: u16 = 7;
/// RFC 863 discard: every byte received is dropped.
pub const DISCARD_PORT: u16 = 9;
/// RFC 864 character generator: the rotating pattern until the client closes.
pub const CHARGEN_PORT: u16 = 19;
/// iperf3 server: esnet iperf3's control protocol and TCP streams ([`iperf3`]).
pub const IPERF3_PORT: u16 = 5201;
/// iperf2 server: a sink for the `iperf` 2.x client's TCP test ([`iperf2`]).
pub const IPERF2_PORT: u16 = 5001;

/// The management port: its own few sockets, apart from the lab's slots and
/// backlog, answer the read-only commands (`WHO`, `NETSTAT`, `INFO`,
/// `EVENTS`, and `QUIT`), so that a full device can be inspected. 6667 stays
/// closed (the tests' refused port).
pub const MGMT_PORT: u16 = 6668;

/// The HTTP server: the device's status page and its JSON API.
pub const HTTP_PORT: u16 = 80;

/// RFC 867 daytime, TCP and UDP: one [`Daytime`] line.
pub const DAYTIME_PORT: u16 = 13;

/// Longest lab line accepted, in bytes, without its terminator.
pub const MAX_LINE: usize = 256;
/// Longest line the device ever sends (a `FROM` line with an IPv6 peer and a
/// full-length text is the longest), without its LF.
pub const MAX_RESPONSE_LINE: usize = MAX_LINE + 64;

/// The first word of the banner a client receives on accept ([`Hello`]).
pub const HELLO: &str = "HELLO";
/// Command word: `ECHO <text>`, answered with `<text>`.
pub const ECHO: &str = "ECHO";
/// Command word: `SAY <text>`, answered with [`OK`]; [`FROM`] to the others.
pub const SAY: &str = "SAY";
/// Command word: the clients served and waiting, then [`END`].
pub const WHO: &str = "WHO";
/// Command word: every socket of the device, then [`END`].
pub const NETSTAT: &str = "NETSTAT";
/// Command word: the [`info`] table's `key=value` lines, then [`END`].
pub const INFO: &str = "INFO";
/// Command word: each network interface, one [`IfaceRow`] each, then [`END`].
pub const IFCONFIG: &str = "IFCONFIG";
/// Command word: [`BYE`], then the device closes.
pub const QUIT: &str = "QUIT";
/// The first word of a line another client said with `SAY` ([`From`]).
pub const FROM: &str = "FROM";
/// The first word of a backlog row of `WHO` ([`WaitRow`]).
pub const WAIT: &str = "wait";
/// The first word of an `EVENTS` row ([`EventRow`]).
pub const EVENT: &str = "event";
/// The first word of every error answer (`ERR <what>`).
pub const ERR: &str = "ERR";

/// Reply to a successful `SAY`.
pub const OK: &str = "OK";
/// Terminates multi-line replies (`WHO`, `NETSTAT`, `INFO`).
pub const END: &str = "END";
/// Reply to `QUIT`, the last line before the device closes.
pub const BYE: &str = "BYE";
/// Reply to a command word the device does not know.
pub const ERR_UNKNOWN: &str = "ERR unknown command";
/// Reply to a line over [`MAX_LINE`] bytes; the rest of that line is discarded.
pub const ERR_TOO_LONG: &str = "ERR line too long";
/// Said to a client, before closing, when every slot is busy and the backlog
/// policy is `busy`.
pub const ERR_BUSY: &str = "ERR busy";
/// Reply on the management port to `ECHO` and `SAY`: they belong to the lab.
pub const ERR_READ_ONLY: &str =
    "ERR read-only management port: WHO NETSTAT INFO IFCONFIG EVENTS QUIT; chat on port 6666";
/// Said before the device closes an idle client.
pub const BYE_IDLE: &str = "BYE idle";

/// The command word of [`Command::Events`].
pub const EVENTS: &str = "EVENTS";

/// True for a line that starts with the word [`ERR`]: the device refused
/// the command.
pub fn is_err(line: &str) -> bool {
    first_word_is(line, ERR)
}

/// True for a [`BYE`] line (`BYE`, [`BYE_IDLE`]): the device is closing.
pub fn is_bye(line: &str) -> bool {
    first_word_is(line, BYE)
}

fn first_word_is(line: &str, word: &str) -> bool {
    line.split_ascii_whitespace().next() == Some(word)
}

/// TCP states as RFC 793 names them: what `NETSTAT` and `EVENTS` print.
pub mod state {
    /// No connection.
    pub const CLOSED: &str = "CLOSED";
    /// Waiting for a SYN.
    pub const LISTEN: &str = "LISTEN";
    /// SYN sent, waiting for the SYN-ACK.
    pub const SYN_SENT: &str = "SYN-SENT";
    /// SYN received and answered, waiting for the ACK.
    pub const SYN_RECEIVED: &str = "SYN-RECEIVED";
    /// The connection is open.
    pub const ESTABLISHED: &str = "ESTABLISHED";
    /// FIN sent, not yet acknowledged.
    pub const FIN_WAIT_1: &str = "FIN-WAIT-1";
    /// FIN acknowledged, waiting for the peer's.
    pub const FIN_WAIT_2: &str = "FIN-WAIT-2";
    /// The peer's FIN received; ours not yet sent.
    pub const CLOSE_WAIT: &str = "CLOSE-WAIT";
    /// Both FINs crossed.
    pub const CLOSING: &str = "CLOSING";
    /// Our FIN sent after the peer's, not yet acknowledged.
    pub const LAST_ACK: &str = "LAST-ACK";
    /// Closed both ways; waiting for stray segments to die out.
    pub const TIME_WAIT: &str = "TIME-WAIT";
}

/// One lab command, parsed from a line without its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `ECHO <text>`: the device answers `<text>`.
    Echo(&'a [u8]),
    /// `SAY <text>`: `OK` to the sender, `FROM <addr> <text>` to the others.
    Say(&'a [u8]),
    /// `WHO`: the connected lab clients, then `END`.
    Who,
    /// `NETSTAT`: every socket of the device, then `END`.
    Netstat,
    /// `INFO`: `key=value` lines, then `END`.
    Info,
    /// `IFCONFIG`: one [`IfaceRow`] per network interface, then `END`.
    Ifconfig,
    /// `EVENTS [since]`: the recent connection state changes with a
    /// sequence number at or after `since` (0 if absent), one [`EventRow`]
    /// each, then `END`.
    Events(u64),
    /// `QUIT`: `BYE`, then the device closes.
    Quit,
    /// An empty line: no answer.
    Empty,
    /// Anything else: `ERR unknown command`.
    Unknown,
}

impl<'a> Command<'a> {
    /// Parses one line (LF already removed; a trailing CR is ignored here).
    /// Command words are case-insensitive; the text of `ECHO`/`SAY` is
    /// everything after the first space, verbatim.
    pub fn parse(line: &'a [u8]) -> Self {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Command::Empty;
        }
        let (word, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        match rest {
            _ if is(ECHO) => Command::Echo(rest.unwrap_or(b"")),
            _ if is(SAY) => Command::Say(rest.unwrap_or(b"")),
            None if is(WHO) => Command::Who,
            None if is(NETSTAT) => Command::Netstat,
            None if is(INFO) => Command::Info,
            None if is(IFCONFIG) => Command::Ifconfig,
            None if is(QUIT) => Command::Quit,
            None if is(EVENTS) => Command::Events(0),
            Some(since) if is(EVENTS) => match since.iter().all(u8::is_ascii_digit) {
                true => core::str::from_utf8(since)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map_or(Command::Unknown, Command::Events),
                false => Command::Unknown,
            },
            _ => Command::Unknown,
        }
    }
}

/// Why a device line could not be parsed by the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The line does not start with the expected word.
    WrongKind,
    /// A field is missing.
    Missing(&'static str),
    /// A field is present but malformed.
    Invalid(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::WrongKind => write!(f, "unexpected kind of line"),
            ParseError::Missing(field) => write!(f, "missing field `{field}`"),
            ParseError::Invalid(field) => write!(f, "invalid field `{field}`"),
        }
    }
}

impl core::error::Error for ParseError {}

fn field<T: FromStr>(value: Option<&str>, name: &'static str) -> Result<T, ParseError> {
    value
        .ok_or(ParseError::Missing(name))?
        .parse()
        .map_err(|_| ParseError::Invalid(name))
}

fn keyed<'a>(word: Option<&'a str>, key: &'static str) -> Result<&'a str, ParseError> {
    word.ok_or(ParseError::Missing(key))?
        .strip_prefix(key)
        .and_then(|v| v.strip_prefix('='))
        .ok_or(ParseError::Missing(key))
}

/// The key of the lab slot in a [`Hello`].
pub const SLOT: &str = "slot";
/// The key of the management socket in a [`Hello`] on [`MGMT_PORT`].
pub const MGMT: &str = "mgmt";

/// The banner a lab client receives on accept:
/// `HELLO socklab/<version> slot=<n> peer=<client addr> local=<device addr>`;
/// on the management port `mgmt=<n>` instead of `slot=<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// The device's version string.
    pub version: &'a str,
    /// The pool slot that serves this client (the management socket's
    /// number when `management`).
    pub slot: usize,
    /// Served by a management socket ([`MGMT_PORT`]), not a lab slot.
    pub management: bool,
    /// The client's address as the device sees it.
    pub peer: SocketAddr,
    /// The device's address of this connection.
    pub local: SocketAddr,
}

impl<'a> Hello<'a> {
    /// Parses a `HELLO` line.
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(HELLO) {
            return Err(ParseError::WrongKind);
        }
        let version = words
            .next()
            .and_then(|w| w.strip_prefix(PRODUCT))
            .and_then(|w| w.strip_prefix('/'))
            .ok_or(ParseError::Missing("version"))?;
        let seat = words.next();
        let (slot, management) = match keyed(seat, MGMT) {
            Ok(n) => (n, true),
            Err(_) => (keyed(seat, SLOT)?, false),
        };
        Ok(Hello {
            version,
            slot: field(Some(slot), SLOT)?,
            management,
            peer: field(Some(keyed(words.next(), "peer")?), "peer")?,
            local: field(Some(keyed(words.next(), "local")?), "local")?,
        })
    }
}

impl fmt::Display for Hello<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{HELLO} {PRODUCT}/{} {}={} peer={} local={}",
            self.version,
            if self.management { MGMT } else { SLOT },
            self.slot,
            self.peer,
            self.local
        )
    }
}

/// A `FROM <sender addr> <text>` line, delivered to the other lab clients on `SAY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct From<'a> {
    /// Who said it.
    pub sender: SocketAddr,
    /// What was said.
    pub text: &'a str,
}

impl<'a> From<'a> {
    /// Parses a `FROM` line.
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let rest = line
            .strip_prefix(FROM)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(ParseError::WrongKind)?;
        let (addr, text) = rest.split_once(' ').unwrap_or((rest, ""));
        Ok(From {
            sender: field(Some(addr), "sender")?,
            text,
        })
    }
}

impl fmt::Display for From<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FROM} {} {}", self.sender, self.text)
    }
}

/// One `WHO` row: `<slot> <client addr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhoRow {
    /// The pool slot.
    pub slot: usize,
    /// The connected client.
    pub peer: SocketAddr,
}

impl WhoRow {
    /// Parses a `WHO` row (not the closing `END`).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        let row = WhoRow {
            slot: field(words.next(), "slot")?,
            peer: field(words.next(), "peer")?,
        };
        match words.next() {
            None => Ok(row),
            Some(_) => Err(ParseError::Invalid("peer")),
        }
    }
}

impl fmt::Display for WhoRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.slot, self.peer)
    }
}

/// The daytime line (RFC 867 leaves its syntax free): the board and its
/// uptime, `<board> up <days>d <hh>:<mm>:<ss>.<mmm> (<ms> ms)`, sent with
/// CR LF. No board has a wall clock to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daytime<'a> {
    /// The board, as `INFO` names it.
    pub board: &'a str,
    /// Milliseconds since the application started.
    pub uptime_ms: u64,
}

impl<'a> Daytime<'a> {
    /// Parses a daytime line (a trailing CR is ignored).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (board, rest) = line.split_once(" up ").ok_or(ParseError::WrongKind)?;
        let ms = rest
            .rsplit_once('(')
            .and_then(|(_, ms)| ms.strip_suffix(" ms)"))
            .ok_or(ParseError::Missing("uptime_ms"))?;
        let daytime = Daytime {
            board,
            uptime_ms: field(Some(ms), "uptime_ms")?,
        };
        let mut again = heapless::String::<MAX_RESPONSE_LINE>::new();
        match fmt::write(&mut again, format_args!("{daytime}")) {
            Ok(()) if again == line => Ok(daytime),
            _ => Err(ParseError::Invalid("uptime")),
        }
    }
}

impl fmt::Display for Daytime<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.uptime_ms;
        let (s, ms_part) = (ms / 1000, ms % 1000);
        write!(
            f,
            "{} up {}d {:02}:{:02}:{:02}.{ms_part:03} ({ms} ms)",
            self.board,
            s / 86_400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60
        )
    }
}

/// A `WHO` row for a client waiting in the backlog: `wait <position> <addr>`
/// (position 1 is served next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitRow {
    /// Place in the queue, from 1.
    pub position: usize,
    /// The waiting client.
    pub peer: SocketAddr,
}

impl WaitRow {
    /// Parses a backlog row of `WHO`.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(WAIT) {
            return Err(ParseError::WrongKind);
        }
        let row = WaitRow {
            position: field(words.next(), "position")?,
            peer: field(words.next(), "peer")?,
        };
        match words.next() {
            None => Ok(row),
            Some(_) => Err(ParseError::Invalid("peer")),
        }
    }
}

impl fmt::Display for WaitRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{WAIT} {} {}", self.position, self.peer)
    }
}

/// One side of a `NETSTAT` row: an address, or `*:<port>` / `*:*` for a
/// listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockName {
    /// A bound address.
    Addr(SocketAddr),
    /// Any address; the port if one is bound.
    Any(Option<u16>),
}

impl FromStr for SockName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.strip_prefix("*:") {
            Some("*") => Ok(SockName::Any(None)),
            Some(port) => Ok(SockName::Any(Some(
                port.parse().map_err(|_| ParseError::Invalid("port"))?,
            ))),
            None => s
                .parse()
                .map(SockName::Addr)
                .map_err(|_| ParseError::Invalid("address")),
        }
    }
}

impl fmt::Display for SockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockName::Addr(addr) => write!(f, "{addr}"),
            SockName::Any(Some(port)) => write!(f, "*:{port}"),
            SockName::Any(None) => write!(f, "*:*"),
        }
    }
}

impl SockName {
    /// The port, if there is one.
    pub fn port(&self) -> Option<u16> {
        match self {
            SockName::Addr(addr) => Some(addr.port()),
            SockName::Any(port) => *port,
        }
    }
}

/// The first word of a TCP socket's `NETSTAT` row.
pub const TCP: &str = "tcp";
/// The first word of a UDP socket's `NETSTAT` row.
pub const UDP: &str = "udp";
/// The state word of a UDP row: UDP has no connection and no state.
pub const NO_STATE: &str = "-";

/// One `NETSTAT` row: `tcp <local> <remote> <STATE> <rx_queued> <tx_queued>`,
/// or `udp <local> *:* - <rx_queued> <tx_queued>` for a UDP socket (queues
/// in payload bytes of the datagrams waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetstatRow<'a> {
    /// [`TCP`] or [`UDP`].
    pub proto: &'a str,
    /// The device's side.
    pub local: SockName,
    /// The peer's side (`*:*` while listening).
    pub remote: SockName,
    /// The TCP state as RFC 793 names it, upper case with dashes
    /// (`LISTEN`, `SYN-RECEIVED`, `ESTABLISHED`, `CLOSE-WAIT`, ...).
    pub state: &'a str,
    /// Bytes received and not yet read by the service.
    pub rx_queued: usize,
    /// Bytes queued for sending and not yet acknowledged.
    pub tx_queued: usize,
}

impl<'a> NetstatRow<'a> {
    /// Parses a `NETSTAT` row (not the closing `END`).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        let proto = match words.next() {
            Some(TCP) => TCP,
            Some(UDP) => UDP,
            _ => return Err(ParseError::WrongKind),
        };
        let row = NetstatRow {
            proto,
            local: field(words.next(), "local")?,
            remote: field(words.next(), "remote")?,
            state: words.next().ok_or(ParseError::Missing("state"))?,
            rx_queued: field(words.next(), "rx_queued")?,
            tx_queued: field(words.next(), "tx_queued")?,
        };
        match words.next() {
            None => Ok(row),
            Some(_) => Err(ParseError::Invalid("tx_queued")),
        }
    }
}

impl fmt::Display for NetstatRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.proto, self.local, self.remote, self.state, self.rx_queued, self.tx_queued
        )
    }
}

/// An Ethernet address as the device writes it everywhere (`INFO`, `IFCONFIG`,
/// the JSON API, its messages): six lower-case hex bytes joined by `:`
/// (smoltcp's own `Display` joins them with `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub EthernetAddress);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0 .0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// The names of the interfaces `IFCONFIG` lists, by index.
pub const IFACE_NAMES: [&str; 2] = ["eth0", "eth1"];

/// The first word of an `IFCONFIG` row ([`IfaceRow`]).
pub const IFACE: &str = "iface";

/// One `IFCONFIG` row: `iface <name> <mac> <mtu> <ipv4> <ipv4_source> <ipv6>
/// <rx_frames> <rx_bytes> <rx_dropped> <tx_frames> <tx_bytes> <tx_dropped>`,
/// e.g. `iface eth0 02:00:00:00:00:01 1500 192.168.69.1/24 static fdaa::1/64
/// 12 1340 0 11 1202 0` (`none` for an IPv4 address the device has not got).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceRow<'a> {
    /// `eth0`, `eth1`, ...: the board's NIC of that index.
    pub name: &'a str,
    /// Ethernet address.
    pub mac: EthernetAddress,
    /// IP MTU in bytes.
    pub mtu: usize,
    /// The IPv4 address in use, if any.
    pub ipv4: Option<Ipv4Cidr>,
    /// Where it came from: `static`, `dhcp` or `dhcp-fallback`.
    pub ipv4_source: &'a str,
    /// The IPv6 address.
    pub ipv6: Ipv6Cidr,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received, Ethernet headers included.
    pub rx_bytes: u64,
    /// Frames received for another unicast Ethernet address (dropped).
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent, Ethernet headers included.
    pub tx_bytes: u64,
    /// Sends the device had no buffer for (the segment waits for the next poll).
    pub tx_dropped: u64,
}

impl<'a> IfaceRow<'a> {
    /// Parses an `IFCONFIG` row (not the closing `END`).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(IFACE) {
            return Err(ParseError::WrongKind);
        }
        let row = IfaceRow {
            name: words.next().ok_or(ParseError::Missing("name"))?,
            mac: field(words.next(), "mac")?,
            mtu: field(words.next(), "mtu")?,
            ipv4: match words.next() {
                Some(info::NONE) => None,
                word => Some(field(word, "ipv4")?),
            },
            ipv4_source: words.next().ok_or(ParseError::Missing("ipv4_source"))?,
            ipv6: field(words.next(), "ipv6")?,
            rx_frames: field(words.next(), "rx_frames")?,
            rx_bytes: field(words.next(), "rx_bytes")?,
            rx_dropped: field(words.next(), "rx_dropped")?,
            tx_frames: field(words.next(), "tx_frames")?,
            tx_bytes: field(words.next(), "tx_bytes")?,
            tx_dropped: field(words.next(), "tx_dropped")?,
        };
        match words.next() {
            None => Ok(row),
            Some(_) => Err(ParseError::Invalid("tx_dropped")),
        }
    }
}

impl fmt::Display for IfaceRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{IFACE} {} {} {} ", self.name, Mac(self.mac), self.mtu)?;
        match self.ipv4 {
            Some(cidr) => write!(f, "{cidr}")?,
            None => f.write_str(info::NONE)?,
        }
        write!(
            f,
            " {} {} {} {} {} {} {} {}",
            self.ipv4_source,
            self.ipv6,
            self.rx_frames,
            self.rx_bytes,
            self.rx_dropped,
            self.tx_frames,
            self.tx_bytes,
            self.tx_dropped
        )
    }
}

/// One `EVENTS` row: `event <seq> <ms> <socket> <port> <FROM> <TO> <peer>`,
/// the peer as `-` when the socket has none (back in LISTEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRow<'a> {
    /// Sequence number since boot.
    pub seq: u64,
    /// Milliseconds since the device started.
    pub at_ms: u64,
    /// The socket's position among the device's TCP sockets (as in `/api/sockets`).
    pub socket: usize,
    /// The device port it serves.
    pub port: u16,
    /// State before (RFC 793 name, as `NETSTAT` prints it).
    pub from: &'a str,
    /// State after.
    pub to: &'a str,
    /// The peer, if the socket has one.
    pub peer: Option<SocketAddr>,
}

impl<'a> EventRow<'a> {
    /// Parses an `EVENTS` row (not the closing `END`).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(EVENT) {
            return Err(ParseError::WrongKind);
        }
        let row = EventRow {
            seq: field(words.next(), "seq")?,
            at_ms: field(words.next(), "ms")?,
            socket: field(words.next(), "socket")?,
            port: field(words.next(), "port")?,
            from: words.next().ok_or(ParseError::Missing("from"))?,
            to: words.next().ok_or(ParseError::Missing("to"))?,
            peer: match words.next() {
                Some("-") => None,
                peer => Some(field(peer, "peer")?),
            },
        };
        match words.next() {
            None => Ok(row),
            Some(_) => Err(ParseError::Invalid("peer")),
        }
    }
}

impl fmt::Display for EventRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{EVENT} {} {} {} {} {} {} ",
            self.seq, self.at_ms, self.socket, self.port, self.from, self.to
        )?;
        match self.peer {
            Some(peer) => write!(f, "{peer}"),
            None => write!(f, "-"),
        }
    }
}

/// Parses one `INFO` line into its key and value.
pub fn parse_info(line: &str) -> Result<(&str, &str), ParseError> {
    match line.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains(' ') => Ok((key, value)),
        _ => Err(ParseError::WrongKind),
    }
}

/// The `INFO` keys: every key the device reports, with what its value
/// means. The device's report and the host's parser both go by these names;
/// the order `INFO` lists them in is the service table's
/// (`socklab_app::services::INFO_KEYS`).
pub mod info {
    /// The value of a key that has none (`ipv4=none` before a DHCP lease
    /// on a board without a static address).
    pub const NONE: &str = "none";

    /// Board name (`linux-tap`, `mps2-an385`).
    pub const BOARD: &str = "board";
    /// Firmware version.
    pub const VERSION: &str = "version";
    /// Ethernet address.
    pub const MAC: &str = "mac";
    /// IPv4 address with prefix, e.g. `192.168.69.1/24`.
    pub const IPV4: &str = "ipv4";
    /// IPv6 address with prefix.
    pub const IPV6: &str = "ipv6";
    /// `static`, `dhcp` (lease held) or `dhcp-fallback` (static while asking).
    pub const IPV4_SOURCE: &str = "ipv4_source";
    /// Interface MTU in bytes.
    pub const MTU: &str = "mtu";
    /// Network interfaces in use (`IFCONFIG` lists each; `mac`, `ipv4`,
    /// `ipv6`, `ipv4_source` and `mtu` are the first one's).
    pub const INTERFACES: &str = "interfaces";
    /// The most network interfaces this board drives (a board constant).
    pub const INTERFACES_MAX: &str = "interfaces_max";
    /// Milliseconds since the application started.
    pub const UPTIME_MS: &str = "uptime_ms";
    /// Size of the lab pool.
    pub const LAB_SLOTS: &str = "lab_slots";
    /// Lab slots with a client.
    pub const LAB_IN_USE: &str = "lab_in_use";
    /// Connections the backlog can hold while every slot is busy.
    pub const LAB_BACKLOG: &str = "lab_backlog";
    /// Clients waiting in the backlog now.
    pub const LAB_QUEUED: &str = "lab_queued";
    /// `wait`, `refuse` or `busy`: what a client meets when every slot is busy.
    pub const BACKLOG_POLICY: &str = "backlog_policy";
    /// Receive buffer of each lab slot, bytes.
    pub const LAB_RX_BUFFER: &str = "lab_rx_buffer";
    /// Transmit buffer of each lab slot, bytes.
    pub const LAB_TX_BUFFER: &str = "lab_tx_buffer";
    /// Sockets per bulk service (echo, discard, chargen each).
    pub const BULK_SLOTS: &str = "bulk_slots";
    /// Receive buffer of each bulk socket, bytes.
    pub const BULK_RX_BUFFER: &str = "bulk_rx_buffer";
    /// Transmit buffer of each bulk socket, bytes.
    pub const BULK_TX_BUFFER: &str = "bulk_tx_buffer";
    /// Sockets of every service of the table, TCP and UDP: the rows
    /// `NETSTAT` lists when no close is finishing. The closing pool's
    /// sockets are counted apart ([`LAB_CLOSING`], [`BULK_CLOSING`]).
    pub const SOCKETS: &str = "sockets";
    /// Socket buffer bytes in all.
    pub const BUFFER_BYTES: &str = "buffer_bytes";
    /// Idle time after which a lab client gets `BYE idle` and is closed, ms.
    pub const IDLE_TIMEOUT_MS: &str = "idle_timeout_ms";
    /// Time a client may leave its output unread before it is disconnected, ms.
    pub const SLOW_READER_TIMEOUT_MS: &str = "slow_reader_timeout_ms";
    /// Time a handshake may take before its slot is freed, ms.
    pub const HANDSHAKE_TIMEOUT_MS: &str = "handshake_timeout_ms";
    /// Frames received from the device.
    pub const FRAMES_RX: &str = "frames_rx";
    /// Frames sent to the device.
    pub const FRAMES_TX: &str = "frames_tx";
    /// Connections accepted on any service.
    pub const CONN_ACCEPTED: &str = "conn_accepted";
    /// Connection attempts answered with RST (nothing listening or pool full).
    pub const CONN_REFUSED: &str = "conn_refused";
    /// Connections the device ended because a timeout fired.
    pub const CONN_TIMED_OUT: &str = "conn_timed_out";
    /// Connections that ended without an orderly close (peer reset, stack timeout).
    pub const CONN_RESET: &str = "conn_reset";
    /// Connections that ended with an orderly close.
    pub const CONN_CLOSED: &str = "conn_closed";
    /// Clients told `ERR busy`.
    pub const CONN_BUSY: &str = "conn_busy";
    /// Lab lines longer than the limit.
    pub const LINES_TOO_LONG: &str = "lines_too_long";
    /// After `BYE`, a close unfinished this long is aborted, ms.
    pub const CLOSING_TIMEOUT_MS: &str = "closing_timeout_ms";
    /// Keep-alive probe interval, ms.
    pub const KEEP_ALIVE_MS: &str = "keep_alive_ms";
    /// A peer silent this long (no ACK of data or keep-alive) is dropped, ms.
    pub const DEAD_PEER_MS: &str = "dead_peer_ms";
    /// The board's checksum and TCP segmentation offloads: `none` (the board
    /// has none), `on`, `off` (asked), `off-kernel` (the kernel refused them),
    /// `off-bad-link` or `off-rate-limit` (a layer that works per frame).
    pub const OFFLOAD: &str = "offload";
    /// Why the device booted: `power-on`, `watchdog`, `software-reset` or
    /// `fault` (`none` on a board that keeps no boot record).
    pub const BOOT_REASON: &str = "boot_reason";
    /// Boots since power-on, this one included, kept in RAM the runtime
    /// does not clear.
    pub const BOOT_COUNT: &str = "boot_count";
    /// The stack's high-water mark: bytes of it ever written since boot.
    pub const STACK_USED: &str = "stack_used";
    /// Bytes reserved for the stack.
    pub const STACK_RESERVED: &str = "stack_reserved";
    /// The watchdog's timeout, ms: a serve loop stuck this long resets the
    /// device.
    pub const WATCHDOG_MS: &str = "watchdog_ms";
    /// RAM of the lab and the management port, bytes: socket buffers,
    /// socket slots, lab states. The `ram_*` pools ([`RAM_POOLS`]) are
    /// `none` on a board that does not record them.
    pub const RAM_LAB: &str = "ram_lab";
    /// RAM of echo, discard and chargen over TCP, bytes.
    pub const RAM_BULK: &str = "ram_bulk";
    /// RAM of the iperf3 server, bytes (0 when it is not built).
    pub const RAM_IPERF3: &str = "ram_iperf3";
    /// RAM of the iperf2 server, bytes (0 when it is not built).
    pub const RAM_IPERF2: &str = "ram_iperf2";
    /// RAM of the HTTP server, bytes (0 when it is not built).
    pub const RAM_HTTP: &str = "ram_http";
    /// RAM of the UDP services, datagram entries included, bytes (0 when
    /// they are not built).
    pub const RAM_UDP: &str = "ram_udp";
    /// RAM of the daytime service, bytes (0 when it is not built).
    pub const RAM_DAYTIME: &str = "ram_daytime";
    /// RAM of the closing pool, bytes: its sockets' buffers, slots and entries.
    pub const RAM_CLOSING: &str = "ram_closing";
    /// RAM of the DHCP client's socket slot, bytes.
    pub const RAM_DHCP: &str = "ram_dhcp";
    /// RAM of the NIC's frame buffers where they are statics, bytes.
    pub const RAM_NIC: &str = "ram_nic";
    /// RAM the NIC reaches by DMA (virtqueues), bytes.
    pub const RAM_DMA: &str = "ram_dma";
    /// RAM of the bad link's hold buffers, bytes (reserved with or without
    /// a bad link).
    pub const RAM_BAD_LINK: &str = "ram_bad_link";
    /// RAM of the board's exception stack, apart from the program's, bytes.
    pub const RAM_HANDLER_STACK: &str = "ram_handler_stack";
    /// RAM of the program's stack, its whole reservation, bytes: the
    /// application's own state lives in it ([`RAM_APP`]).
    pub const RAM_STACK: &str = "ram_stack";
    /// Every `ram_*` pool added up, bytes: what the image takes in RAM, the
    /// stack included.
    pub const RAM_TOTAL: &str = "ram_total";
    /// The application's own state, bytes (`App`: the interface, the socket
    /// set, the services, the counters, the event ring and the IP fragment
    /// buffers), held on the stack of the board's `main`: part of
    /// [`RAM_STACK`], not a pool of its own.
    pub const RAM_APP: &str = "ram_app";
    /// The event ring and the socket states it follows, bytes: part of
    /// [`RAM_APP`].
    pub const RAM_EVENT_RING: &str = "ram_event_ring";
    /// The IP reassembly and fragmentation buffers, bytes: part of
    /// [`RAM_APP`] (inside the interface).
    pub const RAM_FRAGMENT_BUFFERS: &str = "ram_fragment_buffers";
    /// The `ram_*` pools that add up to [`RAM_TOTAL`], in `INFO`'s order.
    pub const RAM_POOLS: [&str; 14] = [
        RAM_LAB,
        RAM_BULK,
        RAM_IPERF3,
        RAM_IPERF2,
        RAM_HTTP,
        RAM_UDP,
        RAM_DAYTIME,
        RAM_CLOSING,
        RAM_DHCP,
        RAM_NIC,
        RAM_DMA,
        RAM_BAD_LINK,
        RAM_HANDLER_STACK,
        RAM_STACK,
    ];
    /// Sockets on the iperf3 port (one control, the streams, one to answer "busy").
    pub const IPERF3_SOCKETS: &str = "iperf3_sockets";
    /// Most TCP streams one iperf3 test may open (`-P`, twice that with `--bidir`).
    pub const IPERF3_MAX_STREAMS: &str = "iperf3_max_streams";
    /// Receive buffer of each iperf3 socket, bytes.
    pub const IPERF3_RX_BUFFER: &str = "iperf3_rx_buffer";
    /// Transmit buffer of each iperf3 socket, bytes.
    pub const IPERF3_TX_BUFFER: &str = "iperf3_tx_buffer";
    /// Longest iperf3 parameter object accepted, bytes.
    pub const IPERF3_MAX_PARAMS: &str = "iperf3_max_params";
    /// An iperf3 test that makes no progress this long is ended, ms.
    pub const IPERF3_TIMEOUT_MS: &str = "iperf3_timeout_ms";
    /// iperf3 tests run to the end (results exchanged).
    pub const IPERF3_TESTS: &str = "iperf3_tests";
    /// iperf3 tests ended early: error, timeout, refused parameters, client gone.
    pub const IPERF3_FAILED: &str = "iperf3_failed";
    /// iperf3 clients answered "the server is busy".
    pub const IPERF3_BUSY: &str = "iperf3_busy";
    /// iperf2 connections served.
    pub const IPERF2_TESTS: &str = "iperf2_tests";
    /// Sockets on the iperf2 port.
    pub const IPERF2_SOCKETS: &str = "iperf2_sockets";
    /// Receive buffer of each iperf2 socket, bytes.
    pub const IPERF2_RX_BUFFER: &str = "iperf2_rx_buffer";
    /// Transmit buffer of each iperf2 socket, bytes.
    pub const IPERF2_TX_BUFFER: &str = "iperf2_tx_buffer";
    /// Sockets with lab-sized buffers that finish closes (TIME-WAIT and the
    /// rest) while the slots serve new clients.
    pub const LAB_CLOSING: &str = "lab_closing_sockets";
    /// Sockets with bulk-sized buffers that finish bulk connections' closes.
    pub const BULK_CLOSING: &str = "bulk_closing_sockets";
    /// Closing sockets busy finishing a close now.
    pub const CLOSING_IN_USE: &str = "closing_in_use";
    /// TIME-WAIT sockets recycled early because the closing pool was full.
    pub const TIME_WAIT_RECYCLED: &str = "time_wait_recycled";
    /// Frames that met the bad link, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_FRAMES: &str = "badlink_rx_frames";
    /// Frames the bad link dropped, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_DROPPED: &str = "badlink_rx_dropped";
    /// Frames the bad link corrupted (one bit flipped), received (host to device); 0 without a bad link.
    pub const BADLINK_RX_CORRUPTED: &str = "badlink_rx_corrupted";
    /// Extra copies the bad link delivered, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_DUPLICATED: &str = "badlink_rx_duplicated";
    /// Frames the bad link held back to be overtaken, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_REORDERED: &str = "badlink_rx_reordered";
    /// Frames the bad link delayed, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_DELAYED: &str = "badlink_rx_delayed";
    /// Faults the bad link skipped: no hold buffer free, received (host to device); 0 without a bad link.
    pub const BADLINK_RX_HELD_FULL: &str = "badlink_rx_held_full";
    /// Frames that met the bad link, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_FRAMES: &str = "badlink_tx_frames";
    /// Frames the bad link dropped, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_DROPPED: &str = "badlink_tx_dropped";
    /// Frames the bad link corrupted (one bit flipped), sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_CORRUPTED: &str = "badlink_tx_corrupted";
    /// Extra copies the bad link delivered, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_DUPLICATED: &str = "badlink_tx_duplicated";
    /// Frames the bad link held back to be overtaken, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_REORDERED: &str = "badlink_tx_reordered";
    /// Frames the bad link delayed, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_DELAYED: &str = "badlink_tx_delayed";
    /// Faults the bad link skipped: no hold buffer free, sent (device to host); 0 without a bad link.
    pub const BADLINK_TX_HELD_FULL: &str = "badlink_tx_held_full";
    /// The bad link's counts of frames towards the device, in `INFO`'s order.
    pub const BADLINK_RX: [&str; 7] = [
        BADLINK_RX_FRAMES,
        BADLINK_RX_DROPPED,
        BADLINK_RX_CORRUPTED,
        BADLINK_RX_DUPLICATED,
        BADLINK_RX_REORDERED,
        BADLINK_RX_DELAYED,
        BADLINK_RX_HELD_FULL,
    ];
    /// The bad link's counts of frames from the device, in `INFO`'s order.
    pub const BADLINK_TX: [&str; 7] = [
        BADLINK_TX_FRAMES,
        BADLINK_TX_DROPPED,
        BADLINK_TX_CORRUPTED,
        BADLINK_TX_DUPLICATED,
        BADLINK_TX_REORDERED,
        BADLINK_TX_DELAYED,
        BADLINK_TX_HELD_FULL,
    ];
    /// Largest IP datagram payload reassembled from fragments, bytes.
    pub const REASSEMBLY_BUFFER: &str = "reassembly_buffer";
    /// Datagrams reassembled at once.
    pub const REASSEMBLY_BUFFERS: &str = "reassembly_buffers";
    /// Largest IPv4 datagram sent in fragments, bytes.
    pub const FRAGMENTATION_BUFFER: &str = "fragmentation_buffer";
    /// Sockets of the HTTP server (port 80), apart from every other pool.
    pub const HTTP_SOCKETS: &str = "http_sockets";
    /// Receive buffer of each HTTP socket, bytes.
    pub const HTTP_RX_BUFFER: &str = "http_rx_buffer";
    /// Transmit buffer of each HTTP socket, bytes.
    pub const HTTP_TX_BUFFER: &str = "http_tx_buffer";
    /// Largest HTTP request head accepted, bytes (431 beyond).
    pub const HTTP_MAX_HEAD: &str = "http_max_head";
    /// A request head unfinished this long gets 408, ms.
    pub const HTTP_REQUEST_TIMEOUT_MS: &str = "http_request_timeout_ms";
    /// An idle HTTP keep-alive connection is closed after this long, ms.
    pub const HTTP_IDLE_TIMEOUT_MS: &str = "http_idle_timeout_ms";
    /// Connection state changes the event ring keeps.
    pub const EVENT_RING: &str = "event_ring";
    /// Sequence number of the next event (events since boot).
    pub const EVENTS_NEXT: &str = "events_next";
    /// HTTP requests answered.
    pub const HTTP_REQUESTS: &str = "http_requests";
    /// UDP sockets (echo, discard, chargen).
    pub const UDP_SOCKETS: &str = "udp_sockets";
    /// Receive buffer of each UDP socket: the largest datagram served, bytes.
    pub const UDP_RX_BUFFER: &str = "udp_rx_buffer";
    /// Transmit buffer of each UDP socket, bytes.
    pub const UDP_TX_BUFFER: &str = "udp_tx_buffer";
    /// Datagrams each UDP socket queues per direction.
    pub const UDP_PACKETS: &str = "udp_packets";
    /// Largest UDP chargen answer, bytes.
    pub const UDP_CHARGEN_MAX: &str = "udp_chargen_max";
    /// TCP sockets on the daytime port (13): clients answered at once.
    pub const DAYTIME_SOCKETS: &str = "daytime_sockets";
    /// Daytime lines sent, TCP and UDP.
    pub const DAYTIME_ANSWERS: &str = "daytime_answers";
    /// Sockets on the management port (6668), apart from the lab's slots and
    /// backlog: `WHO`, `NETSTAT`, `INFO` and `EVENTS` on a full device.
    pub const MGMT_SOCKETS: &str = "mgmt_sockets";
}

/// esnet iperf3's control protocol, as its `iperf_api.h` numbers it.
///
/// A client connects to [`IPERF3_PORT`] and sends a [`COOKIE_LEN`]-byte
/// cookie; the server answers one state byte at a time. Parameters and
/// results travel as a 4-byte big-endian length and a JSON object. Data
/// streams connect to the same port and open with the same cookie.
pub mod iperf3 {
    /// Length of the cookie that opens every connection (36 characters and a NUL).
    pub const COOKIE_LEN: usize = 37;
    /// Server: streams are connected, the test starts.
    pub const TEST_START: u8 = 1;
    /// Server: data may flow.
    pub const TEST_RUNNING: u8 = 2;
    /// Client: its time (or byte count) is up.
    pub const TEST_END: u8 = 4;
    /// Server: send your parameters.
    pub const PARAM_EXCHANGE: u8 = 9;
    /// Server: connect your streams.
    pub const CREATE_STREAMS: u8 = 10;
    /// Server: the server ends the test.
    pub const SERVER_TERMINATE: u8 = 11;
    /// Client: the client ends the test (Ctrl-C).
    pub const CLIENT_TERMINATE: u8 = 12;
    /// Server: send your results, then read mine.
    pub const EXCHANGE_RESULTS: u8 = 13;
    /// Server: print the results.
    pub const DISPLAY_RESULTS: u8 = 14;
    /// Client: done, closing.
    pub const IPERF_DONE: u8 = 16;
    /// Server, (signed) -1: another test is running ("the server is busy").
    pub const ACCESS_DENIED: u8 = 0xff;
    /// Server, (signed) -2: followed by two big-endian 32-bit numbers, iperf3's
    /// error number and an errno, which the client prints as its error.
    pub const SERVER_ERROR: u8 = 0xfe;
    /// iperf3 error: "an option you are trying to set is not implemented yet"
    /// (the device answers it to UDP and SCTP tests).
    pub const IE_UNIMP: u32 = 13;
    /// iperf3 error: "unable to receive parameters from client".
    pub const IE_RECV_PARAMS: u32 = 114;
    /// iperf3 error: "unable to start stream listener" (more streams than sockets).
    pub const IE_STREAM_LISTEN: u32 = 202;
    /// errno `EINVAL`, sent with a parameter object the device cannot read.
    pub const EINVAL: u32 = 22;
    /// errno `EMSGSIZE`, sent with a parameter object over the device's limit.
    pub const EMSGSIZE: u32 = 90;
    /// errno `ENOBUFS`, sent when a test wants more streams than the device has sockets.
    pub const ENOBUFS: u32 = 105;
    /// Stream ids as iperf3 numbers them: the first stream is 1, the next 3, 4, 5, ...
    pub const fn stream_id(index: usize) -> usize {
        if index == 0 {
            1
        } else {
            index + 2
        }
    }
}

/// The iperf 2.x client's first bytes on a TCP test: a header whose first
/// big-endian 32-bit word holds flags.
pub mod iperf2 {
    /// Flag of the header's first word: the client asks the server to connect
    /// back to it (`-r` tradeoff, `-d` dual test).
    pub const HEADER_VERSION1: u32 = 0x8000_0000;
    /// Bytes of the header's first word.
    pub const FLAGS_LEN: usize = 4;
}

/// Length of one chargen line: 72 printing characters, CR, LF.
pub const CHARGEN_LINE_LEN: usize = 74;
/// Printing characters per chargen line.
pub const CHARGEN_LINE_CHARS: usize = 72;
/// Number of printing ASCII characters, space to `~`, that chargen rotates through.
pub const CHARGEN_ALPHABET: usize = 95;

/// The byte at position `pos` of the endless chargen stream (RFC 864): line
/// `n` holds 72 characters starting with the `n mod 95`-th printing character,
/// then CR LF.
pub const fn chargen_byte(pos: u64) -> u8 {
    let line = pos / CHARGEN_LINE_LEN as u64;
    let col = (pos % CHARGEN_LINE_LEN as u64) as usize;
    match col {
        CHARGEN_LINE_CHARS => b'\r',
        c if c > CHARGEN_LINE_CHARS => b'\n',
        c => b' ' + ((line + c as u64) % CHARGEN_ALPHABET as u64) as u8,
    }
}

/// Bytes after which the chargen stream repeats: 95 lines.
pub const CHARGEN_PERIOD: usize = CHARGEN_ALPHABET * CHARGEN_LINE_LEN;

/// The printing characters twice over (less the last line's overhang): line
/// `n` of the chargen stream is the 72 of them from `n mod 95`, so filling a
/// buffer is one `memcpy` per line from 167 bytes of flash (chargen is the
/// device's bulk source).
static CHARGEN_CHARS: [u8; CHARGEN_ALPHABET + CHARGEN_LINE_CHARS] = {
    let mut chars = [0u8; CHARGEN_ALPHABET + CHARGEN_LINE_CHARS];
    let mut i = 0;
    while i < chars.len() {
        chars[i] = b' ' + (i % CHARGEN_ALPHABET) as u8;
        i += 1;
    }
    chars
};

/// Fills `out` with the chargen stream starting at position `pos`.
pub fn chargen_fill(pos: u64, out: &mut [u8]) {
    let mut line = ((pos / CHARGEN_LINE_LEN as u64) % CHARGEN_ALPHABET as u64) as usize;
    let mut col = (pos % CHARGEN_LINE_LEN as u64) as usize;
    let mut out = out;
    while !out.is_empty() {
        let rest: &[u8] = if col < CHARGEN_LINE_CHARS {
            &CHARGEN_CHARS[line + col..line + CHARGEN_LINE_CHARS]
        } else {
            &b"\r\n"[col - CHARGEN_LINE_CHARS..]
        };
        let take = rest.len().min(out.len());
        let (head, tail) = out.split_at_mut(take);
        head.copy_from_slice(&rest[..take]);
        out = tail;
        col += take;
        if col == CHARGEN_LINE_LEN {
            col = 0;
            line = (line + 1) % CHARGEN_ALPHABET;
        }
    }
}

#[cfg(test)]
mod test {
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn commands_are_case_insensitive() {
        assert_eq!(Command::parse(b"echo hi there"), Command::Echo(b"hi there"));
        assert_eq!(Command::parse(b"EcHo  x"), Command::Echo(b" x"));
        assert_eq!(Command::parse(b"ECHO"), Command::Echo(b""));
        assert_eq!(Command::parse(b"say hello\r"), Command::Say(b"hello"));
        assert_eq!(Command::parse(b"who"), Command::Who);
        assert_eq!(Command::parse(b"NetStat"), Command::Netstat);
        assert_eq!(Command::parse(b"INFO"), Command::Info);
        assert_eq!(Command::parse(b"quit\r"), Command::Quit);
        assert_eq!(Command::parse(b"events"), Command::Events(0));
        assert_eq!(Command::parse(b"EVENTS 42"), Command::Events(42));
        assert_eq!(Command::parse(b"EVENTS x"), Command::Unknown);
        assert_eq!(Command::parse(b""), Command::Empty);
        assert_eq!(Command::parse(b"\r"), Command::Empty);
        assert_eq!(Command::parse(b"ECHOX"), Command::Unknown);
        assert_eq!(Command::parse(b"WHO extra"), Command::Unknown);
        assert_eq!(Command::parse(b"\xff\xfe"), Command::Unknown);
    }

    #[test]
    fn hello_round_trips() {
        let line = "HELLO socklab/0.1.0 slot=3 peer=[fdaa::100]:40000 local=[fdaa::1]:6666";
        let hello = Hello::parse(line).unwrap();
        assert_eq!(hello.slot, 3);
        assert_eq!(hello.peer, "[fdaa::100]:40000".parse().unwrap());
        assert_eq!(hello.local.port(), LAB_PORT);
        let mut buf = heapless::String::<128>::new();
        fmt::write(&mut buf, format_args!("{hello}")).unwrap();
        assert_eq!(buf.as_str(), line);
        assert!(!hello.management);
        let line = "HELLO socklab/0.1.0 mgmt=1 peer=192.168.69.100:4000 local=192.168.69.1:6668";
        let hello = Hello::parse(line).unwrap();
        assert!(hello.management);
        assert_eq!(hello.slot, 1);
        let mut buf = heapless::String::<128>::new();
        fmt::write(&mut buf, format_args!("{hello}")).unwrap();
        assert_eq!(buf.as_str(), line);
        assert_eq!(Hello::parse("HI there"), Err(ParseError::WrongKind));
        assert_eq!(
            Hello::parse("HELLO socklab/1 slot=x peer=1.2.3.4:5 local=1.2.3.4:6"),
            Err(ParseError::Invalid("slot"))
        );
    }

    #[test]
    fn iface_rows_round_trip_and_refuse_what_is_not_one() {
        let line = "iface eth1 02:00:00:00:00:02 1500 192.168.70.1/24 static fdab::1/64 \
                    12 1340 0 11 1202 3";
        let row = IfaceRow::parse(line).unwrap();
        assert_eq!(row.name, "eth1");
        assert_eq!(row.mac, EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(row.ipv4, Some("192.168.70.1/24".parse().unwrap()));
        assert_eq!((row.rx_bytes, row.tx_dropped), (1340, 3));
        assert_eq!(
            row.to_string(),
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let none = IfaceRow { ipv4: None, ..row };
        assert_eq!(IfaceRow::parse(&none.to_string()), Ok(none));
        assert_eq!(IfaceRow::parse("tcp a b"), Err(ParseError::WrongKind));
        assert_eq!(
            IfaceRow::parse("iface eth0 02:00:00:00:00:01 1500 none"),
            Err(ParseError::Missing("ipv4_source"))
        );
        assert!(IfaceRow::parse(&(line.to_string() + " 9")).is_err());
        assert_eq!(Command::parse(b"ifconfig"), Command::Ifconfig);
    }

    #[test]
    fn netstat_rows_parse() {
        let row = NetstatRow::parse("tcp *:6666 *:* LISTEN 0 0").unwrap();
        assert_eq!(row.local, SockName::Any(Some(6666)));
        assert_eq!(row.remote, SockName::Any(None));
        assert_eq!(row.state, "LISTEN");
        let row = NetstatRow::parse("tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 5 17")
            .unwrap();
        assert_eq!(row.remote.port(), Some(40000));
        assert_eq!((row.rx_queued, row.tx_queued), (5, 17));
        assert!(NetstatRow::parse("tcp *:6666 *:* LISTEN 0").is_err());
        assert!(NetstatRow::parse("END").is_err());
    }

    #[test]
    fn from_who_and_info_parse() {
        let from = From::parse("FROM 192.168.69.100:4000 hi all").unwrap();
        assert_eq!(from.text, "hi all");
        assert_eq!(from.sender.port(), 4000);
        let who = WhoRow::parse("7 [fdaa::100]:1234").unwrap();
        assert_eq!(who.slot, 7);
        assert_eq!(parse_info("mtu=1500"), Ok(("mtu", "1500")));
        let wait = WaitRow::parse("wait 2 192.168.69.100:5000").unwrap();
        assert_eq!(wait.position, 2);
        assert!(WhoRow::parse("wait 2 192.168.69.100:5000").is_err());
        assert!(WaitRow::parse("2 192.168.69.100:5000").is_err());
        assert!(parse_info("END").is_err());
        let line = "event 3 1200 5 6666 LISTEN SYN-RECEIVED 192.168.69.100:4000";
        let event = EventRow::parse(line).unwrap();
        assert_eq!((event.seq, event.socket, event.to), (3, 5, "SYN-RECEIVED"));
        let mut buf = heapless::String::<128>::new();
        fmt::write(&mut buf, format_args!("{event}")).unwrap();
        assert_eq!(buf.as_str(), line);
        let back = EventRow::parse("event 4 1300 5 6666 TIME-WAIT LISTEN -").unwrap();
        assert_eq!(back.peer, None);
    }

    #[test]
    fn chargen_fill_matches_chargen_byte_from_any_position() {
        let mut buf = [0u8; 3 * CHARGEN_LINE_LEN * CHARGEN_ALPHABET / 2];
        for start in [0u64, 1, 71, 72, 73, 74, 75, 95 * 74 - 1, 123_456_789] {
            for len in [0usize, 1, 2, 73, 74, 75, 500, buf.len()] {
                chargen_fill(start, &mut buf[..len]);
                for (i, byte) in buf[..len].iter().enumerate() {
                    assert_eq!(
                        *byte,
                        chargen_byte(start + i as u64),
                        "start {start} offset {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn chargen_follows_rfc_864() {
        let mut first = [0u8; CHARGEN_LINE_LEN * 2];
        chargen_fill(0, &mut first);
        assert!(first.starts_with(b" !\"#$%&'()*+,-./0123456789"));
        assert_eq!(&first[72..74], b"\r\n");
        assert!(first[74..].starts_with(b"!\"#$%"));
        // Line 95 starts with a space again.
        assert_eq!(chargen_byte(95 * CHARGEN_LINE_LEN as u64), b' ');
        // Line 23 is the first to wrap past `~`.
        let line23 = 23 * CHARGEN_LINE_LEN as u64;
        assert_eq!(chargen_byte(line23 + 71), b'~');
        assert_eq!(chargen_byte(line23 + 72), b'\r');
    }
}
