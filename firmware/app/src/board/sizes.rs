//! How big the device's pools are: [`Sizes`], one part per service with a
//! size a board chooses, and what they add up to with the fixed-size
//! services in sockets, buffer bytes and RAM; [`Ram`], the RAM of each pool,
//! the board's own included, as `INFO` reports it.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use smoltcp::iface::SocketStorage;

use crate::pool::closing::{ClosingSizes, ClosingSocket};
use crate::services::bulk::BulkSizes;
use crate::services::iperf2::Iperf2Sizes;
use crate::services::iperf3::Iperf3Sizes;
use crate::services::lab::{LabSizes, LabSlot};
use crate::services::{Footprint, Parts, FIXED};

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

    /// The RAM of the application's pools, bytes, each service's apart: its
    /// socket buffers, its socket slots (and lab states, UDP datagram
    /// entries); the board's own pools are zero ([`Ram::with_board`] adds
    /// them). The parts add up to [`total_bytes`](Self::total_bytes).
    pub const fn ram(&self) -> Ram {
        let socket = core::mem::size_of::<SocketStorage<'static>>();
        let closing = self.closing.lab * self.lab.socket_bytes()
            + self.closing.bulk * self.bulk.socket_bytes()
            + self.closing.sockets() * (socket + core::mem::size_of::<ClosingSocket>());
        Ram {
            lab: self.lab.buffer_bytes()
                + self.lab.states() * (socket + core::mem::size_of::<LabSlot>()),
            bulk: self.bulk.buffer_bytes() + self.bulk.sockets() * socket,
            iperf3: self.iperf3_part().buffer_bytes() + self.iperf3_part().sockets * socket,
            iperf2: self.iperf2_part().buffer_bytes() + self.iperf2_part().sockets * socket,
            http: footprint_ram(crate::services::http::FOOTPRINT, cfg!(feature = "http")),
            udp: footprint_ram(crate::services::udp::FOOTPRINT, cfg!(feature = "udp")),
            daytime: footprint_ram(
                crate::services::daytime::FOOTPRINT,
                cfg!(feature = "daytime"),
            ),
            closing,
            dhcp: EXTRA_SOCKETS * socket,
            board: BoardRam::NONE,
        }
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

/// The RAM of a fixed-size service's `footprint` (its socket buffers, socket
/// slots and UDP datagram entries), zero when the service is not `built`.
const fn footprint_ram(footprint: Footprint, built: bool) -> usize {
    if !built {
        return 0;
    }
    footprint.buffer_bytes
        + (footprint.tcp_sockets + footprint.udp_sockets)
            * core::mem::size_of::<SocketStorage<'static>>()
        + footprint.udp_packets * core::mem::size_of::<smoltcp::socket::udp::PacketMetadata>()
}

/// What a board keeps in RAM beside the application's pools, bytes: its
/// statics, and the stack (where the board's `main` builds the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoardRam {
    /// The NIC's frame buffers, where they are statics (`INFO` `ram_nic`).
    pub nic: usize,
    /// Memory the NIC reaches by DMA: descriptor rings, virtqueues
    /// (`ram_dma`).
    pub dma: usize,
    /// The bad link's hold buffers (`ram_bad_link`).
    pub bad_link: usize,
    /// A stack of the board's own beside the program's, e.g. one that
    /// exceptions run on (`ram_handler_stack`).
    pub handler_stack: usize,
    /// The program's stack, its whole reservation (`ram_stack`).
    pub stack: usize,
}

impl BoardRam {
    /// A board that declares nothing.
    pub const NONE: BoardRam = BoardRam {
        nic: 0,
        dma: 0,
        bad_link: 0,
        handler_stack: 0,
        stack: 0,
    };
}

/// The RAM of every pool of the device, bytes: the application's (from
/// [`Sizes::ram`]) and the board's. `INFO` gives each as a `ram_*` key
/// (`protocol::info::RAM_POOLS`) and their sum as `ram_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ram {
    /// The lab and the management port: socket buffers, socket slots and
    /// lab states (`ram_lab`).
    pub lab: usize,
    /// Echo, discard and chargen over TCP (`ram_bulk`).
    pub bulk: usize,
    /// The iperf3 server (`ram_iperf3`).
    pub iperf3: usize,
    /// The iperf2 server (`ram_iperf2`).
    pub iperf2: usize,
    /// The HTTP server (`ram_http`).
    pub http: usize,
    /// UDP echo, discard and chargen, their datagram entries included
    /// (`ram_udp`).
    pub udp: usize,
    /// Daytime, TCP and UDP (`ram_daytime`).
    pub daytime: usize,
    /// The closing pool: its sockets' buffers, slots and entries
    /// (`ram_closing`).
    pub closing: usize,
    /// The DHCP client's socket slot (`ram_dhcp`).
    pub dhcp: usize,
    /// The board's own.
    pub board: BoardRam,
}

/// Number of pools in a [`Ram`]: its fields, the board's counted one by one.
pub const RAM_POOLS: usize = crate::protocol::info::RAM_POOLS.len();

impl Ram {
    /// These pools with the board's own.
    pub const fn with_board(self, board: BoardRam) -> Ram {
        Ram { board, ..self }
    }

    /// Every pool, in the order of `protocol::info::RAM_POOLS`.
    pub const fn pools(&self) -> [usize; RAM_POOLS] {
        [
            self.lab,
            self.bulk,
            self.iperf3,
            self.iperf2,
            self.http,
            self.udp,
            self.daytime,
            self.closing,
            self.dhcp,
            self.board.nic,
            self.board.dma,
            self.board.bad_link,
            self.board.handler_stack,
            self.board.stack,
        ]
    }

    /// Every pool added up.
    pub const fn total(&self) -> usize {
        let pools = self.pools();
        let mut sum = 0;
        let mut i = 0;
        while i < pools.len() {
            sum += pools[i];
            i += 1;
        }
        sum
    }
}

/// The device's [`Ram`] for `INFO`, recorded once by the board at boot (its
/// `SIZES` and its own pools are constants the application never sees
/// otherwise). A board that records nothing reports `none`.
pub static RAM: RamRecord = RamRecord::new();

/// A [`Ram`] written once and read by `INFO`: atomics, so that a board sets it
/// without `unsafe` and without handing it to the application.
pub struct RamRecord {
    recorded: AtomicBool,
    pools: [AtomicUsize; RAM_POOLS],
}

impl RamRecord {
    const fn new() -> RamRecord {
        RamRecord {
            recorded: AtomicBool::new(false),
            pools: [const { AtomicUsize::new(0) }; RAM_POOLS],
        }
    }

    /// Records `ram` (a later call replaces it).
    pub fn record(&self, ram: &Ram) {
        for (slot, value) in self.pools.iter().zip(ram.pools()) {
            slot.store(value, Ordering::Relaxed);
        }
        self.recorded.store(true, Ordering::Release);
    }

    /// The pools in the order of `protocol::info::RAM_POOLS`, if a board
    /// recorded them.
    pub fn pools(&self) -> Option<[usize; RAM_POOLS]> {
        if !self.recorded.load(Ordering::Acquire) {
            return None;
        }
        Some(core::array::from_fn(|i| {
            self.pools[i].load(Ordering::Relaxed)
        }))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_ram_pools_add_up_to_the_pool_total() {
        for sizes in [Sizes::DEFAULT, Sizes::MINIMAL] {
            let ram = sizes.ram();
            assert_eq!(ram.total(), sizes.total_bytes(), "{ram:?}");
            let board = BoardRam {
                nic: 1,
                dma: 20,
                bad_link: 300,
                handler_stack: 4000,
                stack: 50_000,
            };
            assert_eq!(ram.with_board(board).total(), sizes.total_bytes() + 54_321);
        }
    }

    #[test]
    fn info_lists_every_ram_pool_in_order() {
        let keys = crate::services::report::DEVICE_INFO_KEYS;
        let pools = &crate::protocol::info::RAM_POOLS;
        let first = keys.iter().position(|k| *k == pools[0]).expect("ram_lab");
        assert_eq!(&keys[first..first + RAM_POOLS], &pools[..]);
    }

    #[test]
    fn a_ram_record_is_none_until_recorded() {
        let record = RamRecord::new();
        assert_eq!(record.pools(), None);
        let ram = Sizes::DEFAULT.ram();
        record.record(&ram);
        assert_eq!(record.pools(), Some(ram.pools()));
    }
}
