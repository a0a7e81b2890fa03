//! TCP socket helpers every service shares: listening again, the address a
//! socket's endpoint prints as, the RFC 793 name of its state, and how a
//! connection ended.

use core::net::SocketAddr;

use smoltcp::socket::tcp::{self, State};

use crate::status::counters::Counters;
use crate::wire::protocol::state;

/// Converts a smoltcp endpoint to the `SocketAddr` the protocol prints.
pub(crate) fn socket_addr(endpoint: smoltcp::wire::IpEndpoint) -> SocketAddr {
    SocketAddr::new(endpoint.addr.into(), endpoint.port)
}

/// Puts a closed socket back to listening on `port`.
///
/// Kept out of line in every build: the crash tests find it by name in the
/// image and patch it to fault while the services start.
#[inline(never)]
pub(crate) fn listen(socket: &mut tcp::Socket, port: u16) {
    if socket.is_open() {
        socket.abort();
    }
    // Fails only for port 0 or an open socket; neither happens here.
    let _ = socket.listen(port);
}

/// Counts how a connection ended, from the last state seen before it closed.
pub(crate) fn end_of_connection(last: State, now: State, counters: &mut Counters) {
    if orderly(last, now) {
        counters.closed += 1;
    } else {
        counters.reset += 1;
    }
}

/// True if a connection whose socket was last seen in `last` and is now in
/// `now` ended with FIN both ways.
pub(crate) fn orderly(last: State, now: State) -> bool {
    now == State::TimeWait
        || matches!(
            last,
            State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
                | State::TimeWait
        )
}

/// RFC 793's name of a TCP state, as `NETSTAT` prints it.
pub(crate) fn state_name(state: State) -> &'static str {
    match state {
        State::Closed => state::CLOSED,
        State::Listen => state::LISTEN,
        State::SynSent => state::SYN_SENT,
        State::SynReceived => state::SYN_RECEIVED,
        State::Established => state::ESTABLISHED,
        State::FinWait1 => state::FIN_WAIT_1,
        State::FinWait2 => state::FIN_WAIT_2,
        State::CloseWait => state::CLOSE_WAIT,
        State::Closing => state::CLOSING,
        State::LastAck => state::LAST_ACK,
        State::TimeWait => state::TIME_WAIT,
    }
}
