//! The fixed storage a board hands the application: sizes as named constants,
//! socket slots, per-slot lab state and one byte area cut into socket buffers.

use smoltcp::iface::SocketStorage;

use crate::http;
pub use crate::iperf2::{IPERF2_TX_BUFFER, MAX_IPERF2_SOCKETS};
pub use crate::iperf3::{IPERF3_RESERVED_SOCKETS, MAX_IPERF3_SOCKETS};
use crate::lab::LabSlot;
use crate::pool::ClosingSocket;
pub use crate::udp::{UDP_CHARGEN_MAX, UDP_PACKETS, UDP_RX_BUFFER, UDP_SOCKETS, UDP_TX_BUFFER};
/// One queued datagram's metadata in a UDP socket; the board provides
/// [`Sizes::udp_packets`] of them.
pub use smoltcp::socket::udp::PacketMetadata as UdpPacketMetadata;

/// Sockets that are neither lab nor bulk: none today (ICMP echo is answered
/// by the interface itself), one for DHCPv4.
pub const EXTRA_SOCKETS: usize = 1;
/// Number of bulk services (echo, discard, chargen).
pub const BULK_SERVICES: usize = 3;
/// Largest lab pool the application supports (bounds per-slot bitmaps).
pub const MAX_LAB_SLOTS: usize = 2048;

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

    /// Sockets of the closing pool, both classes.
    pub const fn closing_sockets(&self) -> usize {
        self.lab_closing + self.bulk_closing
    }

    /// TCP sockets of the device (every socket but DHCP's): the lab's slots
    /// and backlog, the bulk services', the closing pool and the HTTP
    /// server's own [`HTTP_SOCKETS`](crate::http::HTTP_SOCKETS).
    pub const fn tcp_sockets(&self) -> usize {
        self.lab_sockets()
            + BULK_SERVICES * self.bulk_slots
            + self.iperf_sockets()
            + self.closing_sockets()
            + http::HTTP_SOCKETS
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
        (self.lab_sockets() + self.lab_closing) * (self.lab_rx + self.lab_tx)
            + (BULK_SERVICES * self.bulk_slots + self.bulk_closing) * (self.bulk_rx + self.bulk_tx)
            + self.iperf3_sockets * (self.iperf3_rx + self.iperf3_tx)
            + self.iperf2_sockets * (self.iperf2_rx + IPERF2_TX_BUFFER)
            + http::HTTP_SOCKETS * (http::HTTP_RX_BUFFER + http::HTTP_TX_BUFFER)
            + UDP_SOCKETS * (UDP_RX_BUFFER + UDP_TX_BUFFER)
    }

    /// Everything the pool costs in RAM: buffers, socket slots and lab state.
    pub const fn total_bytes(&self) -> usize {
        self.buffer_bytes()
            + self.sockets() * core::mem::size_of::<SocketStorage<'static>>()
            + self.lab_sockets() * core::mem::size_of::<LabSlot>()
            + self.closing_sockets() * core::mem::size_of::<ClosingSocket>()
            + self.udp_packets() * core::mem::size_of::<UdpPacketMetadata>()
    }
}

/// The storage itself, borrowed for the application's lifetime.
pub struct Storage<'a> {
    /// `sizes.sockets()` socket slots.
    pub sockets: &'a mut [SocketStorage<'a>],
    /// `sizes.lab_sockets()` lab states (slots, then backlog).
    pub lab: &'a mut [LabSlot],
    /// `sizes.closing_sockets()` entries of the closing pool.
    pub closing: &'a mut [ClosingSocket],
    /// `sizes.buffer_bytes()` bytes for all socket buffers.
    pub buffers: &'a mut [u8],
    /// `sizes.udp_packets()` datagram metadata entries of the UDP sockets.
    pub udp: &'a mut [UdpPacketMetadata],
}

/// The storage does not match the sizes it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// `sockets` has the wrong length.
    Sockets {
        /// Length the sizes need.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// `lab` has the wrong length.
    LabSlots {
        /// Length the sizes need.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// `closing` has the wrong length.
    Closing {
        /// Length the sizes need.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// `buffers` has the wrong length.
    Buffers {
        /// Length the sizes need.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// `udp` has the wrong length.
    UdpPackets {
        /// Length the sizes need.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A size is zero or over a limit.
    BadSizes(&'static str),
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StorageError::Sockets { expected, got } => {
                write!(f, "{got} socket slots given, the sizes need {expected}")
            }
            StorageError::LabSlots { expected, got } => {
                write!(f, "{got} lab states given, the sizes need {expected}")
            }
            StorageError::Closing { expected, got } => {
                write!(
                    f,
                    "{got} closing-pool entries given, the sizes need {expected}"
                )
            }
            StorageError::Buffers { expected, got } => {
                write!(f, "{got} buffer bytes given, the sizes need {expected}")
            }
            StorageError::UdpPackets { expected, got } => {
                write!(
                    f,
                    "{got} UDP datagram entries given, the sizes need {expected}"
                )
            }
            StorageError::BadSizes(why) => write!(f, "bad sizes: {why}"),
        }
    }
}

impl Sizes {
    /// Checks the sizes and that `storage` matches them.
    pub fn check(&self, storage: &Storage<'_>) -> Result<(), StorageError> {
        if self.lab_slots == 0 || self.lab_sockets() > MAX_LAB_SLOTS {
            return Err(StorageError::BadSizes(
                "lab_slots must be at least 1 and lab_slots + lab_backlog at most 2048",
            ));
        }
        if self.bulk_slots == 0 {
            return Err(StorageError::BadSizes("bulk_slots must be at least 1"));
        }
        if self.lab_rx < 64 || self.lab_tx < crate::protocol::MAX_RESPONSE_LINE + 1 {
            return Err(StorageError::BadSizes(
                "lab buffers must hold at least one whole response line",
            ));
        }
        if self.bulk_rx == 0 || self.bulk_tx < crate::protocol::CHARGEN_LINE_LEN {
            return Err(StorageError::BadSizes("bulk buffers too small"));
        }
        if self.iperf3_sockets > MAX_IPERF3_SOCKETS
            || (self.iperf3_sockets != 0 && self.iperf3_sockets <= IPERF3_RESERVED_SOCKETS)
        {
            return Err(StorageError::BadSizes(
                "iperf3_sockets must be 0 or 3 to 34 (a control connection, a spare, the streams)",
            ));
        }
        if self.iperf3_sockets != 0 && (self.iperf3_rx < 64 || self.iperf3_tx < 4096) {
            return Err(StorageError::BadSizes(
                "iperf3 buffers too small (rx at least 64, tx at least 4096 for the results)",
            ));
        }
        if self.iperf2_sockets > MAX_IPERF2_SOCKETS
            || (self.iperf2_sockets != 0 && self.iperf2_rx < 64)
        {
            return Err(StorageError::BadSizes(
                "iperf2_sockets must be at most 16, with a receive buffer of at least 64",
            ));
        }
        let pairs = [
            (storage.sockets.len(), self.sockets(), 0),
            (storage.lab.len(), self.lab_sockets(), 1),
            (storage.buffers.len(), self.buffer_bytes(), 2),
            (storage.closing.len(), self.closing_sockets(), 3),
            (storage.udp.len(), self.udp_packets(), 4),
        ];
        for (got, expected, which) in pairs {
            if got != expected {
                return Err(match which {
                    0 => StorageError::Sockets { expected, got },
                    1 => StorageError::LabSlots { expected, got },
                    3 => StorageError::Closing { expected, got },
                    4 => StorageError::UdpPackets { expected, got },
                    _ => StorageError::Buffers { expected, got },
                });
            }
        }
        Ok(())
    }
}
