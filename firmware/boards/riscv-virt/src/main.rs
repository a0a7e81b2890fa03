//! socklab on QEMU's RISC-V `virt` machine: start-up, the poll loop, and the panic and
//! exception exits.
//!
//! The board supplies what the application needs and nothing more: virtio-net as a
//! `smoltcp::phy::Device` ([`device`] over [`nic`]), a millisecond clock from the CLINT
//! ([`clock`]), a `log` sink on the NS16550A UART ([`uart`]), and the pool's storage as
//! statics sized by [`SIZES`]. Between polls the hart sleeps in `wfi` until a frame
//! arrives or the application's next deadline ([`idle`]). A panic or an exception prints
//! what happened and ends QEMU with a failure status through the `sifive_test` device.
#![no_std]
#![no_main]

mod clock;
mod device;
mod dma;
mod idle;
mod nic;
mod options;
mod profile;
mod uart;

use core::fmt::Write;
use core::ptr::write_volatile;
use static_cell::ConstStaticCell;

use log::{info, LevelFilter};
use socklab_app::badlink::{self, BadLink};
use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::smoltcp::phy::Device;
use socklab_app::smoltcp::time::Instant;
use socklab_app::smoltcp::wire::EthernetAddress;
use socklab_app::{
    App, BulkSizes, ClosingSizes, ClosingSocket, Config, Iperf2Sizes, Iperf3Sizes, LabSizes, LabSlot,
    Sizes, Storage, UdpPacketMetadata,
};

use crate::device::VirtioDevice;
use crate::nic::VirtioNet;
use crate::profile::{cycles, Profile};
use crate::uart::Uart;

/// The socket pool. The lab side is the microcontroller's (eight clients at once, four
/// waiting, like mps2-an385); the bulk sockets get larger buffers, because this board's
/// RAM (16 MiB given to the image) is plentiful and virtio-net, unlike a FIFO, queues what
/// arrives behind its posted buffers, so a large window is a fast one. The transmit side
/// is the larger: unacknowledged data stays in it, so it bounds what is in flight towards
/// the host across QEMU's round trip.
pub const SIZES: Sizes = Sizes {
    lab: LabSizes {
        slots: 8,
        backlog: 4,
        rx: 1024,
        tx: 2048,
    },
    bulk: BulkSizes {
        slots: 2,
        rx: 64 * 1024,
        tx: 256 * 1024,
    },
    iperf3: Iperf3Sizes {
        sockets: 6,
        rx: 64 * 1024,
        tx: 256 * 1024,
    },
    iperf2: Iperf2Sizes {
        sockets: 2,
        rx: 64 * 1024,
    },
    closing: ClosingSizes {
        lab: 4,
        bulk: 2,
    },
};

/// Board name the application reports in `INFO`.
const BOARD: &str = "riscv-virt";
/// Log records up to this level reach the UART.
const LOG_LEVEL: LevelFilter = LevelFilter::Info;
/// Longest sleep between polls, even when the application has no deadline.
const MAX_IDLE_MS: u64 = 1000;
/// The `sifive_test` device: a write ends QEMU.
const SIFIVE_TEST: usize = 0x0010_0000;
/// `sifive_test` word for a failure; the exit status goes in the upper half.
const SIFIVE_TEST_FAIL: u32 = 0x3333;

// The pool's storage and the NIC's frame buffers. Statics, not locals: they live for the
// whole run and do not weigh on the stack. `ConstStaticCell` hands each out once, without
// `unsafe`.
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
static RX_FRAMES: ConstStaticCell<[[u8; nic::BUFFER_LEN]; nic::RX_BUFFERS]> =
    ConstStaticCell::new([[0; nic::BUFFER_LEN]; nic::RX_BUFFERS]);
static TX_FRAMES: ConstStaticCell<[[u8; nic::BUFFER_LEN]; nic::TX_BUFFERS]> =
    ConstStaticCell::new([[0; nic::BUFFER_LEN]; nic::TX_BUFFERS]);

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

/// The NIC's frame buffers, receive and transmit, taken once.
type FrameBuffers = (
    &'static mut [[u8; nic::BUFFER_LEN]; nic::RX_BUFFERS],
    &'static mut [[u8; nic::BUFFER_LEN]; nic::TX_BUFFERS],
);

/// Hands out the NIC's frame buffers as `'static` borrows, once (a second take panics).
fn take_frame_buffers() -> FrameBuffers {
    (RX_FRAMES.take(), TX_FRAMES.take())
}

/// The application's clock: milliseconds since QEMU started the machine.
fn now() -> Instant {
    Instant::from_millis(clock::now_ms() as i64)
}

#[riscv_rt::entry]
fn main() -> ! {
    uart::init_logger(LOG_LEVEL);
    info!(
        "socklab-riscv {}: riscv32imac, pool {} B",
        env!("CARGO_PKG_VERSION"),
        SIZES.total_bytes()
    );

    let (rx, tx) = take_frame_buffers();
    let nic = VirtioNet::probe(rx, tx).unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config {
        board: BOARD,
        dhcp: true,
        ..Config::default()
    };
    let options = options::apply(&mut config);
    // No entropy source on this machine; the cycle counter at least varies with how long
    // QEMU took to get here.
    config.random_seed ^= cycles() ^ clock::now_ticks();
    // QEMU's `mac=` sets the device's address; the application uses whichever it has.
    config.mac = EthernetAddress(nic.mac_address());
    info!(
        "virtio-net in slot {} (PLIC source {}), MAC {}, {} rx / {} tx buffers",
        nic.slot(),
        nic.irq(),
        config.mac,
        nic::RX_BUFFERS,
        nic::TX_BUFFERS
    );
    idle::init(&nic);
    let mut device = VirtioDevice::new(nic);

    let app = App::new(config, SIZES, take_storage(), &mut device, now())
        .unwrap_or_else(|e| panic!("pool storage: {e}"));
    let profile = options
        .profile
        .then(|| Profile::new(device.nic().counters()));
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
const BAD_LINK_FRAME: usize = nic::MAX_FRAME_LEN;

/// The bad link's hold buffers, taken once when a fault option is given.
fn take_bad_link_storage() -> &'static mut [u8] {
    static STORAGE: ConstStaticCell<[u8; badlink::storage_bytes(BAD_LINK_HELD, BAD_LINK_FRAME)]> =
        ConstStaticCell::new([0; badlink::storage_bytes(BAD_LINK_HELD, BAD_LINK_FRAME)]);
    STORAGE.take()
}

/// The poll loop: poll, sleep until a frame, the application's deadline or (with a bad
/// link) the next held frame; log the NIC's errors as they grow.
fn serve<D: Device>(
    mut app: App<'static>,
    mut device: D,
    mut profile: Option<Profile>,
    nic: impl Fn(&mut D) -> &mut VirtioDevice,
    next_due: impl Fn(&D) -> Option<Instant>,
) -> ! {
    let mut errors = 0;
    loop {
        let now = now();
        let polled = cycles();
        let delay = app.poll(now, &mut device);
        let idled = cycles();
        let mut ms = delay.map_or(MAX_IDLE_MS, |d| d.total_millis().min(MAX_IDLE_MS));
        if let Some(due) = next_due(&device) {
            ms = ms.min((due - now).total_millis());
        }
        let virtio = nic(&mut device).nic();
        let counters = virtio.counters();
        if counters.errors != errors {
            errors = counters.errors;
            log::warn!(
                "virtio-net errors: {errors} ({} frames in, {} out)",
                counters.rx_frames,
                counters.tx_frames
            );
        }
        idle::wait(virtio, ms);
        if let Some(profile) = profile.as_mut() {
            profile.record(idled - polled, cycles() - idled, counters);
        }
    }
}

/// Ends QEMU with exit status 1 through the `sifive_test` device.
fn exit_failure() -> ! {
    // SAFETY: the `sifive_test` device of QEMU's virt machine; the write ends the run.
    unsafe { write_volatile(SIFIVE_TEST as *mut u32, (1 << 16) | SIFIVE_TEST_FAIL) };
    loop {
        riscv::asm::wfi();
    }
}

/// Prints the panic on the UART and ends QEMU with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Uart, "\nPANIC at {} ms: {}", clock::now_ms(), info);
    exit_failure()
}

/// Prints the exception (cause, where, what) and the trapped registers on the UART and
/// ends QEMU with a failure status.
#[export_name = "ExceptionHandler"]
fn exception(frame: &riscv_rt::TrapFrame) -> ! {
    let _ = writeln!(
        Uart,
        "\nEXCEPTION mcause={:#010x} mepc={:#010x} mtval={:#010x} ra={:#010x}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read(),
        riscv::register::mtval::read(),
        frame.ra
    );
    let _ = writeln!(
        Uart,
        "  a0={:#010x} a1={:#010x} a2={:#010x} a3={:#010x} t0={:#010x}",
        frame.a0, frame.a1, frame.a2, frame.a3, frame.t0
    );
    exit_failure()
}
