//! The iperf2 server on port 5001: a sink for the `iperf` 2.x client's TCP
//! test. It reads the client's header, drops the data, and closes when the
//! client does, which is when the client prints its report. A client that
//! asks the server to connect back (`-r`, `-d`) is reset at once: the device
//! opens no connections of its own.

use heapless::Vec;
use log::{info, warn};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};

use crate::counters::Counters;
use crate::protocol::iperf2::{FLAGS_LEN, HEADER_VERSION1};
use crate::protocol::IPERF2_PORT;
use crate::sock::{end_of_connection, listen};

/// Most sockets the iperf2 server may have.
pub const MAX_IPERF2_SOCKETS: usize = 16;
/// Transmit buffer of each iperf2 socket: the sink never sends.
pub const IPERF2_TX_BUFFER: usize = 64;

struct Conn {
    handle: SocketHandle,
    last_state: State,
    flags: [u8; FLAGS_LEN],
    flags_got: usize,
    bytes: u64,
}

/// The iperf2 server.
pub(crate) struct Iperf2 {
    conns: Vec<Conn, MAX_IPERF2_SOCKETS>,
}

impl Iperf2 {
    pub const fn new() -> Self {
        Iperf2 { conns: Vec::new() }
    }

    /// Registers a socket listening on the iperf2 port.
    pub fn add(&mut self, handle: SocketHandle) {
        // The caller checked the count against MAX_IPERF2_SOCKETS.
        let _ = self.conns.push(Conn {
            handle,
            last_state: State::Listen,
            flags: [0; FLAGS_LEN],
            flags_got: 0,
            bytes: 0,
        });
    }

    /// Serves every iperf2 socket once.
    pub fn poll(&mut self, sockets: &mut SocketSet<'_>, counters: &mut Counters) {
        for conn in self.conns.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            let state = socket.state();
            let was_idle = matches!(conn.last_state, State::Listen | State::SynReceived);
            match state {
                State::Listen | State::SynReceived => {}
                State::Closed | State::TimeWait => {
                    if !was_idle {
                        end_of_connection(conn.last_state, state, counters);
                        info!("iperf2: {} bytes received", conn.bytes);
                    }
                    listen(socket, IPERF2_PORT);
                    conn.last_state = State::Listen;
                    continue;
                }
                _ => {
                    if was_idle {
                        counters.accepted += 1;
                        counters.iperf2_tests += 1;
                        conn.flags_got = 0;
                        conn.bytes = 0;
                    }
                    if conn.flags_got < FLAGS_LEN {
                        if let Ok(n) = socket.recv_slice(&mut conn.flags[conn.flags_got..]) {
                            conn.flags_got += n;
                            conn.bytes += n as u64;
                        }
                        if conn.flags_got == FLAGS_LEN
                            && u32::from_be_bytes(conn.flags) & HEADER_VERSION1 != 0
                        {
                            warn!("iperf2: the client asks for a connection back (-r/-d): reset");
                            socket.abort();
                            conn.last_state = State::Established;
                            continue;
                        }
                    }
                    while socket.can_recv() {
                        match socket.recv(|b| (b.len(), b.len())) {
                            Ok(n) if n > 0 => conn.bytes += n as u64,
                            _ => break,
                        }
                    }
                    // The client has finished: close, and its report appears.
                    if !socket.may_recv() && state == State::CloseWait {
                        socket.close();
                    }
                }
            }
            conn.last_state = socket.state();
        }
    }
}
