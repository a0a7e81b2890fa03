//! How big the device's pools are: [`Sizes`], one part per service with a
//! size a board chooses, and what they add up to with the fixed-size
//! services in sockets, buffer bytes and RAM.

use smoltcp::iface::SocketStorage;

use crate::pool::closing::{ClosingSizes, ClosingSocket};
use crate::services::bulk::BulkSizes;
use crate::services::iperf2::Iperf2Sizes;
use crate::services::iperf3::Iperf3Sizes;
use crate::services::lab::{LabSizes, LabSlot};
use crate::services::{Parts, FIXED};

/// Sockets that belong to no service: one for DHCPv4 (ICMP echo is
/// answered by the interface itself).
pub const EXTRA_SOCKETS: usize = 1;

/// How big the pools are. A board declares one as a `const`, from
/// [`Sizes::DEFAULT`] and the parts it changes, and sizes its statics with
/// [`Sizes::sockets`], [`Sizes::lab_states`], [`Sizes::closing_sockets`],
/// [`Sizes::buffer_bytes`] and [`Sizes::udp_packets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The lab and the management port.
    pub lab: LabSizes,
    /// Echo, discard and chargen over TCP.
    pub bulk: BulkSizes,
    /// The iperf3 server.
    pub iperf3: Iperf3Sizes,
    /// The iperf2 server.
    pub iperf2: Iperf2Sizes,
    /// The closing pool.
    pub closing: ClosingSizes,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes::DEFAULT
    }
}

impl Sizes {
    /// Every part at its default.
    pub const DEFAULT: Sizes = Sizes {
        lab: LabSizes::DEFAULT,
        bulk: BulkSizes::DEFAULT,
        iperf3: Iperf3Sizes::DEFAULT,
        iperf2: Iperf2Sizes::DEFAULT,
        closing: ClosingSizes::DEFAULT,
    };

    /// The pool of a minimal image (the lab, the management port and TCP
    /// echo; the other services' features off): four lab clients and four
    /// waiting with half the default buffers, one echo connection with
    /// 2 KiB each way, a small closing pool, no iperf sockets. It fits a
    /// part with 64 KiB of RAM.
    pub const MINIMAL: Sizes = Sizes {
        lab: LabSizes {
            slots: 4,
            backlog: 4,
            rx: 512,
            tx: 1024,
        },
        bulk: BulkSizes {
            slots: 1,
            rx: 2 * 1024,
            tx: 2 * 1024,
        },
        iperf3: Iperf3Sizes::NONE,
        iperf2: Iperf2Sizes::NONE,
        closing: ClosingSizes { lab: 2, bulk: 1 },
    };

    /// Socket slots the board must provide.
    pub const fn sockets(&self) -> usize {
        self.tcp_sockets() + FIXED.udp_sockets + EXTRA_SOCKETS
    }

    /// UDP datagram metadata entries the board must provide: both
    /// directions of every UDP socket.
    pub const fn udp_packets(&self) -> usize {
        FIXED.udp_packets
    }

    /// Sockets of the services, TCP and UDP: the rows `NETSTAT` lists when
    /// no close is finishing (the closing pool's are not counted).
    pub const fn service_sockets(&self) -> usize {
        self.tcp_sockets() - self.closing.sockets() + FIXED.udp_sockets
    }

    /// UDP sockets of the services.
    pub const fn udp_sockets(&self) -> usize {
        FIXED.udp_sockets
    }

    /// The configurable services' parts.
    pub(crate) const fn parts(&self) -> Parts {
        Parts {
            lab: self.lab,
            bulk: self.bulk,
            #[cfg(feature = "iperf3")]
            iperf3: self.iperf3,
            #[cfg(feature = "iperf2")]
            iperf2: self.iperf2,
        }
    }

    /// Lab states the board provides ([`Storage::lab`](crate::Storage)):
    /// the slots, the backlog, then the management sockets.
    pub const fn lab_states(&self) -> usize {
        self.lab.states()
    }

    /// Sockets of the closing pool, both classes.
    pub const fn closing_sockets(&self) -> usize {
        self.closing.sockets()
    }

    /// TCP sockets of the device: every service's and the closing pool's.
    pub const fn tcp_sockets(&self) -> usize {
        self.lab.states()
            + self.bulk.sockets()
            + self.iperf3_part().sockets
            + self.iperf2_part().sockets
            + self.closing.sockets()
            + FIXED.tcp_sockets
    }

    /// Bytes of socket buffer the board must provide.
    pub const fn buffer_bytes(&self) -> usize {
        self.lab.buffer_bytes()
            + self.bulk.buffer_bytes()
            + self.iperf3_part().buffer_bytes()
            + self.iperf2_part().buffer_bytes()
            + self.closing.lab * self.lab.socket_bytes()
            + self.closing.bulk * self.bulk.socket_bytes()
            + FIXED.buffer_bytes
    }

    /// Everything the pools cost in RAM: buffers, socket slots and lab state.
    pub const fn total_bytes(&self) -> usize {
        self.buffer_bytes()
            + self.sockets() * core::mem::size_of::<SocketStorage<'static>>()
            + self.lab_states() * core::mem::size_of::<LabSlot>()
            + self.closing_sockets() * core::mem::size_of::<ClosingSocket>()
            + self.udp_packets() * core::mem::size_of::<smoltcp::socket::udp::PacketMetadata>()
    }

    /// Checks every part: a size that is zero where it must not be, or over
    /// a limit, is refused with what to change.
    pub const fn check(&self) -> Result<(), &'static str> {
        if let Err(why) = self.lab.check() {
            return Err(why);
        }
        if let Err(why) = self.bulk.check() {
            return Err(why);
        }
        if let Err(why) = self.iperf3_part().check() {
            return Err(why);
        }
        self.iperf2_part().check()
    }

    /// The iperf3 part, or none (no sockets, no bytes) without the `iperf3`
    /// feature.
    const fn iperf3_part(&self) -> Iperf3Sizes {
        if cfg!(feature = "iperf3") {
            self.iperf3
        } else {
            Iperf3Sizes::NONE
        }
    }

    /// The iperf2 part, or none without the `iperf2` feature.
    const fn iperf2_part(&self) -> Iperf2Sizes {
        if cfg!(feature = "iperf2") {
            self.iperf2
        } else {
            Iperf2Sizes::NONE
        }
    }
}
