//! The UDP services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864),
//! one socket each, IPv4 and IPv6; the interface answers every other UDP
//! port with ICMP / ICMPv6 port unreachable.
//!
//! UDP has no connection, no accept and no socket per client: each service's
//! one socket takes datagrams from every sender and answers each one alone.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;

use crate::protocol::{chargen_fill, CHARGEN_LINE_LEN, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT};

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

/// The UDP services' sockets and chargen's state.
pub(crate) struct Udp {
    /// Echo, discard, chargen, in the order `NETSTAT` lists them.
    handles: [SocketHandle; UDP_SOCKETS],
    /// Chargen's random lengths (xorshift32, never zero).
    random: u32,
    /// The pattern line the next chargen answer starts with.
    line: u64,
}

/// The services' ports, in socket order.
const PORTS: [u16; UDP_SOCKETS] = [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT];

impl Udp {
    /// Binds the three services' sockets, each over `rx`/`tx` bytes and
    /// `meta` (`2 * UDP_PACKETS` entries per socket) handed out by `take`.
    pub(crate) fn new<'a>(
        sockets: &mut SocketSet<'a>,
        meta: &'a mut [udp::PacketMetadata],
        mut take: impl FnMut(usize) -> &'a mut [u8],
        seed: u64,
    ) -> Udp {
        let mut meta = meta.chunks_mut(UDP_PACKETS);
        let handles = PORTS.map(|port| {
            let rx_meta = meta.next().unwrap_or_default();
            let tx_meta = meta.next().unwrap_or_default();
            let rx = udp::PacketBuffer::new(rx_meta, take(UDP_RX_BUFFER));
            let tx = udp::PacketBuffer::new(tx_meta, take(UDP_TX_BUFFER));
            let mut socket = udp::Socket::new(rx, tx);
            // Port non-zero and the socket fresh: binding cannot fail.
            let _ = socket.bind(port);
            sockets.add(socket)
        });
        let folded = (seed ^ (seed >> 32)) as u32;
        Udp {
            handles,
            random: if folded == 0 { 0x9e37_79b9 } else { folded },
            line: 0,
        }
    }

    /// The sockets, in `NETSTAT` order.
    pub(crate) fn handles(&self) -> &[SocketHandle] {
        &self.handles
    }

    /// Answers the datagrams waiting: echo sends each back, discard drops
    /// it, chargen answers it with a random-length piece of the pattern.
    /// A datagram whose answer finds the transmit queue full is dropped
    /// (UDP promises no delivery); at most `UDP_PACKETS` per socket per call.
    pub(crate) fn poll(&mut self, sockets: &mut SocketSet<'_>) {
        let mut buf = [0u8; UDP_RX_BUFFER];
        for (index, handle) in self.handles.into_iter().enumerate() {
            let socket = sockets.get_mut::<udp::Socket>(handle);
            for _ in 0..UDP_PACKETS {
                let Ok((len, meta)) = socket.recv_slice(&mut buf) else {
                    break;
                };
                match PORTS[index] {
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
