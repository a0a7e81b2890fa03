//! The history of connection state changes: every TCP socket's state is
//! compared with the last one seen at the end of each poll, and each change
//! goes into a fixed ring that `EVENTS` and `/api/events` read.
//!
//! One place watches every socket of the device, whichever service owns it,
//! so the history holds what the stack did (LISTEN → SYN-RECEIVED →
//! ESTABLISHED → … → TIME-WAIT → LISTEN), not what a service thinks it did.
//! The HTTP server's own sockets are left out: the page that shows the
//! history would otherwise fill it with its own refreshes.

use core::net::SocketAddr;

use heapless::HistoryBuf;
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp::State;
use smoltcp::socket::Socket;
use smoltcp::time::Instant;

use crate::pool::socket::socket_addr;
use crate::wire::protocol::HTTP_PORT;

/// State changes the ring keeps; older ones are overwritten.
pub const EVENT_RING_LEN: usize = 128;
/// Sockets whose states are followed: the largest lab and bulk pools the
/// application supports and every other service's sockets (sockets beyond
/// it are not followed).
pub const MAX_TRACKED_SOCKETS: usize = 2304;

/// One state change of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Sequence number, from 0, one per event since boot.
    pub seq: u64,
    /// When it was seen, in milliseconds since the application started.
    pub at_ms: u64,
    /// The socket: its position among the device's TCP sockets.
    pub socket: usize,
    /// The port the socket serves (its local port, or the one it listens on).
    pub port: u16,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// The peer, while the socket has one (a socket back in LISTEN has
    /// forgotten it).
    pub remote: Option<SocketAddr>,
}

/// The ring of recent events and, per socket, the last state seen and
/// since when (ms since start; `u32` lasts 49 days).
pub struct Events {
    ring: HistoryBuf<Event, EVENT_RING_LEN>,
    next_seq: u64,
    states: heapless::Vec<State, MAX_TRACKED_SOCKETS>,
    since_ms: heapless::Vec<u32, MAX_TRACKED_SOCKETS>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// An empty history.
    pub const fn new() -> Self {
        Events {
            ring: HistoryBuf::new(),
            next_seq: 0,
            states: heapless::Vec::new(),
            since_ms: heapless::Vec::new(),
        }
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Compares every TCP socket's state with the last one seen and records
    /// the changes.
    pub fn scan(&mut self, sockets: &SocketSet<'_>, now: Instant, started: Instant) {
        let now_ms = (now - started).total_millis();
        let tcp = sockets.iter().filter_map(|(_, s)| match s {
            Socket::Tcp(t) => Some(t),
            #[allow(unreachable_patterns)]
            _ => None,
        });
        for (index, socket) in tcp.enumerate() {
            let state = socket.state();
            if index >= self.states.len() {
                if self.states.push(state).is_err() || self.since_ms.push(now_ms as u32).is_err() {
                    break;
                }
                continue;
            }
            let from = self.states[index];
            if from == state {
                continue;
            }
            self.states[index] = state;
            self.since_ms[index] = now_ms as u32;
            let port = socket
                .local_endpoint()
                .map(|e| e.port)
                .unwrap_or(socket.listen_endpoint().port);
            if port == HTTP_PORT {
                continue;
            }
            self.ring.write(Event {
                seq: self.next_seq,
                at_ms: now_ms,
                socket: index,
                port,
                from,
                to: state,
                remote: socket.remote_endpoint().map(socket_addr),
            });
            self.next_seq += 1;
        }
    }

    /// Milliseconds socket `index` has been in its present state, as of the
    /// last scan at `now_ms` (ms since start).
    pub fn time_in_state(&self, index: usize, now_ms: u64) -> Option<u64> {
        self.since_ms
            .get(index)
            .map(|since| (now_ms as u32).wrapping_sub(*since) as u64)
    }

    /// The oldest kept event with a sequence number at or after `seq`.
    pub fn first_from(&self, seq: u64) -> Option<Event> {
        self.ring.oldest_ordered().find(|e| e.seq >= seq).copied()
    }

    /// Events kept now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True before the first event.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}
