//! The lab service on port 6666, and the management port 6668: a fixed
//! pool of slots, each a listening socket plus one client's line-protocol
//! state.
//!
//! Every slot listens on the lab port at once, so the pool serves as many
//! clients as it has slots; a slot listens again as soon as its client is gone:
//! a connection the device closes finishes its close on a socket of the
//! closing pool ([`crate::pool`]), and the slot takes that pool's fresh socket.
//! Output is written only when it fits the client's transmit buffer; what does
//! not fit waits in the slot (a cursor for multi-line replies, the text and the
//! recipients of a `SAY`) and is sent as the client drains its buffer. A client
//! that leaves its output unread past the slow-reader timeout is disconnected.

use core::fmt::{self, Write};
use core::net::SocketAddr;

use heapless::Vec;
use log::{debug, info, warn};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;

use smoltcp::time::Duration;

use crate::board::config::{BacklogPolicy, Config};
use crate::pool::closing::{drain, finished, Class, ClosingPool};
use crate::pool::socket::{end_of_connection, listen, orderly, socket_addr};
use crate::services::report::{self, Device};
use crate::services::service::{
    Context, Declared, HoldsSocket, Inventory, Role, Service, ServicePort, SocketFactory, Sockets,
    Value, Values,
};
use crate::status::counters::Counters;
use crate::status::line::{LineWriter, OutLine};
use crate::status::view::View;
use crate::wire::protocol::{self, info as key, Command, MAX_LINE, MAX_RESPONSE_LINE};

/// Largest lab pool the application supports (bounds per-slot bitmaps).
pub const MAX_LAB_SLOTS: usize = 2048;
/// Sockets on the management port ([`MGMT_PORT`](protocol::MGMT_PORT)),
/// apart from the lab's slots and backlog: a full lab can still be inspected
/// (`WHO`, `NETSTAT`, `INFO`, `EVENTS`). Each has lab-sized buffers.
pub const MGMT_SOCKETS: usize = 2;

/// The lab's ports and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[
        ServicePort::tcp("lab", protocol::LAB_PORT),
        ServicePort::tcp("mgmt", protocol::MGMT_PORT),
    ],
    info_keys: &[
        key::LAB_SLOTS,
        key::LAB_IN_USE,
        key::LAB_RX_BUFFER,
        key::LAB_TX_BUFFER,
        key::LAB_BACKLOG,
        key::LAB_QUEUED,
        key::BACKLOG_POLICY,
        key::CONN_BUSY,
        key::LINES_TOO_LONG,
        key::IDLE_TIMEOUT_MS,
        key::SLOW_READER_TIMEOUT_MS,
        key::HANDSHAKE_TIMEOUT_MS,
        key::MGMT_SOCKETS,
    ],
};

/// The lab's part of the [`Sizes`](crate::Sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabSizes {
    /// Lab clients served at once (sockets listening on 6666).
    pub slots: usize,
    /// Further connections on 6666 that wait, accepted, for a slot to free
    /// (the listen backlog); each has lab-sized buffers.
    pub backlog: usize,
    /// Receive buffer of each lab socket, bytes.
    pub rx: usize,
    /// Transmit buffer of each lab socket, bytes.
    pub tx: usize,
}

impl LabSizes {
    /// Eight slots, four waiting places.
    pub const DEFAULT: LabSizes = LabSizes {
        slots: 8,
        backlog: 4,
        rx: 1024,
        tx: 2048,
    };

    /// Lab sockets: the serving slots and the backlog.
    pub const fn sockets(&self) -> usize {
        self.slots + self.backlog
    }

    /// Lab states the board provides: the slots, the backlog, then the
    /// [`MGMT_SOCKETS`] management sockets.
    pub const fn states(&self) -> usize {
        self.sockets() + MGMT_SOCKETS
    }

    /// Buffer bytes of one lab socket.
    pub const fn socket_bytes(&self) -> usize {
        self.rx + self.tx
    }

    /// Buffer bytes of every lab and management socket.
    pub const fn buffer_bytes(&self) -> usize {
        self.states() * self.socket_bytes()
    }

    /// Refuses sizes the lab cannot run with.
    pub const fn check(&self) -> Result<(), &'static str> {
        if self.slots == 0 || self.sockets() > MAX_LAB_SLOTS {
            return Err("lab slots must be at least 1 and slots + backlog at most 2048");
        }
        if self.rx < 64 || self.tx < MAX_RESPONSE_LINE + 1 {
            return Err("lab buffers must hold at least one whole response line");
        }
        Ok(())
    }
}

/// What the lab counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Clients told `ERR busy` (backlog policy `busy`).
    told_busy: u64,
    /// Lines over the length limit.
    lines_too_long: u64,
}

/// Bytes a line may occupy before its LF: the limit plus a CR that is ignored.
const LINE_CAPACITY: usize = MAX_LINE + 1;
/// Words in a recipient bitmap.
const BITMAP_WORDS: usize = MAX_LAB_SLOTS / 32;
/// Free transmit space needed before a slot reads its next command: the longest
/// reply line and its LF, so that a one-line reply always fits.
const REPLY_ROOM: usize = MAX_RESPONSE_LINE + 1;

/// What a slot is doing with its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Listening for a client.
    Listening,
    /// A SYN arrived; waiting for the handshake to finish since this time.
    Handshake { since: Instant },
    /// Serving a client.
    Connected,
    /// A backlog socket holding an accepted client until a slot frees;
    /// tickets give the order of arrival.
    Waiting { ticket: u64 },
    /// Closed by the device (`BYE`, `ERR busy`, the peer's FIN answered)
    /// since this time, or aborted: the socket goes to the closing pool
    /// as soon as one is free, or listens again once its close is over.
    Closing { since: Instant },
}

/// A multi-line reply in progress, with the index of its next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    None,
    Who {
        next: usize,
    },
    Netstat {
        next: usize,
    },
    Info {
        next: usize,
    },
    /// `IFCONFIG`: interface `next` next.
    Ifconfig {
        next: usize,
    },
    /// `EVENTS`: the next event at or after sequence number `next`.
    Events {
        next: u64,
    },
    /// The backlog part of `WHO`: waiting clients after ticket `after`.
    Queue {
        after: Option<u64>,
        position: usize,
    },
}

/// What a lab socket is doing for the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabRole {
    /// Serving slot `n`.
    Slot(usize),
    /// Management socket `n` (port 6668, read-only commands).
    Mgmt(usize),
    /// Backlog socket `index`; `position` in the queue while a client waits
    /// on it (1 is served next).
    Backlog {
        index: usize,
        position: Option<usize>,
    },
}

/// One lab slot's state. Boards declare `[LabSlot::EMPTY; N]` storage.
pub struct LabSlot {
    handle: Option<SocketHandle>,
    phase: Phase,
    last_state: State,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    line: Vec<u8, LINE_CAPACITY>,
    /// `line` holds a whole command not yet run (a `SAY` waiting for the
    /// previous one to reach everybody).
    line_ready: bool,
    discarding: bool,
    reply: Reply,
    /// A `SAY` not yet delivered to every recipient: the text and who still
    /// needs it. The sender reads no further command until it is delivered.
    say: Vec<u8, MAX_LINE>,
    say_to: [u32; BITMAP_WORDS],
    say_pending: bool,
    /// Last time the client sent something or drained its output (ms).
    last_activity: Instant,
    /// Since when this slot has had output waiting and no room for it.
    blocked_since: Option<Instant>,
    /// The end of this connection is already counted (a timeout fired).
    counted: bool,
}

impl LabSlot {
    /// An unused slot, for static initialisation.
    pub const EMPTY: LabSlot = LabSlot {
        handle: None,
        phase: Phase::Listening,
        last_state: State::Listen,
        peer: None,
        local: None,
        line: Vec::new(),
        line_ready: false,
        discarding: false,
        reply: Reply::None,
        say: Vec::new(),
        say_to: [0; BITMAP_WORDS],
        say_pending: false,
        last_activity: Instant::ZERO,
        blocked_since: None,
        counted: false,
    };

    /// Forgets the client, keeping the socket handle.
    fn reset(&mut self) {
        let handle = self.handle;
        *self = LabSlot::EMPTY;
        self.handle = handle;
    }

    fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    pub(crate) fn attach(&mut self, handle: SocketHandle) {
        *self = LabSlot::EMPTY;
        self.handle = Some(handle);
    }

    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle.expect("lab slot without a socket")
    }

    /// The client of this slot, if one is being served.
    pub(crate) fn client(&self) -> Option<SocketAddr> {
        if self.is_connected() {
            self.peer
        } else {
            None
        }
    }
}

impl HoldsSocket for LabSlot {
    fn held(&self) -> Option<SocketHandle> {
        self.handle
    }
}

/// Starts serving the client of `socket` in slot `index` (management socket
/// `index` when `management`): `HELLO`.
fn welcome(
    slot: &mut LabSlot,
    (index, management): (usize, bool),
    socket: &mut tcp::Socket,
    now: Instant,
) {
    let (Some(remote), Some(local)) = (socket.remote_endpoint(), socket.local_endpoint()) else {
        return;
    };
    slot.phase = Phase::Connected;
    slot.peer = Some(socket_addr(remote));
    slot.local = Some(socket_addr(local));
    slot.last_activity = now;
    match management {
        true => info!("management {index}: accepted {}", socket_addr(remote)),
        false => info!("lab slot {index}: accepted {}", socket_addr(remote)),
    }
    let mut line = OutLine::new();
    let hello = protocol::Hello {
        version: protocol::VERSION,
        slot: index,
        management,
        peer: socket_addr(remote),
        local: socket_addr(local),
    };
    let _ = write!(LineWriter(&mut line), "{hello}");
    // The transmit buffer is empty on accept and holds a reply line.
    send_line(socket, &line);
}

/// A client's address as logs print it: plain, or `-` when unknown.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("-"),
        }
    }
}

fn room(socket: &tcp::Socket) -> usize {
    socket.send_capacity() - socket.send_queue()
}

/// Sends `line` and its LF if both fit; says whether they did.
fn send_line(socket: &mut tcp::Socket, line: &[u8]) -> bool {
    if !socket.may_send() || room(socket) < line.len() + 1 {
        return false;
    }
    // Both writes fit: room() was checked above.
    let _ = socket.send_slice(line);
    let _ = socket.send_slice(b"\n");
    true
}

/// The lab pool: `serving` slots, then the backlog, then the management
/// sockets.
pub(crate) struct Lab<'a> {
    slots: &'a mut [LabSlot],
    /// Slots that serve clients; after them, up to `mgmt_start`, the backlog.
    serving: usize,
    /// The first management socket (port 6668): from here on, `slots` are
    /// the management sockets, which answer the read-only commands only.
    mgmt_start: usize,
    policy: BacklogPolicy,
    /// The next waiting client's ticket.
    next_ticket: u64,
    /// Some slot had a connection at the end of the last poll.
    any_connection: bool,
    sizes: LabSizes,
    counts: Counts,
}

impl<'a> Lab<'a> {
    /// The slots' sockets (lab, backlog, management), listening; the
    /// backlog's are closed under the policy `refuse`.
    pub fn new(
        factory: &mut SocketFactory<'_, 'a>,
        config: &Config,
        sizes: &LabSizes,
        slots: &'a mut [LabSlot],
    ) -> Self {
        for (index, slot) in slots.iter_mut().enumerate() {
            let mut socket = factory.tcp_socket(sizes.rx, sizes.tx);
            // A lab answer carries its ACK anyway; what is left to acknowledge
            // at once is a FIN, so that a TIME-WAIT socket has sent its last
            // ACK within the poll that took the FIN (the closing pool
            // recycles it after that poll).
            socket.set_ack_delay(None);
            let management = index >= sizes.sockets();
            let port = match management {
                true => protocol::MGMT_PORT,
                false => protocol::LAB_PORT,
            };
            listen(&mut socket, port);
            let backlog = index >= sizes.slots && !management;
            if backlog && config.backlog == BacklogPolicy::Refuse {
                // No backlog: a client beyond the slots is refused.
                socket.abort();
            }
            slot.attach(factory.sockets.add(socket));
        }
        Lab {
            slots,
            serving: sizes.slots,
            mgmt_start: sizes.sockets(),
            policy: config.backlog,
            next_ticket: 0,
            any_connection: false,
            sizes: *sizes,
            counts: Counts::default(),
        }
    }
}

impl Lab<'_> {
    /// Number of clients being served.
    pub fn in_use(&self) -> usize {
        self.slots[..self.serving]
            .iter()
            .filter(|s| s.is_connected())
            .count()
    }

    /// The port lab state `index` listens on: the lab's, or the management
    /// port for a management socket.
    fn port(&self, index: usize) -> u16 {
        match index >= self.mgmt_start {
            true => protocol::MGMT_PORT,
            false => protocol::LAB_PORT,
        }
    }

    /// True if a lab socket's TCP state moved without the lab seeing it (a
    /// stack timer aborted it, say): a cheap look before a full poll.
    /// Only a slot with a connection can: a listening socket changes only on
    /// a frame for the lab port, which wakes the lab anyway.
    fn any_changed(&self, sockets: &SocketSet<'_>) -> bool {
        self.any_connection
            && self
                .slots
                .iter()
                .any(|s| sockets.get::<tcp::Socket>(s.handle()).state() != s.last_state)
    }

    /// What socket `handle` is to the lab: a serving slot, or a backlog
    /// socket (with its client's place in the queue while one waits).
    fn role_of(&self, handle: SocketHandle) -> Option<LabRole> {
        let index = self.slots.iter().position(|s| s.handle == Some(handle))?;
        if index < self.serving {
            return Some(LabRole::Slot(index));
        }
        if index >= self.mgmt_start {
            return Some(LabRole::Mgmt(index - self.mgmt_start));
        }
        let position = match self.slots[index].phase {
            Phase::Waiting { ticket } => Some(
                1 + self
                    .slots
                    .iter()
                    .filter(|s| matches!(s.phase, Phase::Waiting { ticket: t } if t < ticket))
                    .count(),
            ),
            _ => None,
        };
        Some(LabRole::Backlog {
            index: index - self.serving,
            position,
        })
    }

    /// Number of clients waiting in the backlog.
    pub fn queued(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.phase, Phase::Waiting { .. }))
            .count()
    }

    /// The waiting client with the smallest ticket above `after`.
    fn next_waiting(&self, after: Option<u64>) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s.phase {
                Phase::Waiting { ticket } if after.is_none_or(|a| ticket > a) => Some((ticket, i)),
                _ => None,
            })
            .min()
            .map(|(_, i)| i)
    }

    /// Takes slot `index` off every pending `SAY`'s recipients.
    fn unaddress(&mut self, index: usize) {
        if index >= self.serving {
            // Only serving slots are ever a SAY's recipients.
            return;
        }
        let (word, bit) = (index / 32, 1u32 << (index % 32));
        for slot in self.slots.iter_mut().filter(|s| s.say_pending) {
            slot.say_to[word] &= !bit;
        }
    }

    /// Hands each free serving slot the longest-waiting backlog connection:
    /// the two slots swap sockets, the waiting client gets its `HELLO`.
    fn promote(&mut self, sockets: &mut SocketSet<'_>, now: Instant) {
        for index in 0..self.serving {
            let free = self.slots[index].phase == Phase::Listening
                && sockets
                    .get::<tcp::Socket>(self.slots[index].handle())
                    .state()
                    == State::Listen;
            if !free {
                continue;
            }
            let Some(waiting) = self.next_waiting(None) else {
                return;
            };
            let listening = self.slots[index].handle;
            self.slots[index].handle = self.slots[waiting].handle;
            self.slots[waiting].handle = listening;
            self.slots[waiting].reset();
            debug!("lab backlog place {waiting} -> slot {index}");
            let socket = sockets.get_mut::<tcp::Socket>(self.slots[index].handle());
            self.slots[index].last_state = socket.state();
            welcome(&mut self.slots[index], (index, false), socket, now);
        }
    }

    /// Serves every slot once; returns the earliest time a timeout needs
    /// another look. `cx.reset`: a reset reached a lab port since the last
    /// poll, so a listening socket may hold a reset handshake's timers.
    fn serve_all(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        let now = cx.now;
        for index in 0..self.slots.len() {
            self.track(index, cx.sockets, cx.counters, now, cx.reset);
        }
        self.promote(cx.sockets, now);
        for index in (0..self.serving).chain(self.mgmt_start..self.slots.len()) {
            if self.slots[index].is_connected() {
                self.serve_client(index, cx);
            }
        }
        let said = self.deliver_says(cx.sockets, now);
        let timed_out = cx.counters.timed_out;
        let mut next: Option<Instant> = None;
        for index in 0..self.slots.len() {
            if let Some(at) = self.check_timeouts(index, cx.sockets, cx.view, cx.counters, now) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for index in 0..self.slots.len() {
            self.hand_off(index, cx.sockets, cx.closing, cx.counters, now);
        }
        // Work that this poll made possible and no frame will announce: a
        // sender whose SAY just reached everybody has its next command to
        // run; a connection a timeout just ended takes its pending SAYs and
        // its slot with it. Look again at once.
        if said || cx.counters.timed_out != timed_out {
            next = Some(now);
        }
        self.any_connection = self.slots.iter().any(|s| s.phase != Phase::Listening);
        next
    }

    /// True if slot `index` may listen: a serving slot and a management
    /// socket always, a backlog place unless the policy refuses clients
    /// beyond the slots.
    fn may_listen(&self, index: usize) -> bool {
        index < self.serving || index >= self.mgmt_start || self.policy != BacklogPolicy::Refuse
    }

    /// Puts slot `index` back to listening on a fresh socket state (its own
    /// socket, whose connection is over).
    fn listen_again(&mut self, index: usize, sockets: &mut SocketSet<'_>) {
        let may_listen = self.may_listen(index);
        let port = self.port(index);
        let slot = &mut self.slots[index];
        slot.reset();
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle());
        if may_listen {
            listen(socket, port);
            if index < self.serving {
                info!("lab slot {index}: listening again");
            } else {
                debug!("lab backlog place {index}: listening again");
            }
        }
        slot.last_state = socket.state();
    }

    /// A slot closing its connection hands the socket to the closing pool
    /// and listens again on the pool's free socket, if one is free.
    fn hand_off(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'_>,
        pool: &mut ClosingPool<'_>,
        counters: &mut Counters,
        now: Instant,
    ) {
        let slot = &self.slots[index];
        if !matches!(slot.phase, Phase::Closing { .. }) {
            return;
        }
        let handle = slot.handle();
        if sockets.get::<tcp::Socket>(handle).state() == State::Closed {
            // Aborted (its reset goes out with the next send) or already
            // over: the slot takes it back itself.
            return;
        }
        let Some(fresh) = pool.hand_off(Class::Lab, handle, sockets, slot.counted, counters, now)
        else {
            return;
        };
        self.unaddress(index);
        self.slots[index].handle = Some(fresh);
        self.listen_again(index, sockets);
    }

    /// Follows the socket's TCP state: accepts, notices the end of a
    /// connection and puts the slot back to listening.
    fn track(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'_>,
        counters: &mut Counters,
        now: Instant,
        refresh: bool,
    ) {
        let served = matches!(
            self.slots[index].phase,
            Phase::Connected | Phase::Closing { .. }
        );
        let state = sockets
            .get::<tcp::Socket>(self.slots[index].handle())
            .state();
        if served && matches!(state, State::Listen | State::Closed | State::TimeWait) {
            // Its client is gone: a SAY still on its way must not reach the
            // next client this slot serves.
            self.unaddress(index);
        }
        match state {
            State::Listen => {
                if self.slots[index].phase != Phase::Listening || refresh {
                    // A handshake the peer reset: smoltcp listens again by
                    // itself but keeps that handshake's timers (a backed-off
                    // retransmission timeout). Start from a fresh state.
                    let port = self.port(index);
                    let socket = sockets.get_mut::<tcp::Socket>(self.slots[index].handle());
                    socket.abort();
                    listen(socket, port);
                    self.slots[index].reset();
                }
            }
            State::Closed => {
                let socket = sockets.get::<tcp::Socket>(self.slots[index].handle());
                if !finished(socket) {
                    // An abort whose reset is not sent yet: next time.
                    self.slots[index].last_state = state;
                    return;
                }
                let slot = &mut self.slots[index];
                // Only accepted connections are counted as ended: a handshake
                // the stack gave up on was never one.
                let accepted = !matches!(slot.phase, Phase::Listening | Phase::Handshake { .. });
                if accepted && !slot.counted {
                    end_of_connection(slot.last_state, state, counters);
                    let how = if orderly(slot.last_state, state) {
                        "closed"
                    } else {
                        "reset or timed out"
                    };
                    info!("lab slot {index}: {} {how}", Peer(slot.peer));
                }
                let was_idle = slot.phase == Phase::Listening;
                if was_idle && !self.may_listen(index) {
                    self.slots[index].last_state = state;
                    return;
                }
                self.listen_again(index, sockets);
                return;
            }
            State::TimeWait => {
                // Closed both ways while the slot still served (a
                // simultaneous close): the close goes to the pool like any
                // other, or ends here.
                let slot = &mut self.slots[index];
                if !matches!(slot.phase, Phase::Closing { .. }) {
                    slot.phase = Phase::Closing { since: now };
                }
            }
            State::SynReceived => {
                let slot = &mut self.slots[index];
                if slot.phase == Phase::Listening {
                    slot.phase = Phase::Handshake { since: now };
                }
            }
            _ => self.follow_open(index, sockets, counters, now),
        }
        self.slots[index].last_state = state;
    }

    /// A socket with a connection (ESTABLISHED or later): accepts it into a
    /// slot, the backlog or `ERR busy`, and closes a waiting client's side
    /// when it gives up.
    fn follow_open(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'_>,
        counters: &mut Counters,
        now: Instant,
    ) {
        let slot_free = |lab: &Self, sockets: &SocketSet<'_>| {
            (0..lab.serving).any(|i| {
                lab.slots[i].phase == Phase::Listening
                    && sockets.get::<tcp::Socket>(lab.slots[i].handle()).state() == State::Listen
            })
        };
        let backlog = (self.serving..self.mgmt_start).contains(&index);
        let busy_policy = backlog
            && self.policy == BacklogPolicy::Busy
            && matches!(
                self.slots[index].phase,
                Phase::Listening | Phase::Handshake { .. }
            )
            && !slot_free(self, sockets);
        let slot = &mut self.slots[index];
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle());
        match slot.phase {
            Phase::Listening | Phase::Handshake { .. } => {
                let Some(remote) = socket.remote_endpoint() else {
                    return;
                };
                counters.accepted += 1;
                if index < self.serving {
                    welcome(slot, (index, false), socket, now);
                } else if !backlog {
                    welcome(slot, (index - self.mgmt_start, true), socket, now);
                } else if busy_policy {
                    slot.peer = Some(socket_addr(remote));
                    send_line(socket, protocol::ERR_BUSY.as_bytes());
                    socket.close();
                    slot.phase = Phase::Closing { since: now };
                    self.counts.told_busy += 1;
                    info!(
                        "lab: {}: every slot busy, told ERR busy",
                        socket_addr(remote)
                    );
                } else {
                    // Waits for a slot (or, a slot being free but its socket
                    // later in the socket set than this one, is promoted to
                    // it in this same poll).
                    slot.peer = Some(socket_addr(remote));
                    slot.phase = Phase::Waiting {
                        ticket: self.next_ticket,
                    };
                    self.next_ticket += 1;
                    info!("lab backlog: {} waits for a slot", socket_addr(remote));
                }
            }
            Phase::Waiting { .. } if !socket.may_recv() => {
                // The client gave up waiting (sent FIN): close our side.
                socket.close();
                slot.phase = Phase::Closing { since: now };
            }
            _ => {}
        }
    }

    /// Sends what is pending for a connected slot, then reads and answers
    /// commands while a reply is sure to fit.
    fn serve_client(&mut self, index: usize, cx: &mut Context<'_, '_>) {
        let now = cx.now;
        let handle = self.slots[index].handle();
        if room(cx.sockets.get::<tcp::Socket>(handle)) >= REPLY_ROOM {
            self.slots[index].blocked_since = None;
        }
        loop {
            if !self.flush_reply(index, cx) {
                self.slots[index].blocked_since.get_or_insert(now);
                break;
            }
            let socket = cx.sockets.get_mut::<tcp::Socket>(handle);
            if !socket.may_send() {
                break;
            }
            if room(socket) < REPLY_ROOM {
                self.slots[index].blocked_since.get_or_insert(now);
                break;
            }
            let slot = &mut self.slots[index];
            if !slot.line_ready {
                match read_line(slot, socket, &mut self.counts.lines_too_long, now) {
                    None => break,
                    Some(LineEnd::TooLong) => {
                        send_line(socket, protocol::ERR_TOO_LONG.as_bytes());
                        continue;
                    }
                    Some(LineEnd::Complete) => slot.line_ready = true,
                }
            }
            // One sender's FROM lines reach each recipient in order: its next
            // SAY waits until the previous one reached everybody. Other
            // commands go on.
            if slot.say_pending && matches!(Command::parse(&slot.line), Command::Say(_)) {
                break;
            }
            slot.line_ready = false;
            let line: Vec<u8, LINE_CAPACITY> = core::mem::take(&mut slot.line);
            self.execute(index, &line, cx.sockets, now);
            if self.slots[index].phase != Phase::Connected {
                break;
            }
        }
        // A peer that has finished sending and has been answered: close our side.
        let socket = cx.sockets.get_mut::<tcp::Socket>(handle);
        let slot = &mut self.slots[index];
        if slot.phase == Phase::Connected
            && !socket.may_recv()
            && slot.reply == Reply::None
            && !slot.say_pending
            && !slot.line_ready
        {
            socket.close();
            slot.phase = Phase::Closing { since: now };
        }
    }

    /// Writes as much of the pending multi-line reply as fits; true once
    /// nothing is pending.
    fn flush_reply(&mut self, index: usize, cx: &mut Context<'_, '_>) -> bool {
        let handle = self.slots[index].handle();
        loop {
            let mut line = OutLine::new();
            let mut out = LineWriter(&mut line);
            let (done, advance) = match self.slots[index].reply {
                Reply::None => return true,
                Reply::Who { next } => {
                    let serving = &self.slots[next.min(self.serving)..self.serving];
                    match serving.iter().position(|s| s.client().is_some()) {
                        Some(offset) => {
                            let slot = next + offset;
                            let peer = self.slots[slot].peer.expect("connected slot has a peer");
                            let _ = write!(out, "{}", protocol::WhoRow { slot, peer });
                            (false, Reply::Who { next: slot + 1 })
                        }
                        None => match self.next_waiting(None) {
                            Some(_) => {
                                self.slots[index].reply = Reply::Queue {
                                    after: None,
                                    position: 1,
                                };
                                continue;
                            }
                            None => (true, Reply::None),
                        },
                    }
                }
                Reply::Queue { after, position } => match self.next_waiting(after) {
                    Some(waiting) => {
                        let slot = &self.slots[waiting];
                        let ticket = match slot.phase {
                            Phase::Waiting { ticket } => ticket,
                            _ => unreachable!("next_waiting returns waiting slots"),
                        };
                        let peer = slot.peer.expect("waiting slot has a peer");
                        let _ = write!(out, "{}", protocol::WaitRow { position, peer });
                        (
                            false,
                            Reply::Queue {
                                after: Some(ticket),
                                position: position + 1,
                            },
                        )
                    }
                    None => (true, Reply::None),
                },
                Reply::Netstat { next } => {
                    let row = self.device(cx).netstat_row(cx.sockets, next, &mut out);
                    match row {
                        Some(next) => (false, Reply::Netstat { next }),
                        None => (true, Reply::None),
                    }
                }
                Reply::Events { next } => match report::event_row(cx.view, next, &mut out) {
                    Some(next) => (false, Reply::Events { next }),
                    None => (true, Reply::None),
                },
                Reply::Ifconfig { next } => {
                    if report::iface_row(cx.view, next, &mut out) {
                        (false, Reply::Ifconfig { next: next + 1 })
                    } else {
                        (true, Reply::None)
                    }
                }
                Reply::Info { next } => {
                    if self.device(cx).info_line(next, &mut out) {
                        (false, Reply::Info { next: next + 1 })
                    } else {
                        (true, Reply::None)
                    }
                }
            };
            if done {
                line.clear();
                line.extend_from_slice(protocol::END.as_bytes()).ok();
            }
            let socket = cx.sockets.get_mut::<tcp::Socket>(handle);
            if !send_line(socket, &line) {
                return false;
            }
            // Output moves: whatever its pace, this is no stalled reader.
            self.slots[index].blocked_since = None;
            self.slots[index].reply = advance;
        }
    }

    /// Runs one command line of slot `index`.
    fn execute(&mut self, index: usize, line: &[u8], sockets: &mut SocketSet<'_>, now: Instant) {
        let handle = self.slots[index].handle();
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let management = index >= self.mgmt_start;
        let serving = self.serving;
        let slot = &mut self.slots[index];
        match Command::parse(line) {
            Command::Empty => {}
            Command::Echo(_) | Command::Say(_) if management => {
                send_line(socket, protocol::ERR_READ_ONLY.as_bytes());
            }
            Command::Echo(text) => {
                send_line(socket, text);
            }
            Command::Say(text) => {
                send_line(socket, protocol::OK.as_bytes());
                slot.say.clear();
                // The text is at most MAX_LINE bytes: the line was.
                slot.say.extend_from_slice(text).ok();
                let mut any = false;
                let mut bitmap = [0u32; BITMAP_WORDS];
                for (other, s) in self.slots[..serving].iter().enumerate() {
                    if other != index && s.is_connected() {
                        bitmap[other / 32] |= 1 << (other % 32);
                        any = true;
                    }
                }
                let slot = &mut self.slots[index];
                slot.say_to = bitmap;
                slot.say_pending = any;
            }
            Command::Who => slot.reply = Reply::Who { next: 0 },
            Command::Netstat => slot.reply = Reply::Netstat { next: 0 },
            Command::Info => slot.reply = Reply::Info { next: 0 },
            Command::Ifconfig => slot.reply = Reply::Ifconfig { next: 0 },
            Command::Events(since) => slot.reply = Reply::Events { next: since },
            Command::Quit => {
                send_line(socket, protocol::BYE.as_bytes());
                socket.close();
                slot.phase = Phase::Closing { since: now };
                info!("lab slot {index}: {} said QUIT", Peer(slot.peer));
            }
            Command::Unknown => {
                send_line(socket, protocol::ERR_UNKNOWN.as_bytes());
            }
        }
    }

    /// Delivers pending `SAY`s as `FROM` lines to recipients with room and no
    /// multi-line reply in progress.
    /// Returns true if a `SAY` finished, so that its sender's next command
    /// can run.
    fn deliver_says(&mut self, sockets: &mut SocketSet<'_>, now: Instant) -> bool {
        let mut finished = false;
        for sender in 0..self.slots.len() {
            if !self.slots[sender].say_pending {
                continue;
            }
            let from = self.slots[sender].peer;
            let mut line = OutLine::new();
            if let Some(from) = from {
                let _ = write!(LineWriter(&mut line), "{} {from} ", protocol::FROM);
            }
            line.extend_from_slice(&self.slots[sender].say).ok();
            let mut remaining = false;
            for word in 0..BITMAP_WORDS {
                let mut bits = self.slots[sender].say_to[word];
                while bits != 0 {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let target = word * 32 + bit;
                    let delivered = match self.slots.get(target) {
                        Some(t) if t.is_connected() => {
                            t.reply == Reply::None && {
                                let socket = sockets.get_mut::<tcp::Socket>(t.handle());
                                send_line(socket, &line)
                            }
                        }
                        // Gone: nothing to deliver.
                        _ => true,
                    };
                    if delivered {
                        self.slots[sender].say_to[word] &= !(1 << bit);
                        if let Some(target) = self.slots.get_mut(target) {
                            target.blocked_since = None;
                        }
                    } else {
                        remaining = true;
                        self.slots[target].blocked_since.get_or_insert(now);
                    }
                }
            }
            self.slots[sender].say_pending = remaining;
            finished |= !remaining;
        }
        finished
    }

    /// Applies the handshake, idle and slow-reader timeouts to one slot;
    /// returns when it next needs checking.
    fn check_timeouts(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'_>,
        view: &View,
        counters: &mut Counters,
        now: Instant,
    ) -> Option<Instant> {
        let timeouts = view.config.timeouts;
        let port = self.port(index);
        let slot = &mut self.slots[index];
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle.expect("slot has a socket"));
        match slot.phase {
            Phase::Handshake { since } => {
                let deadline = since + ms(timeouts.handshake_ms);
                if now < deadline {
                    return Some(deadline);
                }
                info!("lab slot {index}: handshake timed out; listening again");
                counters.timed_out += 1;
                socket.abort();
                slot.reset();
                listen(socket, port);
                None
            }
            Phase::Connected => {
                if let Some(since) = slot.blocked_since {
                    let deadline = since + ms(timeouts.slow_reader_ms);
                    if now >= deadline {
                        warn!(
                            "lab slot {index}: {} left its output unread for {} ms: disconnected",
                            Peer(slot.peer),
                            timeouts.slow_reader_ms
                        );
                        counters.timed_out += 1;
                        socket.abort();
                        slot.phase = Phase::Closing { since: now };
                        slot.counted = true;
                        return None;
                    }
                }
                // A client reading a reply or with a command still to run is
                // not idle; a slow reader is the slow-reader timeout's business.
                if socket.send_queue() > 0
                    || slot.reply != Reply::None
                    || slot.say_pending
                    || slot.line_ready
                {
                    slot.last_activity = now;
                }
                let idle_deadline = slot.last_activity + ms(timeouts.idle_ms);
                if now >= idle_deadline {
                    info!("lab slot {index}: {} idle: BYE idle", Peer(slot.peer));
                    counters.timed_out += 1;
                    send_line(socket, protocol::BYE_IDLE.as_bytes());
                    socket.close();
                    slot.phase = Phase::Closing { since: now };
                    slot.counted = true;
                    return None;
                }
                let slow = slot
                    .blocked_since
                    .map(|since| since + ms(timeouts.slow_reader_ms));
                Some(slow.map_or(idle_deadline, |s| s.min(idle_deadline)))
            }
            Phase::Closing { since } => {
                // Anything a closing client still sends is dropped.
                drain(socket);
                if matches!(socket.state(), State::TimeWait | State::Closed) {
                    // TIME-WAIT ends on the stack's timer; CLOSED is the
                    // slot's to take back.
                    return None;
                }
                let deadline = since + ms(timeouts.closing_ms);
                if now < deadline {
                    return Some(deadline);
                }
                // The client never finished closing (it ignores our FIN):
                // take the slot back.
                info!("lab slot {index}: close timed out: aborted");
                if !slot.counted {
                    counters.timed_out += 1;
                    slot.counted = true;
                }
                socket.abort();
                None
            }
            Phase::Listening | Phase::Waiting { .. } => None,
        }
    }
}

/// `Duration::from_millis`, for the timeouts the configuration gives in ms.
const fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

impl Lab<'_> {
    /// The whole device as this poll sees it, for `NETSTAT` and `INFO`.
    fn device<'r, 'b>(&'r self, cx: &'r Context<'_, 'b>) -> Device<'r, 'b> {
        Device {
            now: cx.now,
            view: cx.view,
            counters: cx.counters,
            closing: cx.closing,
            peers: cx.peers,
            me: self,
        }
    }
}

impl Inventory for Lab<'_> {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::tcp(&self.slots)
    }

    fn info(&self, view: &View<'_>, values: &mut Values) {
        let s = &self.sizes;
        let t = &view.config.timeouts;
        values.extend([
            Value::from(s.slots),
            self.in_use().into(),
            s.rx.into(),
            s.tx.into(),
            s.backlog.into(),
            self.queued().into(),
            Value::Text(self.policy.name()),
            self.counts.told_busy.into(),
            self.counts.lines_too_long.into(),
            t.idle_ms.into(),
            t.slow_reader_ms.into(),
            t.handshake_ms.into(),
            MGMT_SOCKETS.into(),
        ]);
    }

    fn role(&self, handle: SocketHandle) -> Option<Role> {
        let (name, slot, position) = match self.role_of(handle)? {
            LabRole::Slot(n) => ("slot", n, None),
            LabRole::Mgmt(n) => ("mgmt", n, None),
            LabRole::Backlog { index, position } => ("backlog", index, position),
        };
        Some(Role {
            name,
            slot: Some(slot),
            position,
        })
    }
}

impl Service for Lab<'_> {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    fn every_poll(&self) -> bool {
        false
    }

    fn changed(&self, sockets: &SocketSet<'_>) -> bool {
        self.any_changed(sockets)
    }

    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        self.serve_all(cx)
    }
}

/// How a read of the receive buffer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    /// A whole line is in `slot.line`, terminator and CR removed.
    Complete,
    /// The line went over the limit; the rest of it will be discarded.
    TooLong,
}

/// Moves bytes from the socket into the slot's line buffer up to the next LF
/// or overflow. `None`: no whole line yet (everything received was consumed).
fn read_line(
    slot: &mut LabSlot,
    socket: &mut tcp::Socket,
    too_long: &mut u64,
    now: Instant,
) -> Option<LineEnd> {
    // Two passes at most: the receive ring may hand its bytes out in two pieces.
    for _ in 0..2 {
        let result = socket.recv(|buf| {
            for (i, &byte) in buf.iter().enumerate() {
                if byte == b'\n' {
                    if slot.discarding {
                        slot.discarding = false;
                        continue;
                    }
                    if slot.line.last() == Some(&b'\r') {
                        slot.line.pop();
                    }
                    if slot.line.len() > MAX_LINE {
                        slot.line.clear();
                        return (i + 1, (i + 1, Some(LineEnd::TooLong)));
                    }
                    return (i + 1, (i + 1, Some(LineEnd::Complete)));
                }
                if slot.discarding {
                    continue;
                }
                if slot.line.push(byte).is_err() {
                    slot.line.clear();
                    slot.discarding = true;
                    return (i + 1, (i + 1, Some(LineEnd::TooLong)));
                }
            }
            (buf.len(), (buf.len(), None))
        });
        let Ok((consumed, end)) = result else {
            return None;
        };
        if consumed > 0 {
            slot.last_activity = now;
        }
        if end == Some(LineEnd::TooLong) {
            *too_long += 1;
        }
        if end.is_some() || !socket.can_recv() {
            return end;
        }
    }
    None
}
