//! The bulk services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864),
//! a few sockets each, all moving bytes as fast as the buffers allow. Echo is
//! always built; discard and chargen with the `discard-chargen` feature.

use heapless::Vec;
use log::info;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;

#[cfg(feature = "discard-chargen")]
use crate::pool::closing::drain;
use crate::pool::closing::{finished, Class};
use crate::pool::socket::{end_of_connection, listen, orderly, socket_addr};
use crate::services::service::{
    Context, Declared, HoldsSocket, Inventory, Service, ServicePort, SocketFactory, Sockets, Values,
};
use crate::status::view::View;
#[cfg(feature = "discard-chargen")]
use crate::wire::protocol::chargen_fill;
use crate::wire::protocol::{self, info as key, CHARGEN_LINE_LEN};

/// Number of bulk services built: echo, and discard and chargen with the
/// `discard-chargen` feature.
pub const BULK_SERVICES: usize = if cfg!(feature = "discard-chargen") {
    3
} else {
    1
};
/// Most sockets one bulk service may have.
pub const MAX_BULK_SLOTS: usize = 64;
/// Bytes echo moves per copy between a socket's receive and transmit buffers.
const ECHO_CHUNK: usize = 2048;

/// The bulk services' ports and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[
        ServicePort::tcp("echo", protocol::ECHO_PORT),
        #[cfg(feature = "discard-chargen")]
        ServicePort::tcp("discard", protocol::DISCARD_PORT),
        #[cfg(feature = "discard-chargen")]
        ServicePort::tcp("chargen", protocol::CHARGEN_PORT),
    ],
    info_keys: &[key::BULK_SLOTS, key::BULK_RX_BUFFER, key::BULK_TX_BUFFER],
};

/// The bulk services' part of the [`Sizes`](crate::Sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSizes {
    /// Sockets for each bulk service (echo, discard, chargen).
    pub slots: usize,
    /// Receive buffer of each bulk socket, bytes.
    pub rx: usize,
    /// Transmit buffer of each bulk socket, bytes.
    pub tx: usize,
}

impl BulkSizes {
    /// Two sockets per service, 8 KiB each way.
    pub const DEFAULT: BulkSizes = BulkSizes {
        slots: 2,
        rx: 8 * 1024,
        tx: 8 * 1024,
    };

    /// Sockets of the three services.
    pub const fn sockets(&self) -> usize {
        BULK_SERVICES * self.slots
    }

    /// Buffer bytes of one bulk socket.
    pub const fn socket_bytes(&self) -> usize {
        self.rx + self.tx
    }

    /// Buffer bytes of every bulk socket.
    pub const fn buffer_bytes(&self) -> usize {
        self.sockets() * self.socket_bytes()
    }

    /// Refuses sizes the services cannot run with.
    pub const fn check(&self) -> Result<(), &'static str> {
        if self.slots == 0 || self.slots > MAX_BULK_SLOTS {
            return Err("bulk slots must be 1 to 64");
        }
        if self.rx == 0 || self.tx < CHARGEN_LINE_LEN {
            return Err("bulk buffers too small");
        }
        Ok(())
    }
}

/// Which bulk service a socket runs, by its index in its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    #[cfg(feature = "discard-chargen")]
    Discard,
    #[cfg(feature = "discard-chargen")]
    Chargen,
}

impl Kind {
    const ALL: [Kind; BULK_SERVICES] = [
        Kind::Echo,
        #[cfg(feature = "discard-chargen")]
        Kind::Discard,
        #[cfg(feature = "discard-chargen")]
        Kind::Chargen,
    ];

    /// Its port entry.
    fn port(self) -> &'static ServicePort {
        &DECLARED.ports[self as usize]
    }

    /// The service's name, as logs print it.
    fn name(self) -> &'static str {
        self.port().service
    }
}

/// One bulk socket and what its service remembers about the connection.
struct BulkSocket {
    handle: SocketHandle,
    kind: Kind,
    /// Position in the endless chargen stream.
    chargen_pos: u64,
    last_state: State,
}

impl HoldsSocket for BulkSocket {
    fn held(&self) -> Option<SocketHandle> {
        Some(self.handle)
    }
}

/// Every bulk socket of the device.
pub(crate) struct Bulk {
    sockets: Vec<BulkSocket, { BULK_SERVICES * MAX_BULK_SLOTS }>,
    sizes: BulkSizes,
}

impl Bulk {
    /// `sizes.slots` listening sockets for each service.
    pub fn new(factory: &mut SocketFactory<'_, '_>, sizes: &BulkSizes) -> Self {
        let mut sockets = Vec::new();
        for kind in Kind::ALL {
            for _ in 0..sizes.slots {
                // Bulk transfers want every segment acknowledged at once.
                let handle = factory.listener(sizes.rx, sizes.tx, kind.port().port);
                let socket = BulkSocket {
                    handle,
                    kind,
                    chargen_pos: 0,
                    last_state: State::Listen,
                };
                // `Sizes::check` bounds the slots by MAX_BULK_SLOTS.
                let _ = sockets.push(socket);
            }
        }
        Bulk {
            sockets,
            sizes: *sizes,
        }
    }

    /// Serves every bulk socket once. `refresh`: a reset reached a bulk
    /// port since the last poll, so a listening socket may hold a reset
    /// handshake's timers.
    fn serve_all(&mut self, cx: &mut Context<'_, '_>) {
        let refresh = cx.reset;
        let now = cx.now;
        let sockets = &mut *cx.sockets;
        let counters = &mut *cx.counters;
        let pool = &mut *cx.closing;
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
                        listen(socket, bulk.kind.port().port);
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
                            bulk.kind.name(),
                            if orderly(bulk.last_state, state) {
                                "closed"
                            } else {
                                "reset or timed out"
                            }
                        );
                    }
                    bulk.chargen_pos = 0;
                    listen(socket, bulk.kind.port().port);
                }
                _ => {
                    if was_idle {
                        counters.accepted += 1;
                        bulk.chargen_pos = 0;
                        if let Some(peer) = socket.remote_endpoint() {
                            info!("{}: accepted {}", bulk.kind.name(), socket_addr(peer));
                        }
                    }
                    match bulk.kind {
                        Kind::Echo => echo(socket),
                        #[cfg(feature = "discard-chargen")]
                        Kind::Discard => drain(socket),
                        #[cfg(feature = "discard-chargen")]
                        Kind::Chargen => {
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
                        if let Some(fresh) =
                            pool.hand_off(Class::Bulk, bulk.handle, sockets, false, counters, now)
                        {
                            bulk.handle = fresh;
                            bulk.chargen_pos = 0;
                            listen(sockets.get_mut::<tcp::Socket>(fresh), bulk.kind.port().port);
                        }
                    }
                }
            }
            bulk.last_state = sockets.get::<tcp::Socket>(bulk.handle).state();
        }
    }
}

impl Inventory for Bulk {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::tcp(&self.sockets)
    }

    fn info(&self, _view: &View<'_>, values: &mut Values) {
        let sizes = self.sizes;
        for size in [sizes.slots, sizes.rx, sizes.tx] {
            let _ = values.push(size.into());
        }
    }
}

impl Service for Bulk {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    fn every_poll(&self) -> bool {
        false
    }

    fn changed(&self, sockets: &SocketSet<'_>) -> bool {
        self.sockets
            .iter()
            .any(|b| sockets.get::<tcp::Socket>(b.handle).state() != b.last_state)
    }

    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        self.serve_all(cx);
        None
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
#[cfg(feature = "discard-chargen")]
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
