//! The closing sockets: a connection the device is done with finishes its
//! close (FIN-WAIT, LAST-ACK, TIME-WAIT) on its own socket, apart from the lab
//! slot or service socket that served it, which listens again at once on a
//! fresh socket from this pool.
//!
//! A kernel does the same: a TIME-WAIT socket is no longer its listener's.
//! Without this, a slot would either wait for TIME-WAIT to end before it could
//! serve again, or (calling `listen()` on a socket that has not yet sent its
//! last ACK) answer the client's last FIN with a reset.
//!
//! The pool has a fixed number of sockets per buffer class (lab-sized and
//! bulk-sized, [`ClosingSizes`]).
//! When every one is busy (a burst of closes faster than TIME-WAIT's 10 s
//! can absorb), the oldest socket whose last ACK has left is recycled, as
//! Linux drops TIME-WAIT sockets beyond `tcp_max_tw_buckets`; `INFO` counts
//! them as `time_wait_recycled`. With none of those either, a slot keeps its
//! own closing socket and listens again when that close ends.

use log::{debug, info};
use smoltcp::iface::{Interface, PollIngressSingleResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::pool::reuse::{Guard, Held, HeldState};
use crate::pool::socket::{end_of_connection, listen};
use crate::status::counters::Counters;

/// How soon after a pass marks a TIME-WAIT socket of a full class
/// recyclable the pool asks for another look, for a slot that waits for a
/// socket: not at once, which would cost a poll per close under a stream of
/// connections (where the next frame brings that poll anyway).
const RIPE_LOOK: Duration = Duration::from_millis(1);

/// How many closing sockets of each buffer class the device has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosingSizes {
    /// Sockets with lab-sized buffers that finish a lab connection's close
    /// (FIN-WAIT, LAST-ACK, TIME-WAIT) while its slot serves the next client.
    pub lab: usize,
    /// Sockets with bulk-sized buffers that finish a bulk connection's close.
    pub bulk: usize,
}

impl ClosingSizes {
    /// A few of each.
    pub const DEFAULT: ClosingSizes = ClosingSizes { lab: 4, bulk: 2 };

    /// Sockets of both classes.
    pub const fn sockets(&self) -> usize {
        self.lab + self.bulk
    }
}

/// Which sockets a closing socket can stand in for: the buffers it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Lab-sized buffers: the lab's slots and backlog.
    Lab,
    /// Bulk-sized buffers: echo, discard and chargen.
    Bulk,
}

/// One socket of the closing pool. Boards declare `[ClosingSocket::EMPTY; N]`
/// storage with `N` = [`ClosingSizes::sockets`].
#[derive(Debug, Clone, Copy)]
pub struct ClosingSocket {
    handle: Option<SocketHandle>,
    class: Class,
    /// `Some(since)` while it finishes a connection's close; `None`: free,
    /// in state CLOSED, ready to listen for a slot.
    since: Option<Instant>,
    /// The TCP state last seen.
    last_state: State,
    /// The end of its connection is already counted.
    counted: bool,
    /// Since when a pass of [`ClosingPool::poll`] saw it in TIME-WAIT. Set
    /// only by that pass, which runs before the poll's egress: a socket with
    /// this set has sent its last ACK (every socket that closes acknowledges
    /// without delay, so that ACK leaves in the poll that took the FIN), and
    /// recycling it gives up only the answer to a FIN retransmitted because
    /// that ACK was lost.
    time_wait_since: Option<Instant>,
    /// Its four-tuple (local, remote) while `time_wait_since` is set: a SYN
    /// for it frees the socket ([`crate::pool::reuse`]).
    time_wait: Option<(IpEndpoint, IpEndpoint)>,
}

impl ClosingSocket {
    /// An unused entry, for static initialisation.
    pub const EMPTY: ClosingSocket = ClosingSocket {
        handle: None,
        class: Class::Lab,
        since: None,
        last_state: State::Closed,
        counted: false,
        time_wait_since: None,
        time_wait: None,
    };

    /// The four-tuple (local, remote) of its TIME-WAIT connection, once that
    /// connection's last ACK has left.
    pub(crate) fn time_wait_tuple(&self) -> Option<(IpEndpoint, IpEndpoint)> {
        self.time_wait.filter(|_| self.since.is_some())
    }
}

/// True when `socket` has nothing left to do: closed, and any reset it owed
/// has been sent (smoltcp forgets the peer once it has).
pub(crate) fn finished(socket: &tcp::Socket) -> bool {
    socket.state() == State::Closed && socket.remote_endpoint().is_none()
}

/// The closing pool: sockets that finish the closes the services hand them.
pub(crate) struct ClosingPool<'a> {
    sockets: &'a mut [ClosingSocket],
    sizes: ClosingSizes,
    /// When it next needs a look.
    deadline: Option<Instant>,
    /// A SYN held back while its TIME-WAIT socket is freed.
    held: Held,
}

impl<'a> ClosingPool<'a> {
    /// A pool over the board's entries, with `sizes` sockets made by the
    /// caller and registered with [`ClosingPool::add`].
    pub fn new(sockets: &'a mut [ClosingSocket], sizes: ClosingSizes) -> Self {
        ClosingPool {
            sockets,
            sizes,
            deadline: None,
            held: Held::EMPTY,
        }
    }

    /// True while a SYN is held back: the next frame of the device it came from.
    pub fn holds(&self) -> bool {
        self.held.state != HeldState::Empty
    }

    /// Lets smoltcp read one frame from `device` (`Interface::poll_ingress_single`),
    /// through the [`Guard`] that holds back a SYN for a TIME-WAIT socket of
    /// this pool; frees that socket before the next frame, which is then the
    /// SYN.
    pub fn ingress<D: Device + ?Sized>(
        &mut self,
        iface: &mut Interface,
        now: Instant,
        device: &mut D,
        sockets: &mut SocketSet<'_>,
    ) -> PollIngressSingleResult {
        let mut guard = Guard {
            inner: device,
            entries: &*self.sockets,
            held: &mut self.held,
        };
        let result = iface.poll_ingress_single(now, &mut guard, sockets);
        if let HeldState::Waiting(index) = self.held.state {
            self.release(index, sockets);
            self.held.state = HeldState::Ready;
        }
        result
    }

    /// Frees entry `index`'s TIME-WAIT socket at once, without a segment: a
    /// SYN came for its four-tuple.
    fn release(&mut self, index: usize, sockets: &mut SocketSet<'_>) {
        let Some(entry) = self.sockets.get_mut(index) else {
            return;
        };
        let Some(handle) = entry.handle.filter(|_| entry.time_wait_tuple().is_some()) else {
            return;
        };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() != State::TimeWait {
            return;
        }
        let port = socket.local_endpoint().map_or(0, |e| e.port);
        // TIME-WAIT is not open: listening resets it without a segment, and
        // aborting a listening socket sends nothing either.
        listen(socket, port);
        socket.abort();
        entry.since = None;
        entry.time_wait_since = None;
        entry.time_wait = None;
        entry.last_state = State::Closed;
        debug!("closing pool: a SYN for a TIME-WAIT four-tuple freed its socket");
    }

    /// Its sizes.
    pub fn sizes(&self) -> ClosingSizes {
        self.sizes
    }

    /// True if its deadline is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|at| now >= at)
    }

    /// When it next needs a look.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Registers a free (CLOSED) socket of `class`; `index` is its place in
    /// the board's storage.
    pub fn add(&mut self, index: usize, handle: SocketHandle, class: Class) {
        self.sockets[index] = ClosingSocket {
            handle: Some(handle),
            class,
            ..ClosingSocket::EMPTY
        };
    }

    /// Hands the connection on `handle` (closing, or about to) to a free
    /// socket of the pool; returns that free socket, in state CLOSED, for the
    /// caller to listen on (a recycled TIME-WAIT socket is in TIME-WAIT:
    /// `listen()` resets it without a segment). `None` when every pool socket
    /// of `class` is busy: the caller keeps its socket.
    pub fn hand_off(
        &mut self,
        class: Class,
        handle: SocketHandle,
        sockets: &SocketSet<'_>,
        counted: bool,
        counters: &mut Counters,
        now: Instant,
    ) -> Option<SocketHandle> {
        let ours = |e: &&mut ClosingSocket| e.class == class && e.handle.is_some();
        let free = self
            .sockets
            .iter_mut()
            .filter(ours)
            .find(|e| e.since.is_none());
        let entry = match free {
            Some(entry) => entry,
            None => {
                // Every one busy: recycle the oldest TIME-WAIT whose last
                // ACK has left.
                let entry = self
                    .sockets
                    .iter_mut()
                    .filter(ours)
                    .filter(|e| e.time_wait_since.is_some())
                    .min_by_key(|e| e.time_wait_since)?;
                counters.time_wait_recycled += 1;
                debug!("closing pool: full, a TIME-WAIT socket recycled");
                entry
            }
        };
        let free = entry.handle.replace(handle)?;
        let state = sockets.get::<tcp::Socket>(handle).state();
        entry.since = Some(now);
        entry.last_state = state;
        entry.counted = counted;
        // Even a socket that is in TIME-WAIT already may not have sent its
        // last ACK yet: only the pool's own pass marks it recyclable.
        entry.time_wait_since = None;
        entry.time_wait = None;
        Some(free)
    }

    /// True if a closing socket's TCP state moved since the last look (a
    /// stack timer ended TIME-WAIT, say).
    pub fn changed(&self, sockets: &SocketSet<'_>) -> bool {
        self.sockets.iter().any(|e| match (e.handle, e.since) {
            (Some(h), Some(_)) => sockets.get::<tcp::Socket>(h).state() != e.last_state,
            _ => false,
        })
    }

    /// Closing sockets busy now, by class: (lab, bulk).
    pub fn in_use(&self) -> (usize, usize) {
        let busy = |class| {
            self.sockets
                .iter()
                .filter(|e| e.class == class && e.since.is_some())
                .count()
        };
        (busy(Class::Lab), busy(Class::Bulk))
    }

    /// Entry `index` of the pool: `Some(Some(handle))` if it is busy
    /// closing, `Some(None)` if it is free, `None` past the end.
    pub fn busy_handle(&self, index: usize) -> Option<Option<SocketHandle>> {
        let entry = self.sockets.get(index)?;
        Some(entry.handle.filter(|_| entry.since.is_some()))
    }

    /// Follows every closing socket: drops what a closing peer still sends,
    /// counts each connection's end, aborts a close that takes longer than
    /// `closing` (TIME-WAIT excepted: it ends by itself), and frees sockets
    /// whose close is over. Keeps when it next needs a look
    /// ([`ClosingPool::deadline`]).
    pub fn poll(
        &mut self,
        sockets: &mut SocketSet<'_>,
        counters: &mut Counters,
        closing: Duration,
        now: Instant,
    ) {
        let mut next: Option<Instant> = None;
        // Per class (lab, bulk): a socket became recyclable in this pass, and
        // a socket is free.
        let mut ripe = [false; 2];
        let mut free = [false; 2];
        for entry in self.sockets.iter_mut() {
            let class = entry.class as usize;
            if entry.handle.is_some() && entry.since.is_none() {
                free[class] = true;
            }
            let (Some(handle), Some(since)) = (entry.handle, entry.since) else {
                continue;
            };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            drain(socket);
            let state = socket.state();
            if matches!(state, State::TimeWait | State::Closed) && !entry.counted {
                end_of_connection(entry.last_state, state, counters);
                entry.counted = true;
                log_end(socket, entry.last_state, state);
            }
            entry.last_state = state;
            if state == State::TimeWait && entry.time_wait_since.is_none() {
                entry.time_wait_since = Some(now);
                entry.time_wait = socket.local_endpoint().zip(socket.remote_endpoint());
                ripe[class] = true;
            }
            if finished(socket) {
                entry.since = None;
                entry.time_wait_since = None;
                entry.time_wait = None;
                free[class] = true;
                debug!("closing pool: a socket is free again");
                continue;
            }
            if matches!(state, State::TimeWait | State::Closed) {
                // TIME-WAIT ends on the stack's own timer; a reset in
                // flight goes with the next send.
                continue;
            }
            let deadline = since + closing;
            if now >= deadline {
                // The peer never finished closing (it ignores our FIN).
                debug!("closing pool: close timed out, aborted");
                if !entry.counted {
                    counters.timed_out += 1;
                    entry.counted = true;
                }
                socket.abort();
                entry.last_state = State::Closed;
                continue;
            }
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        if ripe.iter().zip(free).any(|(&ripe, free)| ripe && !free) {
            // A slot may wait for a socket of a full class, and one is
            // recyclable once this poll's egress has sent its last ACK. A
            // busy device polls again sooner anyway; an idle one wakes after
            // [`RIPE_LOOK`] with no frame, and every service runs.
            let look = now + RIPE_LOOK;
            next = Some(next.map_or(look, |n| n.min(look)));
        }
        self.deadline = next;
    }
}

/// Reads and drops whatever a closing peer still sends.
pub(crate) fn drain(socket: &mut tcp::Socket) {
    while socket.can_recv() {
        if !matches!(socket.recv(|b| (b.len(), b.len())), Ok(n) if n > 0) {
            break;
        }
    }
}

/// Logs how a handed-off connection ended.
fn log_end(socket: &tcp::Socket, last: State, now: State) {
    let peer = socket.remote_endpoint();
    let how = if now == State::TimeWait {
        "closed (TIME-WAIT)"
    } else if matches!(last, State::LastAck | State::Closing | State::TimeWait) {
        "closed"
    } else {
        "reset"
    };
    match peer {
        Some(peer) => info!("{} port {}: {how}", peer, socket_port(socket)),
        None => info!("port {}: connection {how}", socket_port(socket)),
    }
}

fn socket_port(socket: &tcp::Socket) -> u16 {
    socket
        .local_endpoint()
        .map_or(socket.listen_endpoint().port, |e| e.port)
}
