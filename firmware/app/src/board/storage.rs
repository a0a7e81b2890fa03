//! The fixed storage a board hands the application: sizes as named constants,
//! socket slots, per-slot lab state and one byte area cut into socket buffers.

use smoltcp::iface::SocketStorage;

use crate::board::sizes::Sizes;
use crate::pool::closing::ClosingSocket;
use crate::services::lab::LabSlot;
/// One queued datagram's metadata in a UDP socket; the board provides
/// [`Sizes::udp_packets`] of them.
pub use smoltcp::socket::udp::PacketMetadata as UdpPacketMetadata;

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

/// Checks the sizes and that `storage` matches them.
pub(crate) fn check(sizes: &Sizes, storage: &Storage<'_>) -> Result<(), StorageError> {
    sizes.check().map_err(StorageError::BadSizes)?;
    let pairs = [
        (storage.sockets.len(), sizes.sockets(), 0),
        (storage.lab.len(), sizes.lab_states(), 1),
        (storage.buffers.len(), sizes.buffer_bytes(), 2),
        (storage.closing.len(), sizes.closing_sockets(), 3),
        (storage.udp.len(), sizes.udp_packets(), 4),
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
