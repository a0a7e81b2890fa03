//! The daytime service (RFC 867) on port 13: over TCP, the device sends one
//! line with its time and closes; over UDP, it answers each datagram with
//! one datagram holding that line. What a client sends is dropped.
//!
//! No board hands the application a wall clock, so the line tells the
//! uptime ([`protocol::Daytime`]): RFC 867 leaves the line's syntax free.

use core::fmt::Write;

use log::info;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};

use crate::pool::closing::{drain, finished};
use crate::pool::socket::{end_of_connection, listen, socket_addr};
use crate::services::service::{
    Context, Declared, Footprint, HoldsSocket, Inventory, Service, ServicePort, SocketFactory,
    Sockets, Value, Values,
};
use crate::status::line::{LineWriter, OutLine};
use crate::status::view::View;
use crate::wire::protocol::{self, info as key, DAYTIME_PORT};

/// TCP sockets on the daytime port: clients answered at once.
pub const DAYTIME_SOCKETS: usize = 2;
/// Receive buffer of each daytime TCP socket, bytes (its bytes are dropped).
const TCP_RX_BUFFER: usize = 64;
/// Transmit buffer of each daytime TCP socket, bytes: one line.
const TCP_TX_BUFFER: usize = 128;
/// Receive and transmit buffer of the daytime UDP socket, bytes.
const UDP_BUFFER: usize = 256;
/// Datagrams the UDP socket queues per direction.
const UDP_PACKETS: usize = 2;

/// The daytime ports and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[
        ServicePort::tcp("daytime", DAYTIME_PORT),
        ServicePort::udp("daytime", DAYTIME_PORT),
    ],
    info_keys: &[key::DAYTIME_SOCKETS, key::DAYTIME_ANSWERS],
};

/// What the daytime service takes: fixed.
pub const FOOTPRINT: Footprint = Footprint {
    tcp_sockets: DAYTIME_SOCKETS,
    udp_sockets: 1,
    udp_packets: 2 * UDP_PACKETS,
    buffer_bytes: DAYTIME_SOCKETS * (TCP_RX_BUFFER + TCP_TX_BUFFER) + 2 * UDP_BUFFER,
};

/// One TCP socket and where its connection stands.
struct Conn {
    handle: SocketHandle,
    /// The TCP state last seen.
    last_state: State,
    /// When the line went out and the device closed its side.
    answered: Option<Instant>,
}

impl HoldsSocket for Conn {
    fn held(&self) -> Option<SocketHandle> {
        Some(self.handle)
    }
}

/// The daytime service: its TCP sockets, its UDP socket, what it answered.
pub(crate) struct Daytime {
    conns: [Conn; DAYTIME_SOCKETS],
    udp: [SocketHandle; 1],
    /// Lines sent, TCP and UDP.
    answers: u64,
}

impl Daytime {
    /// Its TCP sockets, listening, and its UDP socket, bound.
    pub fn new(factory: &mut SocketFactory<'_, '_>) -> Self {
        let conns = core::array::from_fn(|_| Conn {
            handle: factory.listener(TCP_RX_BUFFER, TCP_TX_BUFFER, DAYTIME_PORT),
            last_state: State::Listen,
            answered: None,
        });
        let udp = [factory.udp(UDP_BUFFER, UDP_BUFFER, UDP_PACKETS, DAYTIME_PORT)];
        Daytime {
            conns,
            udp,
            answers: 0,
        }
    }

    /// Follows one TCP socket: answers a new connection, lets the close
    /// finish (aborting one the peer never ends), listens again.
    fn serve(&mut self, index: usize, cx: &mut Context<'_, '_>) -> Option<Instant> {
        let conn = &mut self.conns[index];
        let socket = cx.sockets.get_mut::<tcp::Socket>(conn.handle);
        let state = socket.state();
        let mut next = None;
        match state {
            State::Listen | State::SynReceived => {}
            State::Closed | State::TimeWait => {
                if state == State::Closed && !finished(socket) {
                    // An abort whose reset is not sent yet: next time.
                    return Some(cx.now);
                }
                if state == State::TimeWait && conn.last_state != State::TimeWait {
                    // The last ACK leaves with this poll's egress; the
                    // socket listens again on the next one.
                    conn.last_state = state;
                    return Some(cx.now);
                }
                if conn.answered.is_some() {
                    end_of_connection(conn.last_state, state, cx.counters);
                }
                listen(socket, DAYTIME_PORT);
                conn.answered = None;
            }
            _ => {
                drain(socket);
                match conn.answered {
                    None => {
                        cx.counters.accepted += 1;
                        if let Some(peer) = socket.remote_endpoint() {
                            info!("daytime: answered {}", socket_addr(peer));
                        }
                        // The transmit buffer is empty on accept and holds a line.
                        let _ = socket.send_slice(&line(cx.view, cx.now));
                        socket.close();
                        conn.answered = Some(cx.now);
                        self.answers += 1;
                    }
                    Some(since) => {
                        let deadline =
                            since + Duration::from_millis(cx.view.config.timeouts.closing_ms);
                        if cx.now >= deadline {
                            // The client never finished closing.
                            cx.counters.timed_out += 1;
                            socket.abort();
                            conn.answered = None;
                        } else {
                            next = Some(deadline);
                        }
                    }
                }
            }
        }
        conn.last_state = cx.sockets.get::<tcp::Socket>(conn.handle).state();
        next
    }

    /// Answers each waiting datagram with one holding `line` (a datagram
    /// whose answer finds the queue full is dropped, as UDP allows).
    fn answer_datagrams(&mut self, cx: &mut Context<'_, '_>) {
        let socket = cx.sockets.get_mut::<udp::Socket>(self.udp[0]);
        for _ in 0..UDP_PACKETS {
            let Ok((_, meta)) = socket.recv() else {
                break;
            };
            if socket.send_slice(&line(cx.view, cx.now), meta).is_ok() {
                self.answers += 1;
            }
        }
    }
}

impl Inventory for Daytime {
    fn sockets(&self) -> Sockets<'_> {
        Sockets {
            tcp: &self.conns,
            udp: &self.udp,
        }
    }

    fn info(&self, _view: &View<'_>, values: &mut Values) {
        values.extend([Value::from(DAYTIME_SOCKETS), self.answers.into()]);
    }
}

impl Service for Daytime {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for index in 0..DAYTIME_SOCKETS {
            if let Some(at) = self.serve(index, cx) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.answer_datagrams(cx);
        next
    }
}

/// The line the device answers with at `now`, and its CR LF.
fn line(view: &View<'_>, now: Instant) -> OutLine {
    let daytime = protocol::Daytime {
        board: view.config.board,
        uptime_ms: view.uptime(now).total_millis(),
    };
    let mut line = OutLine::new();
    let _ = write!(LineWriter(&mut line), "{daytime}\r\n");
    line
}
