//! socklab on QEMU's RISC-V `virt` machine: the board's parts wired into
//! `socklab-baremetal`, and the panic and exception exits.
//!
//! The board supplies what is its own: the virtio-net driver ([`nic`], zero-copy over
//! the DMA pool in [`dma`]), a clock from the CLINT ([`clock`]), the NS16550A UART
//! ([`uart`]), `wfi` between polls until a frame arrives or the next deadline
//! ([`idle`]), semihosting for the boot options ([`semihosting`]), its memory layout
//! (`memory.x`) and the pool's [`SIZES`], and its traps and stack guard ([`trap`]). A
//! panic or an exception prints what happened and ends QEMU with a failure status
//! through the `sifive_test` device.
#![no_std]
#![no_main]

mod clock;
mod dma;
mod idle;
mod kick;
mod nic;
mod semihosting;
mod trap;
mod uart;
mod watchdog;

use core::ptr::write_volatile;
use static_cell::ConstStaticCell;

use log::{info, warn, LevelFilter};
use socklab_app::smoltcp::wire::EthernetAddress;
use socklab_app::{BoardRam, BootReason, Sizes};
use socklab_baremetal::{boardstatus, bootrecord, console, take_storage, Board, UartLogger};

use crate::nic::VirtioNet;
use crate::uart::Uart;

/// The socket pool: a [`small_pool`](socklab_baremetal::small_pool) (the microcontroller's
/// lab side, like mps2-an385) whose bulk sockets get larger buffers, 64 KiB to receive
/// and 256 KiB to send, because this board's RAM (16 MiB given to the image) is
/// plentiful and virtio-net,
/// unlike a FIFO, queues what arrives behind its posted buffers, so a large window is a
/// fast one. The transmit side is the larger: unacknowledged data stays in it, so it
/// bounds what is in flight towards the host across QEMU's round trip.
#[cfg(not(feature = "minimal"))]
pub const SIZES: Sizes = socklab_baremetal::small_pool(64 * 1024, 256 * 1024);
/// The minimal image's pool (feature `minimal`): the app's [`Sizes::MINIMAL`].
#[cfg(feature = "minimal")]
pub const SIZES: Sizes = Sizes::MINIMAL;

/// The board's statics beside the pool (`INFO` `ram_nic`, `ram_dma`,
/// `ram_handler_stack`): the NICs' frame buffers, the virtqueues' DMA pages and the
/// stack traps run on.
const BOARD_RAM: BoardRam = BoardRam {
    nic: NICS * nic::BUFFER_LEN * (nic::RX_BUFFERS + nic::TX_BUFFERS),
    dma: dma::DMA_PAGES * virtio_drivers::PAGE_SIZE,
    handler_stack: trap::TRAP_STACK_BYTES,
    ..BoardRam::NONE
};

/// Board name the application reports in `INFO`.
const BOARD: &str = "riscv-virt";
/// Log records up to this level reach the UART.
const LOG_LEVEL: LevelFilter = LevelFilter::Info;
/// The `sifive_test` device: a write ends QEMU.
const SIFIVE_TEST: usize = 0x0010_0000;
/// `sifive_test` word for a failure; the exit status goes in the upper half.
const SIFIVE_TEST_FAIL: u32 = 0x3333;

/// The `log` sink: the UART, stamped with the CLINT's clock.
static LOGGER: UartLogger<Uart> = UartLogger::new(Uart, clock::now_ms);

/// The most virtio-net devices the image drives: one network interface each, as many
/// as the application has room for (feature `two-networks`: 2).
const NICS: usize = socklab_app::MAX_NETS;

/// One NIC's receive frame buffers.
type RxFrames = [[u8; nic::BUFFER_LEN]; nic::RX_BUFFERS];
/// One NIC's transmit frame buffers.
type TxFrames = [[u8; nic::BUFFER_LEN]; nic::TX_BUFFERS];
// The NICs' frame buffers: statics, handed out once without `unsafe`.
static RX_FRAMES: ConstStaticCell<[RxFrames; NICS]> =
    ConstStaticCell::new([[[0; nic::BUFFER_LEN]; nic::RX_BUFFERS]; NICS]);
static TX_FRAMES: ConstStaticCell<[TxFrames; NICS]> =
    ConstStaticCell::new([[[0; nic::BUFFER_LEN]; nic::TX_BUFFERS]; NICS]);

/// The virt machine as the serve loop sees it.
struct RiscvVirt {
    /// Each NIC's error count the log last showed, by virtio-mmio slot.
    errors: [u64; nic::SLOTS],
}

impl Board for RiscvVirt {
    type Nic = VirtioNet;
    const COUNTER_UNIT: &'static str = "cycles";
    /// Below the stack is a locked no-access PMP region ([`trap`]).
    const OVERFLOW_FAULTS: bool = true;

    fn now_ms() -> u64 {
        clock::now_ms()
    }

    /// The hart's cycle counter, `mcycle`.
    fn counter() -> u64 {
        riscv::register::mcycle::read64()
    }

    /// Logs the driver's errors as they grow.
    fn check_nic(&mut self, nic: &mut VirtioNet) {
        let counters = nic.counters();
        let shown = &mut self.errors[nic.slot()];
        if counters.errors != *shown {
            *shown = counters.errors;
            warn!(
                "virtio-net in slot {}: errors {} ({} frames in, {} out, {} notifies)",
                nic.slot(),
                counters.errors,
                counters.rx_frames,
                counters.tx_frames,
                counters.kicks
            );
        }
    }

    fn feed_watchdog(&mut self) {
        watchdog::feed();
    }

    fn idle(&mut self, nics: &mut [&mut VirtioNet], ms: u64) {
        idle::wait(nics, ms);
    }
}

#[riscv_rt::entry]
fn main() -> ! {
    let guarded = trap::guard_stack();
    let status = boardstatus::start(Some(watchdog::TIMEOUT_MS));
    console::install(&LOGGER, LOG_LEVEL);
    info!(
        "socklab-riscv {}: riscv32imac, pool {} B",
        env!("CARGO_PKG_VERSION"),
        SIZES.total_bytes()
    );
    boardstatus::log_boot(&status);
    boardstatus::record_ram(&SIZES, BOARD_RAM);
    assert!(guarded, "the hart refused the stack guard's PMP entry");

    let (mut config, options) = socklab_baremetal::boot_options(BOARD, |op, block| {
        // SAFETY: a semihosting call with the block `boot_options` keeps alive across it.
        unsafe { semihosting::call(op, block) }
    });
    // No entropy source on this machine; the cycle counter at least varies with how long
    // QEMU took to get here.
    config.random_seed ^= RiscvVirt::counter() ^ clock::now_ticks();
    config.status = status;
    config.max_nets = NICS;
    // One interface per virtio-net device QEMU gives, in its command line's order, up to
    // NICS.
    let mut nics = socklab_baremetal::serve::Nics::new();
    let mut below_slot = nic::SLOTS;
    for (index, (rx, tx)) in RX_FRAMES
        .take()
        .iter_mut()
        .zip(TX_FRAMES.take())
        .enumerate()
    {
        let nic = match VirtioNet::probe(below_slot, rx, tx) {
            Ok(nic) => nic,
            Err(nic::ProbeError::NoNetDevice) if index > 0 => break,
            Err(e) => panic!("{e}"),
        };
        below_slot = nic.slot();
        if index > 0 {
            let _ = config.nets.push(socklab_app::NetConfig::default_for(index));
        }
        // QEMU's `mac=` sets the device's address; the application uses whichever it has.
        config.nets[index].mac = EthernetAddress(nic.mac_address());
        info!(
            "virtio-net in slot {} (PLIC source {}), MAC {}, {} rx / {} tx buffers, \
             notification suppression by {}",
            nic.slot(),
            nic.irq(),
            config.nets[index].mac,
            nic::RX_BUFFERS,
            nic::TX_BUFFERS,
            if nic.event_idx() {
                "event index"
            } else {
                "ring flags"
            }
        );
        let _ = nics.push(nic);
    }
    idle::init(nics.iter());
    let storage = take_storage!(SIZES);
    watchdog::start();
    socklab_baremetal::serve(
        RiscvVirt {
            errors: [0; nic::SLOTS],
        },
        nics,
        config,
        SIZES,
        storage,
        options,
    )
}

/// Ends QEMU with exit status 1 through the `sifive_test` device.
pub(crate) fn exit_failure() -> ! {
    // SAFETY: the `sifive_test` device of QEMU's virt machine; the write ends the run.
    unsafe { write_volatile(SIFIVE_TEST as *mut u32, (1 << 16) | SIFIVE_TEST_FAIL) };
    loop {
        riscv::asm::wfi();
    }
}

/// Prints the panic on the UART and ends QEMU with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    bootrecord::note(BootReason::Fault);
    console::report_panic(Uart, clock::now_ms(), info);
    exit_failure()
}
