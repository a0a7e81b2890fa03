//! A blocking client for the lab service (port 6666): connects, checks the
//! `HELLO`, sends commands and returns typed answers parsed with the
//! protocol's own parsers.
//!
//! `FROM` lines (another client's `SAY`) may arrive at any moment, also in the
//! middle of another command's answer; the client sets them aside as
//! [`Message`]s, read with [`LabClient::next_message`].

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use socklab_app::protocol::{
    self, state, Hello, IfaceRow, Mac, NetstatRow, ParseError, SockName, WaitRow, WhoRow, ECHO,
    END, IFCONFIG, INFO, NETSTAT, OK, QUIT, SAY, WHO,
};

use crate::netns::HostNet;

/// How long [`LabClient::connect`] and each command wait by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt of [`wait_for_hello`] waits before reconnecting.
/// Short: QEMU's user networking accepts on the host before the guest
/// answers, and drops a connection made before the guest had its lease.
pub const HELLO_ATTEMPT: Duration = Duration::from_millis(250);
/// The pause between two attempts of [`wait_for_hello`].
pub const HELLO_RETRY: Duration = Duration::from_millis(20);

/// Why [`wait_for_hello`] gave up.
#[derive(Debug)]
pub enum HelloWait<E> {
    /// The caller's liveness check failed (e.g. the device exited).
    Stopped(E),
    /// No `HELLO` before the deadline.
    TimedOut {
        /// Connections tried.
        attempts: u32,
        /// Why the last one failed.
        last_error: String,
    },
}

/// Connects from `net` to the lab at `addr` until a `HELLO` arrives or
/// `deadline` passes, [`HELLO_ATTEMPT`] per try and [`HELLO_RETRY`] between
/// tries; `alive` runs before every try and stops the wait with its error.
/// The one readiness check every launcher uses.
pub fn wait_for_hello<E>(
    net: &HostNet,
    addr: SocketAddr,
    deadline: Instant,
    mut alive: impl FnMut() -> Result<(), E>,
) -> Result<(), HelloWait<E>> {
    let mut attempts = 0;
    let mut last_error = String::from("no attempt");
    loop {
        alive().map_err(HelloWait::Stopped)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HelloWait::TimedOut {
                attempts,
                last_error,
            });
        }
        attempts += 1;
        match LabClient::connect_in(net, addr, left.min(HELLO_ATTEMPT)) {
            Ok(client) => {
                client.close();
                return Ok(());
            }
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(HELLO_RETRY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// What went wrong talking to the device. Each message says what to try.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The device (or the kernel on its behalf) answered the SYN with RST.
    #[error("{addr} refused the connection (RST): nothing listens on port {}; {}", addr.port(), service_ports())]
    Refused {
        /// Where we tried to connect.
        addr: SocketAddr,
    },
    /// No route to the device's address from this network namespace.
    #[error(
        "{addr} is unreachable from here ({error}): is the TAP up with the host-side \
         address (`socklab tap up`), or does the device live in a namespace (`socklab --netns NS ...`)?"
    )]
    Unreachable {
        /// Where we tried to connect.
        addr: SocketAddr,
        /// The kernel's error.
        error: io::Error,
    },
    /// Nothing arrived in time.
    #[error(
        "no answer from {addr} within {timeout:?} while {during}: is the device running \
         and reachable from this namespace?"
    )]
    Timeout {
        /// The device.
        addr: SocketAddr,
        /// How long we waited.
        timeout: Duration,
        /// What we were waiting for.
        during: String,
    },
    /// The device reset the connection.
    #[error("connection to {addr} reset by the device: it aborted the connection or restarted; reconnect")]
    Reset {
        /// The device.
        addr: SocketAddr,
    },
    /// The device closed the connection (after `BYE`, or without a word).
    #[error("the device at {addr} closed the connection{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Closed {
        /// The device.
        addr: SocketAddr,
        /// The `BYE` line, if one came.
        reason: Option<String>,
    },
    /// The device answered `ERR ...`.
    #[error("the device at {addr} answered {line:?}")]
    Device {
        /// The device.
        addr: SocketAddr,
        /// Its `ERR` line.
        line: String,
    },
    /// A line that the protocol does not allow here.
    #[error("unexpected line from {addr} while {during}: {line:?} ({reason}); is this a socklab device?")]
    Protocol {
        /// The device.
        addr: SocketAddr,
        /// What we were waiting for.
        during: String,
        /// The line.
        line: String,
        /// Why it does not fit.
        reason: String,
    },
    /// Any other I/O error.
    #[error("I/O error talking to {addr}: {error}")]
    Io {
        /// The device.
        addr: SocketAddr,
        /// The kernel's error.
        error: io::Error,
    },
    /// The network namespace to talk from is missing or cannot be entered.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

impl ClientError {
    /// Classifies an I/O error from a socket talking to `addr`.
    pub fn from_io(addr: SocketAddr, error: io::Error, timeout: Duration, during: &str) -> Self {
        use io::ErrorKind::*;
        match error.kind() {
            ConnectionRefused => ClientError::Refused { addr },
            TimedOut | WouldBlock => ClientError::Timeout {
                addr,
                timeout,
                during: during.to_owned(),
            },
            ConnectionReset | ConnectionAborted | BrokenPipe => ClientError::Reset { addr },
            HostUnreachable | NetworkUnreachable | AddrNotAvailable => {
                ClientError::Unreachable { addr, error }
            }
            _ => ClientError::Io { addr, error },
        }
    }

    /// True for a refused connection (RST on the SYN).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }
}

/// The TCP ports a device serves, lab first, with their names.
pub const SERVICE_PORTS: [(&str, u16); 7] = [
    ("lab", protocol::LAB_PORT),
    ("echo", protocol::ECHO_PORT),
    ("discard", protocol::DISCARD_PORT),
    ("chargen", protocol::CHARGEN_PORT),
    ("http", protocol::HTTP_PORT),
    ("iperf3", protocol::IPERF3_PORT),
    ("iperf2", protocol::IPERF2_PORT),
];

/// The service ports, for a refused connection's message.
fn service_ports() -> String {
    let list: Vec<String> = SERVICE_PORTS
        .iter()
        .map(|(name, port)| format!("{name} {port}"))
        .collect();
    format!("a socklab device serves {}", list.join(", "))
}

/// A `HELLO` banner, owned: the socket the device accepted for this client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Greeting {
    /// The device's version.
    pub version: String,
    /// The pool slot serving this client (the management socket's number
    /// when `management`).
    pub slot: usize,
    /// Served by a management socket (port 6668: read-only commands), not
    /// a lab slot.
    pub management: bool,
    /// The client's address as the device sees it.
    pub peer: SocketAddr,
    /// The device's side of the connection.
    pub local: SocketAddr,
}

impl Greeting {
    /// Parses a `HELLO` line.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let hello = Hello::parse(line)?;
        Ok(Greeting {
            version: hello.version.to_owned(),
            slot: hello.slot,
            management: hello.management,
            peer: hello.peer,
            local: hello.local,
        })
    }
}

impl fmt::Display for Greeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hello = Hello {
            version: &self.version,
            slot: self.slot,
            management: self.management,
            peer: self.peer,
            local: self.local,
        };
        hello.fmt(f)
    }
}

/// A `FROM` line: what another lab client said with `SAY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Who said it, as the device sees that client.
    pub sender: SocketAddr,
    /// What was said.
    pub text: String,
}

impl Message {
    /// Parses a `FROM` line.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let from = protocol::From::parse(line)?;
        Ok(Message {
            sender: from.sender,
            text: from.text.to_owned(),
        })
    }
}

impl fmt::Display for Message {
    /// The `FROM` line this message came in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        protocol::From {
            sender: self.sender,
            text: &self.text,
        }
        .fmt(f)
    }
}

/// One row of `NETSTAT`, owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    /// Always `tcp` today.
    pub proto: String,
    /// The device's side (`*:<port>` while listening).
    #[serde(serialize_with = "display")]
    pub local: SockName,
    /// The peer (`*:*` while listening).
    #[serde(serialize_with = "display")]
    pub remote: SockName,
    /// RFC 793 state, e.g. `LISTEN`, `ESTABLISHED`.
    pub state: String,
    /// Bytes received, not yet read by the service (`Recv-Q`).
    pub recv_q: usize,
    /// Bytes queued to send, not yet acknowledged (`Send-Q`).
    pub send_q: usize,
}

impl Socket {
    /// Parses a `NETSTAT` row.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let row = NetstatRow::parse(line)?;
        Ok(Socket {
            proto: row.proto.to_owned(),
            local: row.local,
            remote: row.remote,
            state: row.state.to_owned(),
            recv_q: row.rx_queued,
            send_q: row.tx_queued,
        })
    }

    /// True for a listening socket.
    pub fn is_listening(&self) -> bool {
        self.state == state::LISTEN
    }

    /// True for a socket listening on `port`.
    pub fn is_listening_on(&self, port: u16) -> bool {
        self.is_listening() && self.local.port() == Some(port)
    }
}

fn display<T: fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// One network interface of the device, as `IFCONFIG` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// `eth0`, `eth1`, ...
    pub name: String,
    /// Ethernet address, `02:00:00:00:00:01`.
    pub mac: String,
    /// IP MTU in bytes.
    pub mtu: usize,
    /// The IPv4 address in use with its prefix, if any.
    pub ipv4: Option<String>,
    /// `static`, `dhcp` or `dhcp-fallback`.
    pub ipv4_source: String,
    /// The IPv6 address with its prefix.
    pub ipv6: String,
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
    /// Sends the device had no buffer for (retried on its next poll).
    pub tx_dropped: u64,
}

impl Interface {
    /// Parses an `IFCONFIG` row.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let row = IfaceRow::parse(line)?;
        Ok(Interface {
            name: row.name.to_owned(),
            mac: Mac(row.mac).to_string(),
            mtu: row.mtu,
            ipv4: row.ipv4.map(|cidr| cidr.to_string()),
            ipv4_source: row.ipv4_source.to_owned(),
            ipv6: row.ipv6.to_string(),
            rx_frames: row.rx_frames,
            rx_bytes: row.rx_bytes,
            rx_dropped: row.rx_dropped,
            tx_frames: row.tx_frames,
            tx_bytes: row.tx_bytes,
            tx_dropped: row.tx_dropped,
        })
    }
}

/// The `INFO` answer: `key=value` pairs in the device's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// The pairs, in order.
    pub entries: Vec<(String, String)>,
}

impl Info {
    /// The value of `key` (see `socklab_app::protocol::info` for the names).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, parsed.
    pub fn parse<T: FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }
}

impl Serialize for Info {
    /// A JSON object in the device's order; values that are whole numbers
    /// become numbers, the rest strings.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            match value.parse::<u64>() {
                Ok(n) if n.to_string() == *value => map.serialize_entry(key, &n)?,
                _ => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// A connection to the lab service.
#[derive(Debug)]
pub struct LabClient {
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    /// Bytes received and not yet returned as a line.
    pending: Vec<u8>,
    /// `FROM` lines set aside while waiting for another answer.
    messages: VecDeque<Message>,
    greeting: Greeting,
}

impl LabClient {
    /// Connects to `addr` and waits for the `HELLO` (within `timeout` each).
    ///
    /// A successful TCP connect is not proof of a device: QEMU user networking
    /// accepts on the host before the guest answers. The `HELLO` is.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| ClientError::from_io(addr, e, timeout, "connecting"))?;
        Self::from_stream(stream, timeout)
    }

    /// Connects from `net` (the caller's namespace or a named one) to `addr`
    /// and waits for the `HELLO`.
    pub fn connect_in(
        net: &HostNet,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        net.run(|| Self::connect(addr, timeout))?
    }

    /// Wraps a connected stream (e.g. one opened inside a network namespace)
    /// and waits for the `HELLO`.
    pub fn from_stream(stream: TcpStream, timeout: Duration) -> Result<Self, ClientError> {
        let addr = stream
            .peer_addr()
            .map_err(|e| ClientError::from_io(unspecified(), e, timeout, "connecting"))?;
        // Lab lines are small: do not let Nagle delay them.
        let _ = stream.set_nodelay(true);
        let mut client = LabClient {
            stream,
            addr,
            timeout,
            pending: Vec::new(),
            messages: VecDeque::new(),
            greeting: Greeting {
                version: String::new(),
                slot: 0,
                management: false,
                peer: unspecified(),
                local: unspecified(),
            },
        };
        let during = "waiting for HELLO";
        let line = client.read_line_within(timeout, during)?;
        client.greeting = Greeting::parse(&line).map_err(|e| client.protocol(during, &line, e))?;
        Ok(client)
    }

    /// The `HELLO` this connection started with.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// The device's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// This side's address as the kernel bound it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The underlying stream (e.g. to clone it for a reader thread).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Timeout used by every command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the timeout used by every command.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// `ECHO <text>`: returns the device's answer.
    pub fn echo(&mut self, text: &str) -> Result<String, ClientError> {
        self.send_line(&format!("{ECHO} {text}"))?;
        self.answer("waiting for the ECHO answer", Want::Echo(text))
    }

    /// `SAY <text>`: expects `OK`.
    pub fn say(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_line(&format!("{SAY} {text}"))?;
        let during = "waiting for OK after SAY";
        let line = self.answer(during, Want::Reply)?;
        self.expect(during, &line, OK)
    }

    /// `WHO`: the lab clients being served (the backlog's `wait` rows are
    /// left out: see [`LabClient::who_and_queue`]).
    pub fn who(&mut self) -> Result<Vec<WhoRow>, ClientError> {
        Ok(self.who_and_queue()?.0)
    }

    /// `WHO` in full: the clients being served, and those waiting in the
    /// backlog for a slot, first in line first.
    pub fn who_and_queue(&mut self) -> Result<(Vec<WhoRow>, Vec<WaitRow>), ClientError> {
        let rows = self.list(WHO, |line| match WaitRow::parse(line) {
            Ok(wait) => Ok(Err(wait)),
            Err(_) => WhoRow::parse(line).map(Ok),
        })?;
        let (served, waiting): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.is_ok());
        Ok((
            served.into_iter().filter_map(Result::ok).collect(),
            waiting.into_iter().filter_map(Result::err).collect(),
        ))
    }

    /// `NETSTAT`: every socket of the device.
    pub fn netstat(&mut self) -> Result<Vec<Socket>, ClientError> {
        self.list(NETSTAT, Socket::parse)
    }

    /// `IFCONFIG`: the device's network interfaces, the first one first.
    pub fn ifconfig(&mut self) -> Result<Vec<Interface>, ClientError> {
        self.list(IFCONFIG, Interface::parse)
    }

    /// `INFO`: the device's key=value facts.
    pub fn info(&mut self) -> Result<Info, ClientError> {
        let entries = self.list(INFO, |line| {
            protocol::parse_info(line).map(|(k, v)| (k.to_owned(), v.to_owned()))
        })?;
        Ok(Info { entries })
    }

    /// `QUIT`: expects `BYE`, then waits for the device to close.
    pub fn quit(mut self) -> Result<(), ClientError> {
        self.send_line(QUIT)?;
        let during = "waiting for BYE after QUIT";
        let line = self.answer(during, Want::Bye)?;
        if !protocol::is_bye(&line) {
            return Err(self.protocol(during, &line, "expected BYE"));
        }
        match self.read_line_within(self.timeout, "waiting for the device to close") {
            Err(ClientError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
            Ok(line) => Err(self.protocol(
                "waiting for the close after BYE",
                &line,
                "expected the end of the stream",
            )),
        }
    }

    /// Sends one line (the LF is added).
    pub fn send_line(&mut self, line: &str) -> Result<(), ClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes)
    }

    /// Sends bytes as they are (for tests of framing: long lines, CRLF, ...).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let timeout = self.timeout;
        let _ = self.stream.set_write_timeout(Some(timeout));
        self.stream
            .write_all(bytes)
            .map_err(|e| ClientError::from_io(self.addr, e, timeout, "sending"))
    }

    /// Reads the next line, whatever it is (`FROM` lines included), within the
    /// client's timeout. Lines set aside earlier come first.
    pub fn read_line(&mut self) -> Result<String, ClientError> {
        if let Some(message) = self.messages.pop_front() {
            return Ok(message.to_string());
        }
        self.read_line_within(self.timeout, "reading a line")
    }

    /// The next `FROM` line, waiting up to `timeout` for it. Other lines
    /// arriving meanwhile are an error.
    pub fn next_message(&mut self, timeout: Duration) -> Result<Message, ClientError> {
        if let Some(message) = self.messages.pop_front() {
            return Ok(message);
        }
        let during = "waiting for a FROM line";
        let line = self.read_line_within(timeout, during)?;
        Message::parse(&line).map_err(|e| self.protocol(during, &line, e))
    }

    /// `FROM` lines received so far and not yet taken.
    pub fn take_messages(&mut self) -> Vec<Message> {
        self.messages.drain(..).collect()
    }

    /// Closes the connection without `QUIT`.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Reads the answer to a command, setting `FROM` lines aside.
    fn answer(&mut self, during: &str, want: Want) -> Result<String, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.read_line_within(left, during)?;
            if let Want::Echo(text) = want {
                // The echo is verbatim, even if the text looks like FROM or ERR.
                if line == text {
                    return Ok(line);
                }
            }
            if let Ok(message) = Message::parse(&line) {
                self.messages.push_back(message);
                continue;
            }
            if matches!(want, Want::Echo(_)) {
                return Ok(line);
            }
            if protocol::is_err(&line) {
                return Err(ClientError::Device {
                    addr: self.addr,
                    line,
                });
            }
            if protocol::is_bye(&line) && !matches!(want, Want::Bye) {
                // An unsolicited BYE: the device is closing this connection
                // (e.g. `BYE idle`).
                return Err(ClientError::Closed {
                    addr: self.addr,
                    reason: Some(line),
                });
            }
            return Ok(line);
        }
    }

    /// Sends `command` and parses rows up to `END`.
    fn list<T>(
        &mut self,
        command: &str,
        parse: impl Fn(&str) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ClientError> {
        self.send_line(command)?;
        let during = format!("reading the {command} answer");
        let mut rows = Vec::new();
        loop {
            let line = self.answer(&during, Want::Reply)?;
            if line == END {
                return Ok(rows);
            }
            rows.push(parse(&line).map_err(|e| self.protocol(&during, &line, e))?);
        }
    }

    fn expect(&self, during: &str, line: &str, want: &str) -> Result<(), ClientError> {
        if line == want {
            Ok(())
        } else {
            Err(self.protocol(during, line, format!("expected {want}")))
        }
    }

    fn protocol(&self, during: &str, line: &str, reason: impl fmt::Display) -> ClientError {
        ClientError::Protocol {
            addr: self.addr,
            during: during.to_owned(),
            line: line.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Reads one LF-terminated line (a CR before the LF is dropped) within
    /// `timeout`. A partial line stays buffered across a timeout.
    fn read_line_within(&mut self, timeout: Duration, during: &str) -> Result<String, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    addr: self.addr,
                    timeout,
                    during: during.to_owned(),
                });
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::Closed {
                        addr: self.addr,
                        reason: None,
                    })
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::from_io(self.addr, e, timeout, during)),
            }
        }
    }
}

/// What [`LabClient::answer`] waits for.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// The echo of this text.
    Echo(&'a str),
    /// `BYE`, the answer to `QUIT`.
    Bye,
    /// Any other answer line.
    Reply,
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    const T: Duration = Duration::from_secs(5);

    /// A fake device on 127.0.0.1: sends `script`'s lines in answer to the
    /// expected requests, and returns what the client sent.
    fn fake(
        script: Vec<(&'static str, &'static str)>,
    ) -> (SocketAddr, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, peer) = listener.accept().unwrap();
            stream.set_read_timeout(Some(T)).unwrap();
            let local = stream.local_addr().unwrap();
            writeln!(
                stream,
                "HELLO socklab/0.1.0 slot=2 peer={peer} local={local}"
            )
            .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut got = Vec::new();
            for (request, reply) in script {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert_eq!(line.trim_end(), request);
                got.push(line);
                stream.write_all(reply.as_bytes()).unwrap();
            }
            got
        });
        (addr, handle)
    }

    #[test]
    fn hello_is_parsed() {
        let (addr, fake) = fake(vec![]);
        let client = LabClient::connect(addr, T).unwrap();
        let greeting = client.greeting();
        assert_eq!(greeting.slot, 2);
        assert_eq!(greeting.local, addr);
        assert_eq!(greeting.peer, client.local_addr().unwrap());
        assert!(greeting
            .to_string()
            .starts_with("HELLO socklab/0.1.0 slot=2 peer=127.0.0.1:"));
        fake.join().unwrap();
    }

    #[test]
    fn commands_get_typed_answers() {
        let (addr, fake) = fake(vec![
            ("ECHO hi there", "hi there\r\n"),
            ("SAY hello", "FROM 127.0.0.1:5000 early bird\nOK\n"),
            ("WHO", "0 127.0.0.1:5000\n2 127.0.0.1:5001\nEND\n"),
            (
                "NETSTAT",
                "tcp *:6666 *:* LISTEN 0 0\ntcp 127.0.0.1:6666 127.0.0.1:5000 ESTABLISHED 3 4\nEND\n",
            ),
            ("INFO", "board=fake\nmtu=1500\nEND\n"),
            ("BOGUS", "ERR unknown command\n"),
            ("QUIT", "BYE\n"),
        ]);
        let mut client = LabClient::connect(addr, T).unwrap();
        assert_eq!(client.echo("hi there").unwrap(), "hi there");
        client.say("hello").unwrap();
        let message = client.next_message(T).unwrap();
        assert_eq!(message.text, "early bird");
        assert_eq!(message.sender.port(), 5000);
        let who = client.who().unwrap();
        assert_eq!(who.len(), 2);
        assert_eq!(who[1].slot, 2);
        let sockets = client.netstat().unwrap();
        assert!(sockets[0].is_listening_on(6666));
        assert_eq!(sockets[1].state, "ESTABLISHED");
        assert_eq!((sockets[1].recv_q, sockets[1].send_q), (3, 4));
        let info = client.info().unwrap();
        assert_eq!(info.get("board"), Some("fake"));
        assert_eq!(info.parse::<u32>("mtu"), Some(1500));
        client.send_line("BOGUS").unwrap();
        assert!(matches!(
            client.say_raw_answer(),
            Err(ClientError::Device { .. })
        ));
        client.quit().unwrap();
        fake.join().unwrap();
    }

    impl LabClient {
        fn say_raw_answer(&mut self) -> Result<String, ClientError> {
            self.answer("test", Want::Reply)
        }
    }

    #[test]
    fn echo_of_a_from_looking_text_is_the_answer() {
        let (addr, fake) = fake(vec![(
            "ECHO FROM 1.2.3.4:5 x",
            "FROM 127.0.0.1:7 real\nFROM 1.2.3.4:5 x\n",
        )]);
        let mut client = LabClient::connect(addr, T).unwrap();
        assert_eq!(client.echo("FROM 1.2.3.4:5 x").unwrap(), "FROM 1.2.3.4:5 x");
        assert_eq!(client.take_messages().len(), 1);
        fake.join().unwrap();
    }

    #[test]
    fn refused_connect_says_what_to_do() {
        // Bind then drop: nothing listens on that port any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = LabClient::connect(addr, T).unwrap_err();
        assert!(error.is_refused(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("127.0.0.1:") && text.contains("refused the connection (RST)"),
            "{text}"
        );
        assert!(text.contains("serves lab 6666, echo 7,"), "{text}");
        assert!(!text.contains("is the device running"), "{text}");
    }

    #[test]
    fn silence_times_out_and_garbage_is_a_protocol_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (silent, _) = listener.accept().unwrap();
            let (mut chatty, _) = listener.accept().unwrap();
            chatty.write_all(b"SSH-2.0-OpenSSH\n").unwrap();
            thread::sleep(Duration::from_millis(500));
            drop((silent, chatty));
        });
        let short = Duration::from_millis(200);
        let error = LabClient::connect(addr, short).unwrap_err();
        assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
        assert!(error.to_string().contains("waiting for HELLO"));
        let error = LabClient::connect(addr, T).unwrap_err();
        assert!(matches!(error, ClientError::Protocol { .. }), "{error:?}");
        server.join().unwrap();
    }

    #[test]
    fn close_and_bye_are_reported() {
        let (addr, fake) = fake(vec![("WHO", "BYE idle\n")]);
        let mut client = LabClient::connect(addr, T).unwrap();
        let error = client.who().unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Closed {
                    reason: Some(_),
                    ..
                }
            ),
            "{error:?}"
        );
        fake.join().unwrap();
        let error = client.echo("anyone?").unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Closed { reason: None, .. } | ClientError::Reset { .. }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn json_rows() {
        let socket =
            Socket::parse("tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 0 5").unwrap();
        assert_eq!(
            serde_json::to_string(&socket).unwrap(),
            r#"{"proto":"tcp","local":"192.168.69.1:6666","remote":"192.168.69.100:40000","state":"ESTABLISHED","recv_q":0,"send_q":5}"#
        );
        let info = Info {
            entries: vec![
                ("version".into(), "0.1.0".into()),
                ("mtu".into(), "1500".into()),
                ("mac".into(), "02:00:00:00:00:01".into()),
                ("odd".into(), "007".into()),
            ],
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"version":"0.1.0","mtu":1500,"mac":"02:00:00:00:00:01","odd":"007"}"#
        );
    }
}
