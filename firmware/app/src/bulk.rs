//! The bulk services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864),
//! a few sockets each, all moving bytes as fast as the buffers allow.

use heapless::Vec;
use log::info;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};

use crate::counters::Counters;
use crate::limits::BULK_SERVICES;
use crate::pool::{drain, finished, Class, Pool};
use crate::protocol::{self, chargen_fill};
use crate::sock::{end_of_connection, listen, orderly};

pub use crate::limits::MAX_BULK_SLOTS;
/// Bytes echo moves per copy between a socket's receive and transmit buffers.
const ECHO_CHUNK: usize = 2048;

/// Which bulk service a socket runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Echo,
    Discard,
    Chargen,
}

impl Service {
    pub const ALL: [Service; BULK_SERVICES] = [Service::Echo, Service::Discard, Service::Chargen];

    /// The service's name, as logs print it.
    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
            Service::Chargen => "chargen",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Service::Echo => protocol::ECHO_PORT,
            Service::Discard => protocol::DISCARD_PORT,
            Service::Chargen => protocol::CHARGEN_PORT,
        }
    }
}

/// One bulk socket and what its service remembers about the connection.
pub(crate) struct BulkSocket {
    handle: SocketHandle,
    service: Service,
    /// Position in the endless chargen stream.
    chargen_pos: u64,
    last_state: State,
}

/// Every bulk socket of the device.
pub(crate) struct Bulk {
    sockets: Vec<BulkSocket, { BULK_SERVICES * MAX_BULK_SLOTS }>,
}

impl Bulk {
    pub const fn new() -> Self {
        Bulk {
            sockets: Vec::new(),
        }
    }

    /// Registers a listening socket for `service`.
    pub fn add(&mut self, handle: SocketHandle, service: Service) {
        let socket = BulkSocket {
            handle,
            service,
            chargen_pos: 0,
            last_state: State::Listen,
        };
        // The caller checked bulk_slots against MAX_BULK_SLOTS.
        let _ = self.sockets.push(socket);
    }

    /// Number of bulk sockets (every service).
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// The socket of bulk entry `index` (< [`Bulk::len`]).
    pub fn handle(&self, index: usize) -> SocketHandle {
        self.sockets[index].handle
    }

    /// True if a bulk socket's TCP state moved since the last poll.
    pub fn changed(&self, sockets: &SocketSet<'_>) -> bool {
        self.sockets
            .iter()
            .any(|b| sockets.get::<tcp::Socket>(b.handle).state() != b.last_state)
    }

    /// Serves every bulk socket once. `refresh`: a reset reached a bulk
    /// port since the last poll, so a listening socket may hold a reset
    /// handshake's timers.
    pub fn poll(
        &mut self,
        sockets: &mut SocketSet<'_>,
        pool: &mut Pool<'_>,
        counters: &mut Counters,
        now_ms: i64,
        refresh: bool,
    ) {
        for bulk in self.sockets.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(bulk.handle);
            let state = socket.state();
            let was_idle = matches!(bulk.last_state, State::Listen | State::SynReceived);
            match state {
                State::Listen => {
                    if bulk.last_state != State::Listen || refresh {
                        // A handshake the peer reset: smoltcp listens again
                        // by itself but keeps that handshake's timers.
                        socket.abort();
                        listen(socket, bulk.service.port());
                    }
                }
                State::SynReceived => {}
                State::Closed => {
                    if !finished(socket) {
                        // An abort whose reset is not sent yet: next time.
                        bulk.last_state = state;
                        continue;
                    }
                    if !was_idle {
                        end_of_connection(bulk.last_state, state, counters);
                        info!(
                            "{}: connection {}",
                            bulk.service.name(),
                            if orderly(bulk.last_state, state) {
                                "closed"
                            } else {
                                "reset or timed out"
                            }
                        );
                    }
                    bulk.chargen_pos = 0;
                    listen(socket, bulk.service.port());
                }
                _ => {
                    if was_idle {
                        counters.accepted += 1;
                        bulk.chargen_pos = 0;
                        if let Some(peer) = socket.remote_endpoint() {
                            info!(
                                "{}: accepted {}",
                                bulk.service.name(),
                                crate::sock::socket_addr(peer)
                            );
                        }
                    }
                    match bulk.service {
                        Service::Echo => echo(socket),
                        Service::Discard => drain(socket),
                        Service::Chargen => {
                            drain(socket);
                            bulk.chargen_pos = chargen(socket, bulk.chargen_pos);
                        }
                    }
                    // The peer has finished and everything owed is queued: close.
                    if !socket.may_recv() && state == State::CloseWait {
                        socket.close();
                    }
                    if !socket.is_active() || !socket.may_send() {
                        // Our side is closed (LAST-ACK, FIN-WAIT, TIME-WAIT):
                        // the close ends on a pool socket, this one listens.
                        if let Some(fresh) = pool.hand_off(
                            Class::Bulk,
                            bulk.handle,
                            sockets,
                            false,
                            counters,
                            now_ms,
                        ) {
                            bulk.handle = fresh;
                            bulk.chargen_pos = 0;
                            listen(sockets.get_mut::<tcp::Socket>(fresh), bulk.service.port());
                        }
                    }
                }
            }
            bulk.last_state = sockets.get::<tcp::Socket>(bulk.handle).state();
        }
    }
}

/// Moves received bytes to the transmit buffer, as many as fit.
fn echo(socket: &mut tcp::Socket) {
    let mut chunk = [0u8; ECHO_CHUNK];
    while socket.can_recv() && socket.can_send() {
        let room = socket.send_capacity() - socket.send_queue();
        let want = room.min(chunk.len());
        match socket.recv_slice(&mut chunk[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // `n` bytes fit: room was measured above.
                let _ = socket.send_slice(&chunk[..n]);
            }
        }
    }
}

/// Fills the transmit buffer with the chargen stream from `pos`; returns the
/// new position.
fn chargen(socket: &mut tcp::Socket, mut pos: u64) -> u64 {
    while socket.may_send() && socket.can_send() {
        let sent = socket.send(|buf| {
            chargen_fill(pos, buf);
            (buf.len(), buf.len())
        });
        match sent {
            Ok(0) | Err(_) => break,
            Ok(n) => pos += n as u64,
        }
    }
    pos
}
