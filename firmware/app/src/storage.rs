//! The fixed storage a board hands the application: sizes as named constants,
//! socket slots, per-slot lab state and one byte area cut into socket buffers.

use smoltcp::iface::SocketStorage;

use crate::lab::LabSlot;

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
}

impl Sizes {
    /// Socket slots the board must provide.
    pub const fn sockets(&self) -> usize {
        self.tcp_sockets() + EXTRA_SOCKETS
    }

    /// Lab sockets: the serving slots and the backlog.
    pub const fn lab_sockets(&self) -> usize {
        self.lab_slots + self.lab_backlog
    }

    /// TCP sockets of the device (every socket but DHCP's).
    pub const fn tcp_sockets(&self) -> usize {
        self.lab_sockets() + BULK_SERVICES * self.bulk_slots
    }

    /// Bytes of socket buffer the board must provide.
    pub const fn buffer_bytes(&self) -> usize {
        self.lab_sockets() * (self.lab_rx + self.lab_tx)
            + BULK_SERVICES * self.bulk_slots * (self.bulk_rx + self.bulk_tx)
    }

    /// Everything the pool costs in RAM: buffers, socket slots and lab state.
    pub const fn total_bytes(&self) -> usize {
        self.buffer_bytes()
            + self.sockets() * core::mem::size_of::<SocketStorage<'static>>()
            + self.lab_sockets() * core::mem::size_of::<LabSlot>()
    }
}

/// The storage itself, borrowed for the application's lifetime.
pub struct Storage<'a> {
    /// `sizes.sockets()` socket slots.
    pub sockets: &'a mut [SocketStorage<'a>],
    /// `sizes.lab_sockets()` lab states (slots, then backlog).
    pub lab: &'a mut [LabSlot],
    /// `sizes.buffer_bytes()` bytes for all socket buffers.
    pub buffers: &'a mut [u8],
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
    /// `buffers` has the wrong length.
    Buffers {
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
            StorageError::Buffers { expected, got } => {
                write!(f, "{got} buffer bytes given, the sizes need {expected}")
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
        let pairs = [
            (storage.sockets.len(), self.sockets(), 0),
            (storage.lab.len(), self.lab_sockets(), 1),
            (storage.buffers.len(), self.buffer_bytes(), 2),
        ];
        for (got, expected, which) in pairs {
            if got != expected {
                return Err(match which {
                    0 => StorageError::Sockets { expected, got },
                    1 => StorageError::LabSlots { expected, got },
                    _ => StorageError::Buffers { expected, got },
                });
            }
        }
        Ok(())
    }
}
