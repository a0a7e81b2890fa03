//! The UDP services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864),
//! one socket each, IPv4 and IPv6; the interface answers every other UDP
//! port with ICMP / ICMPv6 port unreachable.
//!
//! UDP has no connection, no accept and no socket per client: each service's
//! one socket takes datagrams from every sender and answers each one alone.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::time::Instant;

use crate::services::service::{
    Context, Declared, Footprint, Inventory, Service, ServicePort, SocketFactory, Sockets, Values,
};
use crate::status::view::View;
use crate::wire::protocol::info as key;
use crate::wire::protocol::{
    chargen_fill, CHARGEN_LINE_LEN, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT,
};

/// UDP sockets of the device: echo, discard, chargen.
pub const UDP_SOCKETS: usize = 3;
/// Receive buffer of each UDP socket, bytes: the largest datagram a service
/// takes (a bigger one is dropped by the stack).
pub const UDP_RX_BUFFER: usize = 2048;
/// Transmit buffer of each UDP socket, bytes.
pub const UDP_TX_BUFFER: usize = 2048;
/// Datagrams each UDP socket queues per direction.
pub const UDP_PACKETS: usize = 4;
/// Largest chargen answer, bytes: RFC 864 answers a UDP datagram with "a
/// random number between 0 and 512" characters.
pub const UDP_CHARGEN_MAX: usize = 512;

/// The UDP services' ports, in socket order, and `INFO` keys.
pub const DECLARED: Declared = Declared {
    ports: &[
        ServicePort::udp("echo", ECHO_PORT),
        ServicePort::udp("discard", DISCARD_PORT),
        ServicePort::udp("chargen", CHARGEN_PORT),
    ],
    info_keys: &[
        key::UDP_SOCKETS,
        key::UDP_RX_BUFFER,
        key::UDP_TX_BUFFER,
        key::UDP_PACKETS,
        key::UDP_CHARGEN_MAX,
    ],
};

/// What the UDP services take: fixed.
pub const FOOTPRINT: Footprint = Footprint {
    tcp_sockets: 0,
    udp_sockets: UDP_SOCKETS,
    udp_packets: UDP_SOCKETS * 2 * UDP_PACKETS,
    buffer_bytes: UDP_SOCKETS * (UDP_RX_BUFFER + UDP_TX_BUFFER),
};

/// The UDP services' sockets and chargen's state.
pub(crate) struct Udp {
    /// Echo, discard, chargen, in the order `NETSTAT` lists them.
    handles: [SocketHandle; UDP_SOCKETS],
    /// Chargen's random lengths (xorshift32, never zero).
    random: u32,
    /// The pattern line the next chargen answer starts with.
    line: u64,
}

impl Udp {
    /// Binds the three services' sockets; `seed` starts chargen's lengths.
    pub(crate) fn new(factory: &mut SocketFactory<'_, '_>, seed: u64) -> Udp {
        let handles = core::array::from_fn(|index| {
            factory.udp(
                UDP_RX_BUFFER,
                UDP_TX_BUFFER,
                UDP_PACKETS,
                DECLARED.ports[index].port,
            )
        });
        let folded = (seed ^ (seed >> 32)) as u32;
        Udp {
            handles,
            random: if folded == 0 { 0x9e37_79b9 } else { folded },
            line: 0,
        }
    }

    /// Answers the datagrams waiting: echo sends each back, discard drops
    /// it, chargen answers it with a random-length piece of the pattern.
    /// A datagram whose answer finds the transmit queue full is dropped
    /// (UDP promises no delivery); at most `UDP_PACKETS` per socket per call.
    fn answer(&mut self, cx: &mut Context<'_, '_>) {
        let mut buf = [0u8; UDP_RX_BUFFER];
        for (index, handle) in self.handles.into_iter().enumerate() {
            let socket = cx.sockets.get_mut::<udp::Socket>(handle);
            for _ in 0..UDP_PACKETS {
                let Ok((len, meta)) = socket.recv_slice(&mut buf) else {
                    break;
                };
                match DECLARED.ports[index].port {
                    ECHO_PORT => {
                        let _ = socket.send_slice(&buf[..len], meta);
                    }
                    CHARGEN_PORT => {
                        let size = self.next_len();
                        let start = self.line * CHARGEN_LINE_LEN as u64;
                        self.line += 1;
                        let _ = socket.send_with(size, meta, |out| {
                            chargen_fill(start, &mut out[..size]);
                            size
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// A length in 0..=`UDP_CHARGEN_MAX`.
    fn next_len(&mut self) -> usize {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.random = x;
        x as usize % (UDP_CHARGEN_MAX + 1)
    }
}

impl Inventory for Udp {
    fn sockets(&self) -> Sockets<'_> {
        Sockets::udp(&self.handles)
    }

    fn info(&self, _view: &View<'_>, values: &mut Values) {
        let fixed = [
            UDP_SOCKETS,
            UDP_RX_BUFFER,
            UDP_TX_BUFFER,
            UDP_PACKETS,
            UDP_CHARGEN_MAX,
        ];
        values.extend(fixed.map(Into::into));
    }
}

impl Service for Udp {
    fn inventory(&self) -> &dyn Inventory {
        self
    }

    fn poll(&mut self, cx: &mut Context<'_, '_>) -> Option<Instant> {
        self.answer(cx);
        None
    }
}
