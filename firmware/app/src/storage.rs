//! The fixed storage a board hands the application: sizes as named constants,
//! socket slots, per-slot lab state and one byte area cut into socket buffers.

use smoltcp::iface::SocketStorage;

use crate::lab::LabSlot;
use crate::pool::ClosingSocket;
pub use crate::sizes::*;
/// One queued datagram's metadata in a UDP socket; the board provides
/// [`Sizes::udp_packets`] of them.
pub use smoltcp::socket::udp::PacketMetadata as UdpPacketMetadata;

impl Sizes {
    /// Everything the pool costs in RAM: buffers, socket slots and lab state.
    pub const fn total_bytes(&self) -> usize {
        self.buffer_bytes()
            + self.sockets() * core::mem::size_of::<SocketStorage<'static>>()
            + self.lab_states() * core::mem::size_of::<LabSlot>()
            + self.closing_sockets() * core::mem::size_of::<ClosingSocket>()
            + self.udp_packets() * core::mem::size_of::<UdpPacketMetadata>()
    }
}

/// The storage itself, borrowed for the application's lifetime.
pub struct Storage<'a> {
    /// `sizes.sockets()` socket slots.
    pub sockets: &'a mut [SocketStorage<'a>],
    /// `sizes.lab_states()` lab states (slots, then backlog, then the
    /// management sockets).
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
            (storage.lab.len(), self.lab_states(), 1),
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
