//! How big the device's pools are: [`Sizes`], the board's named constants,
//! and what they add up to in sockets and buffer bytes.

pub use crate::iperf2::{IPERF2_TX_BUFFER, MAX_IPERF2_SOCKETS};
pub use crate::iperf3::{IPERF3_RESERVED_SOCKETS, MAX_IPERF3_SOCKETS};
pub use crate::limits::{BULK_SERVICES, MAX_LAB_SLOTS, MGMT_SOCKETS};
use crate::limits::{HTTP_RX_BUFFER, HTTP_SOCKETS, HTTP_TX_BUFFER};
pub use crate::udp::{UDP_CHARGEN_MAX, UDP_PACKETS, UDP_RX_BUFFER, UDP_SOCKETS, UDP_TX_BUFFER};

/// Sockets that are neither lab nor bulk: none today (ICMP echo is answered
/// by the interface itself), one for DHCPv4.
pub const EXTRA_SOCKETS: usize = 1;

/// How big the pool is. A board declares one as a `const` and sizes its
/// statics with [`Sizes::sockets`] and [`Sizes::buffer_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Lab clients served at once (sockets listening on 6666).
    pub lab_slots: usize,
    /// Further connections on 6666 that wait, accepted, for a slot to free
    /// (the listen backlog); each has lab-sized buffers.
    pub lab_backlog: usize,
    /// Receive buffer of each lab socket, bytes.
    pub lab_rx: usize,
    /// Transmit buffer of each lab socket, bytes.
    pub lab_tx: usize,
    /// Sockets for each bulk service (echo, discard, chargen).
    pub bulk_slots: usize,
    /// Receive buffer of each bulk socket, bytes.
    pub bulk_rx: usize,
    /// Transmit buffer of each bulk socket, bytes.
    pub bulk_tx: usize,
    /// Sockets on the iperf3 port: a test's control connection, its streams,
    /// and one more to tell a second client "busy" (0: no iperf3 server).
    pub iperf3_sockets: usize,
    /// Receive buffer of each iperf3 socket, bytes.
    pub iperf3_rx: usize,
    /// Transmit buffer of each iperf3 socket, bytes.
    pub iperf3_tx: usize,
    /// Sockets on the iperf2 port, one per client stream (0: no iperf2 server).
    pub iperf2_sockets: usize,
    /// Receive buffer of each iperf2 socket, bytes (the transmit buffer is
    /// [`IPERF2_TX_BUFFER`]).
    pub iperf2_rx: usize,
    /// Sockets with lab-sized buffers that finish a lab connection's close
    /// (FIN-WAIT, LAST-ACK, TIME-WAIT) while its slot serves the next client.
    pub lab_closing: usize,
    /// Sockets with bulk-sized buffers that finish a bulk connection's close.
    pub bulk_closing: usize,
}

impl Sizes {
    /// Socket slots the board must provide.
    pub const fn sockets(&self) -> usize {
        self.tcp_sockets() + UDP_SOCKETS + EXTRA_SOCKETS
    }

    /// UDP datagram metadata entries the board must provide: both
    /// directions of every UDP socket.
    pub const fn udp_packets(&self) -> usize {
        UDP_SOCKETS * 2 * UDP_PACKETS
    }

    /// Lab sockets: the serving slots and the backlog.
    pub const fn lab_sockets(&self) -> usize {
        self.lab_slots + self.lab_backlog
    }

    /// Lab states the board provides ([`Storage::lab`](crate::Storage)):
    /// the slots, the backlog, then the [`MGMT_SOCKETS`] management sockets.
    pub const fn lab_states(&self) -> usize {
        self.lab_sockets() + MGMT_SOCKETS
    }

    /// Sockets of the closing pool, both classes.
    pub const fn closing_sockets(&self) -> usize {
        self.lab_closing + self.bulk_closing
    }

    /// TCP sockets of the device (every socket but DHCP's): the lab's slots
    /// and backlog, the bulk services', the closing pool and the HTTP
    /// server's own [`HTTP_SOCKETS`].
    pub const fn tcp_sockets(&self) -> usize {
        self.lab_states()
            + BULK_SERVICES * self.bulk_slots
            + self.iperf_sockets()
            + self.closing_sockets()
            + HTTP_SOCKETS
    }

    /// Sockets of the iperf3 and iperf2 servers.
    pub const fn iperf_sockets(&self) -> usize {
        self.iperf3_sockets + self.iperf2_sockets
    }

    /// Streams one iperf3 test may open (`-P`, or twice `-P` with `--bidir`).
    pub const fn iperf3_max_streams(&self) -> usize {
        self.iperf3_sockets.saturating_sub(IPERF3_RESERVED_SOCKETS)
    }

    /// Bytes of socket buffer the board must provide.
    pub const fn buffer_bytes(&self) -> usize {
        (self.lab_states() + self.lab_closing) * (self.lab_rx + self.lab_tx)
            + (BULK_SERVICES * self.bulk_slots + self.bulk_closing) * (self.bulk_rx + self.bulk_tx)
            + self.iperf3_sockets * (self.iperf3_rx + self.iperf3_tx)
            + self.iperf2_sockets * (self.iperf2_rx + IPERF2_TX_BUFFER)
            + HTTP_SOCKETS * (HTTP_RX_BUFFER + HTTP_TX_BUFFER)
            + UDP_SOCKETS * (UDP_RX_BUFFER + UDP_TX_BUFFER)
    }
}
