//! socklab on QEMU's mps2-an385: start-up, the poll loop, and the panic and fault exits.
//!
//! The board supplies what the application needs and nothing more: the LAN9118 as a
//! `smoltcp::phy::Device` ([`device`]), a millisecond clock ([`clock`]), a `log` sink on
//! UART0 ([`uart`]), and the pool's storage as statics sized by [`SIZES`]. Between polls
//! the core sleeps in `wfi` until a frame arrives or the application's next deadline
//! ([`idle`]). A panic or a HardFault prints what happened and ends QEMU with a failure
//! status through semihosting.
#![no_std]
#![no_main]

mod clock;
mod device;
mod idle;
mod lan9118;
mod options;
mod uart;

use core::fmt::Write;
use static_cell::ConstStaticCell;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;
use log::{info, LevelFilter};
use socklab_app::badlink::{self, BadLink};
use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::smoltcp::time::Instant;
use socklab_app::{
    App, BulkSizes, ClosingSizes, ClosingSocket, Config, Iperf2Sizes, Iperf3Sizes, LabSizes, LabSlot,
    Sizes, Storage, UdpPacketMetadata,
};

use crate::device::Lan9118Device;
use crate::lan9118::Lan9118;
use crate::uart::Uart;

/// The socket pool, sized for a microcontroller (180 KiB of socket buffers): eight
/// lab clients at once and four waiting, two connections per bulk service (echo,
/// discard, chargen).
///
/// A bulk socket's receive window stays below the LAN9118's RX FIFO (2640 words, about
/// 10.5 KB in QEMU's model), which drops frames silently when full: a bigger window lets
/// the host overrun it and every such loss costs a retransmission timeout. The transmit
/// side has no such bound and is bigger, so that more is in flight towards the host.
pub const SIZES: Sizes = Sizes {
    lab: LabSizes {
        slots: 8,
        backlog: 4,
        rx: 1024,
        tx: 2048,
    },
    bulk: BulkSizes {
        slots: 2,
        rx: 8 * 1024,
        tx: 16 * 1024,
    },
    iperf3: Iperf3Sizes {
        sockets: 6,
        rx: 8 * 1024,
        tx: 16 * 1024,
    },
    iperf2: Iperf2Sizes {
        sockets: 2,
        rx: 8 * 1024,
    },
    closing: ClosingSizes {
        lab: 4,
        bulk: 2,
    },
};

/// Board name the application reports in `INFO`.
const BOARD: &str = "mps2-an385";
/// Log records up to this level reach UART0.
const LOG_LEVEL: LevelFilter = LevelFilter::Info;
/// Longest sleep between polls, even when the application has no deadline. It also
/// keeps the clock's 64-bit extension fed, which needs a read every 171 s.
const MAX_IDLE_MS: u64 = 1000;

// The pool's storage. Statics, not locals: they live for the whole run and do not
// weigh on the stack. `ConstStaticCell` hands each out once, without `unsafe`.
static SOCKETS: ConstStaticCell<[SocketStorage<'static>; SIZES.sockets()]> =
    ConstStaticCell::new([SocketStorage::EMPTY; SIZES.sockets()]);
static LAB: ConstStaticCell<[LabSlot; SIZES.lab_states()]> =
    ConstStaticCell::new([LabSlot::EMPTY; SIZES.lab_states()]);
static CLOSING: ConstStaticCell<[ClosingSocket; SIZES.closing_sockets()]> =
    ConstStaticCell::new([ClosingSocket::EMPTY; SIZES.closing_sockets()]);
static BUFFERS: ConstStaticCell<[u8; SIZES.buffer_bytes()]> =
    ConstStaticCell::new([0; SIZES.buffer_bytes()]);
static UDP_PACKETS: ConstStaticCell<[UdpPacketMetadata; SIZES.udp_packets()]> =
    ConstStaticCell::new([UdpPacketMetadata::EMPTY; SIZES.udp_packets()]);

/// Hands out the pool's statics as `'static` borrows, once (a second take panics).
fn take_storage() -> Storage<'static> {
    Storage {
        sockets: SOCKETS.take(),
        lab: LAB.take(),
        closing: CLOSING.take(),
        buffers: BUFFERS.take(),
        udp: UDP_PACKETS.take(),
    }
}

/// The application's clock: milliseconds since boot.
fn now() -> Instant {
    Instant::from_millis(clock::now_ms() as i64)
}

#[entry]
fn main() -> ! {
    // Interrupts stay masked for the whole run: interrupt lines only end `wfi` (idle).
    cortex_m::interrupt::disable();
    clock::init();
    uart::init_logger(LOG_LEVEL);
    info!(
        "socklab-mps2 {}: Cortex-M3, pool {} B",
        env!("CARGO_PKG_VERSION"),
        SIZES.total_bytes()
    );

    // SAFETY: the LAN9118's registers on this machine; `nic` is their only user.
    let mut nic = unsafe { Lan9118::new(lan9118::MPS2_AN385_BASE) };
    let chip = nic.init().unwrap_or_else(|e| panic!("LAN9118: {e}"));
    let mut config = Config {
        board: BOARD,
        dhcp: true,
        ..Config::default()
    };
    let options = options::apply(&mut config);
    // No entropy source on this machine; the NIC's cycle counter at least varies with
    // how long QEMU took to get here.
    config.random_seed ^= u64::from(nic.free_run());
    nic.set_mac_address(config.mac.0);
    let mac = nic.mac_address();
    assert_eq!(mac, config.mac.0, "LAN9118 kept another MAC address");
    nic.enable();
    info!(
        "LAN9118 id {:#010x}, PHY {:#010x}, MAC {}, link {}",
        chip.id_rev,
        chip.phy_id,
        config.mac,
        if nic.is_link_up() { "up" } else { "down" }
    );
    idle::init(&mut nic);
    let mut device = Lan9118Device::new(nic);

    let app = App::new(config, SIZES, take_storage(), &mut device, now())
        .unwrap_or_else(|e| panic!("pool storage: {e}"));
    let profile = options.profile.then(Profile::new);
    if options.faults.is_clean() {
        serve(app, device, profile, |d| d, |_| None)
    } else {
        info!("bad link: {:?}, seed {}", options.faults, options.seed);
        let link = BadLink::new(
            device,
            options.faults,
            options.seed,
            BAD_LINK_HELD,
            BAD_LINK_FRAME,
            take_bad_link_storage(),
        )
        .unwrap_or_else(|e| panic!("bad link: {e:?}"));
        serve(app, link, profile, |l| l.inner_mut(), |l| l.next_due())
    }
}

/// Frames the bad link can hold back per direction.
const BAD_LINK_HELD: usize = 4;
/// The largest frame the bad link holds: Ethernet with a 1500-byte MTU.
const BAD_LINK_FRAME: usize = 1514;

/// The bad link's hold buffers, taken once when a fault option is given.
fn take_bad_link_storage() -> &'static mut [u8] {
    static STORAGE: ConstStaticCell<[u8; badlink::storage_bytes(BAD_LINK_HELD, BAD_LINK_FRAME)]> =
        ConstStaticCell::new([0; badlink::storage_bytes(BAD_LINK_HELD, BAD_LINK_FRAME)]);
    STORAGE.take()
}

/// The poll loop: poll, check the NIC's health, sleep until a frame, the
/// application's deadline or (with a bad link) the next held frame.
fn serve<D: socklab_app::smoltcp::phy::Device>(
    mut app: App<'static>,
    mut device: D,
    mut profile: Option<Profile>,
    nic: impl Fn(&mut D) -> &mut Lan9118Device,
    next_due: impl Fn(&D) -> Option<Instant>,
) -> ! {
    let mut health = NicHealth::new(nic(&mut device).nic());
    loop {
        let now = now();
        let polled = clock::now_ticks();
        let delay = app.poll(now, &mut device);
        let idled = clock::now_ticks();
        health.check(nic(&mut device).nic());
        let mut ms = delay.map_or(MAX_IDLE_MS, |d| d.total_millis().min(MAX_IDLE_MS));
        if let Some(due) = next_due(&device) {
            ms = ms.min((due - now).total_millis());
        }
        idle::wait(nic(&mut device).nic(), ms);
        if let Some(profile) = profile.as_mut() {
            let fifo = nic(&mut device).fifo_time();
            profile.record(idled - polled, clock::now_ticks() - idled, fifo);
        }
    }
}

/// `--profile`: where the time goes, logged every [`Profile::PERIOD_TICKS`].
struct Profile {
    since: u64,
    poll_ticks: u64,
    idle_ticks: u64,
    fifo_then: device::FifoTime,
}

impl Profile {
    /// Five seconds of the 25 MHz timer.
    const PERIOD_TICKS: u64 = 5 * clock::TICKS_PER_SECOND;

    fn new() -> Profile {
        Profile {
            since: clock::now_ticks(),
            poll_ticks: 0,
            idle_ticks: 0,
            fifo_then: device::FifoTime::default(),
        }
    }

    fn record(&mut self, poll: u64, idle: u64, fifo: device::FifoTime) {
        self.poll_ticks += poll;
        self.idle_ticks += idle;
        let now = clock::now_ticks();
        let total = now - self.since;
        if total < Self::PERIOD_TICKS {
            return;
        }
        let then = self.fifo_then;
        let rx = fifo.rx_ticks - then.rx_ticks;
        let tx = fifo.tx_ticks - then.tx_ticks;
        let pct = |ticks: u64| ticks * 1000 / total;
        let stack = self.poll_ticks.saturating_sub(rx + tx);
        info!(
            "profile {} ms: RX FIFO {}‰ ({} frames), TX FIFO {}‰ ({} frames), \
             stack and services {}‰, idle {}‰",
            total / (clock::TICKS_PER_SECOND / 1000),
            pct(rx),
            fifo.rx_frames - then.rx_frames,
            pct(tx),
            fifo.tx_frames - then.tx_frames,
            pct(stack),
            pct(self.idle_ticks)
        );
        *self = Profile {
            since: now,
            poll_ticks: 0,
            idle_ticks: 0,
            fifo_then: fifo,
        };
    }
}

/// Logs the NIC's link changes and error counts as they change, at most once a second.
struct NicHealth {
    next_check_ms: u64,
    link_up: bool,
    errors: lan9118::Counters,
}

impl NicHealth {
    fn new(nic: &mut Lan9118) -> NicHealth {
        NicHealth {
            next_check_ms: 0,
            link_up: nic.is_link_up(),
            errors: nic.counters(),
        }
    }

    fn check(&mut self, nic: &mut Lan9118) {
        let now = clock::now_ms();
        if now < self.next_check_ms {
            return;
        }
        self.next_check_ms = now + 1000;
        let link_up = nic.is_link_up();
        if link_up != self.link_up {
            self.link_up = link_up;
            info!("LAN9118 link {}", if link_up { "up" } else { "down" });
        }
        let c = nic.counters();
        let e = &self.errors;
        let errors = |c: &lan9118::Counters| {
            (
                c.rx_errors,
                c.rx_length_errors,
                c.rx_missed,
                c.tx_errors,
                c.tx_no_space,
                c.tx_length_errors,
                c.csr_timeouts,
            )
        };
        if errors(&c) != errors(e) {
            log::warn!(
                "LAN9118 errors: rx {} bad, {} bad length, {} missed; tx {} failed, \
                 {} no space, {} bad length; {} register timeouts ({} frames in, {} out)",
                c.rx_errors,
                c.rx_length_errors,
                c.rx_missed,
                c.tx_errors,
                c.tx_no_space,
                c.tx_length_errors,
                c.csr_timeouts,
                c.rx_frames,
                c.tx_frames
            );
        }
        self.errors = c;
    }
}

/// Prints the panic on UART0 and ends QEMU with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    let mut uart = Uart::init();
    let _ = writeln!(uart, "\nPANIC at {} ms: {}", clock::now_ms(), info);
    exit_failure()
}

/// Prints the fault, the fault status registers and the stacked registers on UART0 and
/// ends QEMU with a failure status.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let mut uart = Uart::init();
    // SAFETY: read-only use of the System Control Block's fault status registers.
    let scb = unsafe { &*cortex_m::peripheral::SCB::PTR };
    let _ = writeln!(
        uart,
        "\nHARDFAULT pc={:#010x} lr={:#010x} xpsr={:#010x} \
         cfsr={:#010x} hfsr={:#010x} mmfar={:#010x} bfar={:#010x}",
        frame.pc(),
        frame.lr(),
        frame.xpsr(),
        scb.cfsr.read(),
        scb.hfsr.read(),
        scb.mmfar.read(),
        scb.bfar.read()
    );
    let _ = writeln!(
        uart,
        "  r0={:#010x} r1={:#010x} r2={:#010x} r3={:#010x} r12={:#010x}",
        frame.r0(),
        frame.r1(),
        frame.r2(),
        frame.r3(),
        frame.r12()
    );
    exit_failure()
}

/// Ends QEMU through semihosting with EXIT_FAILURE. QEMU must run with
/// `-semihosting-config enable=on` (the runner does); without it the BKPT faults.
fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
