//! The iperf2 server on port 5001: a sink for the `iperf` 2.x client's TCP
//! test. It reads the client's header, drops the data, and closes when the
//! client does, which is when the client prints its report. A client that
//! asks the server to connect back (`-r`, `-d`) is reset at once: the device
//! opens no connections of its own.

use heapless::Vec;
use log::{info, warn};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;

use crate::pool::socket::{end_of_connection, listen};
use crate::services::service::{
    Context, Declared, HoldsSocket, Inventory, Service, ServicePort, SocketFactory, Sockets, Values,
};
use crate::status::view::View;
use crate::wire::protocol::info as key;
use crate::wire::protocol::iperf2::{FLAGS_LEN, HEADER_VERSION1};
use crate::wire::protocol::IPERF2_PORT;

/// Most sockets the iperf2 server may have.
pub const MAX_IPERF2_SOCKETS: usize = 16;
/// Transmit buffer of each iperf2 socket: the sink never sends.
pub const IPERF2_TX_BUFFER: usize = 64;

/// The iperf2 server's part of the [`Sizes`](crate::Sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iperf2Sizes {
    /// Sockets on the iperf2 port, one per client stream (0: no iperf2 server).
    pub sockets: usize,
    /// Receive buffer of each socket, bytes (the transmit buffer is
    /// [`IPERF2_TX_BUFFER`]).
    pub rx: usize,
}

impl Iperf2Sizes {
    /// Two streams with 8 KiB buffers.
    pub const DEFAULT: Iperf2Sizes = Iperf2Sizes {
        sockets: 2,
        rx: 8 * 1024,
    };

    /// No iperf2 server: what the part counts without the `iperf2` feature.
    pub const NONE: Iperf2Sizes = Iperf2Sizes {
        sockets: 0,
        ..Iperf2Sizes::DEFAULT
    };

    /// Buffer bytes of every iperf2 socket.
    pub const fn buffer_bytes(&self) -> usize {
        self.sockets * (self.rx + IPERF2_TX_BUFFER)
    }

    /// Refuses sizes the server cannot run with.
    pub const fn check(&self) -> Result<(), &'static str> {
        if self.sockets > MAX_IPERF2_SOCKETS || (self.sockets != 0 && self.rx < 64) {
            return Err("iperf2 sockets must be at most 16, with a receive buffer of at least 64");
        }
        Ok(())
    }
}

/// The iperf2 server's port and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[ServicePort::tcp("iperf2", IPERF2_PORT)],
    info_keys: &[
        key::IPERF2_SOCKETS,
        key::IPERF2_RX_BUFFER,
        key::IPERF2_TX_BUFFER,
        key::IPERF2_TESTS,
    ],
};

struct Conn {
    handle: SocketHandle,
    last_state: State,
    flags: [u8; FLAGS_LEN],
    flags_got: usize,
    bytes: u64,
}

impl HoldsSocket for Conn {
    fn held(&self) -> Option<SocketHandle> {
        Some(self.handle)
    }
}

/// The iperf2 server.
pub(crate) struct Iperf2 {
    conns: Vec<Conn, MAX_IPERF2_SOCKETS>,
    sizes: Iperf2Sizes,
    /// Connections served.
    tests: u64,
}

impl Iperf2 {
    /// `sizes.sockets` sockets listening on the iperf2 port.
    pub fn new(factory: &mut SocketFactory<'_, '_>, sizes: &Iperf2Sizes) -> Self {
        let mut conns = Vec::new();
        for _ in 0..sizes.sockets {
            let handle = factory.listener(sizes.rx, IPERF2_TX_BUFFER, IPERF2_PORT);
            // `Sizes::check` bounds the count by MAX_IPERF2_SOCKETS.
            let _ = conns.push(Conn {
                handle,
                last_state: State::Listen,
                flags: [0; FLAGS_LEN],
                flags_got: 0,
                bytes: 0,
            });
        }
        Iperf2 {
            conns,
            sizes: *sizes,
            tests: 0,
        }
    }
}

impl Inventory for Iperf2 {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::tcp(&self.conns)
    }

    fn info(&self, _view: &View<'_>, values: &mut Values) {
        let sizes = &self.sizes;
        let _ = values.push(sizes.sockets.into());
        let _ = values.push(sizes.rx.into());
        let _ = values.push(IPERF2_TX_BUFFER.into());
        let _ = values.push(self.tests.into());
    }
}

impl Service for Iperf2 {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    /// Serves every iperf2 socket once.
    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        let sockets: &mut SocketSet<'_> = cx.sockets;
        let counters = &mut *cx.counters;
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
                        self.tests += 1;
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
        None
    }
}
