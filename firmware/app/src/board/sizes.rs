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
            iperf3: self.iperf3,
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
            + self.iperf3.sockets
            + self.iperf2.sockets
            + self.closing.sockets()
            + FIXED.tcp_sockets
    }

    /// Bytes of socket buffer the board must provide.
    pub const fn buffer_bytes(&self) -> usize {
        self.lab.buffer_bytes()
            + self.bulk.buffer_bytes()
            + self.iperf3.buffer_bytes()
            + self.iperf2.buffer_bytes()
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
        if let Err(why) = self.iperf3.check() {
            return Err(why);
        }
        self.iperf2.check()
    }
}
