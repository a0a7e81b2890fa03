//! socklab on QEMU's mps2-an385: the board's parts wired into `socklab-baremetal`, and
//! the panic and fault exits.
//!
//! The board supplies what is its own: the LAN9118 driver ([`lan9118`], a FIFO NIC), a
//! clock from the dual timer ([`clock`]), UART0 ([`uart`]), `wfi` between polls until a
//! frame arrives or the next deadline ([`idle`]), the chip's health in the log
//! ([`health`]), its memory layout (`memory.x`) and the pool's [`SIZES`]. A panic or a
//! HardFault prints what happened and ends QEMU with a failure status through
//! semihosting.
#![no_std]
#![no_main]

mod clock;
mod health;
mod idle;
mod lan9118;
mod uart;
mod watchdog;

use core::fmt::Write;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;
use log::{info, LevelFilter};
use socklab_app::{BoardRam, BootReason, Sizes};
use socklab_baremetal::{
    boardstatus, bootrecord, console, take_storage, Board, Buffered, Console, UartLogger,
};

use crate::health::NicHealth;
use crate::lan9118::Lan9118;
use crate::uart::Uart;

/// The socket pool, sized for a microcontroller (180 KiB of socket buffers): a
/// [`small_pool`](socklab_baremetal::small_pool) with 8 KiB receive and 16 KiB transmit
/// buffers per bulk socket.
///
/// A bulk socket's receive window stays below the LAN9118's RX FIFO (2640 words, about
/// 10.5 KB in QEMU's model), which drops frames silently when full: a bigger window lets
/// the host overrun it and every such loss costs a retransmission timeout. The transmit
/// side has no such bound and is bigger, so that more is in flight towards the host.
#[cfg(not(feature = "minimal"))]
pub const SIZES: Sizes = socklab_baremetal::small_pool(8 * 1024, 16 * 1024);
/// The minimal image's pool (feature `minimal`): the app's [`Sizes::MINIMAL`].
#[cfg(feature = "minimal")]
pub const SIZES: Sizes = Sizes::MINIMAL;

/// Board name the application reports in `INFO`.
const BOARD: &str = "mps2-an385";
/// Log records up to this level reach UART0.
const LOG_LEVEL: LevelFilter = LevelFilter::Info;

/// The `log` sink: UART0, stamped with the dual timer's clock.
static LOGGER: UartLogger<Uart> = UartLogger::new(Uart, clock::now_ms);

/// The mps2-an385 as the serve loop sees it.
struct Mps2 {
    health: NicHealth,
}

impl Board for Mps2 {
    type Nic = Buffered<Lan9118>;
    const COUNTER_UNIT: &'static str = "ticks";
    /// The stack lies at the bottom of SRAM: below it nothing is RAM.
    const OVERFLOW_FAULTS: bool = true;

    fn now_ms() -> u64 {
        clock::now_ms()
    }

    /// The dual timer's 25 MHz count.
    fn counter() -> u64 {
        clock::now_ticks()
    }

    fn check_nic(&mut self, nic: &mut Buffered<Lan9118>) {
        self.health.check(nic.nic());
    }

    fn feed_watchdog(&mut self) {
        watchdog::feed();
    }

    /// The machine has one LAN9118: `nics` holds it alone.
    fn idle(&mut self, nics: &mut [&mut Buffered<Lan9118>], ms: u64) {
        if let [nic] = nics {
            idle::wait(nic.nic(), ms);
        }
    }
}

#[entry]
fn main() -> ! {
    // Interrupts stay masked for the whole run: interrupt lines only end `wfi` (idle).
    cortex_m::interrupt::disable();
    use_process_stack();
    let status = boardstatus::start(Some(watchdog::TIMEOUT_MS));
    clock::init();
    Uart::init();
    console::install(&LOGGER, LOG_LEVEL);
    info!(
        "socklab-mps2 {}: Cortex-M3, pool {} B",
        env!("CARGO_PKG_VERSION"),
        SIZES.total_bytes()
    );
    boardstatus::log_boot(&status);
    // The LAN9118's frame buffers live in the driver, on the stack.
    let handler_stack = HANDLER_STACK_WORDS * 4;
    boardstatus::record_ram(
        &SIZES,
        BoardRam {
            handler_stack,
            ..BoardRam::NONE
        },
    );

    // SAFETY: the LAN9118's registers on this machine; `nic` is their only user.
    let mut nic = unsafe { Lan9118::new(lan9118::MPS2_AN385_BASE) };
    let chip = nic.init().unwrap_or_else(|e| panic!("LAN9118: {e}"));
    let (mut config, options) = socklab_baremetal::boot_options(BOARD, |op, block| {
        // SAFETY: a semihosting call with the block `boot_options` keeps alive across
        // it. QEMU runs with semihosting enabled (the runner and the launcher always
        // enable it).
        unsafe { cortex_m_semihosting::syscall1(op, block) }
    });
    // No entropy source on this machine; the NIC's cycle counter at least varies with
    // how long QEMU took to get here.
    config.random_seed ^= u64::from(nic.free_run());
    config.status = status;
    // QEMU's mps2-an385 has one LAN9118: one interface.
    config.max_nets = 1;
    let net = config.nets[0];
    nic.set_mac_address(net.mac.0);
    let mac = nic.mac_address();
    assert_eq!(mac, net.mac.0, "LAN9118 kept another MAC address");
    nic.enable();
    info!(
        "LAN9118 id {:#010x}, PHY {:#010x}, MAC {}, link {}",
        chip.id_rev,
        chip.phy_id,
        net.mac,
        if nic.is_link_up() { "up" } else { "down" }
    );
    idle::init(&mut nic);
    let board = Mps2 {
        health: NicHealth::new(&mut nic),
    };
    let storage = take_storage!(SIZES);
    watchdog::start();
    let mut nics = socklab_baremetal::serve::Nics::new();
    let _ = nics.push(Buffered::new(nic));
    socklab_baremetal::serve(board, nics, config, SIZES, storage, options)
}

/// The handler stack: exceptions (HardFault, the watchdog's NMI) run on it, apart from
/// the program's stack, so a program stack that overflowed can still be reported.
const HANDLER_STACK_WORDS: usize = 512;
static mut HANDLER_STACK: [u64; HANDLER_STACK_WORDS / 2] = [0; HANDLER_STACK_WORDS / 2];

/// Moves the program onto the process stack (PSP, the same stack it is on) and gives
/// the main stack (MSP, which exceptions use) the handler stack. On an overflow the
/// program's push faults and the HardFault handler still has a stack to report on.
fn use_process_stack() {
    let handler_top = (&raw mut HANDLER_STACK as usize) + HANDLER_STACK_WORDS * 4;
    // SAFETY: PSP takes the current stack pointer and CONTROL.SPSEL switches to it in
    // one step, so the stack the compiler uses does not move; MSP is written only once
    // the program no longer runs on it, and points to the top of a static that nothing
    // else uses.
    unsafe {
        core::arch::asm!(
            "mrs {t}, msp",
            "msr psp, {t}",
            "movs {t}, #2",
            "msr control, {t}",
            "isb",
            "msr msp, {h}",
            t = out(reg) _,
            h = in(reg) handler_top,
        );
    }
}

/// The watchdog's first expiry (its interrupt is the NMI here): notes the watchdog as
/// the cause of the reset that follows and says so on UART0.
#[exception]
unsafe fn NonMaskableInt() {
    bootrecord::note(BootReason::Watchdog);
    let _ = writeln!(
        Console(Uart::init()),
        "\nWATCHDOG at {} ms: the serve loop did not come round in {} ms; reset follows",
        clock::now_ms(),
        watchdog::TIMEOUT_MS / 2
    );
    // The watchdog's second expiry resets the machine.
    loop {
        cortex_m::asm::nop();
    }
}

/// Prints the panic on UART0 and ends QEMU with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    bootrecord::note(BootReason::Fault);
    console::report_panic(Uart::init(), clock::now_ms(), info);
    exit_failure()
}

/// Prints the fault, the fault status registers and the stacked registers on UART0 and
/// ends QEMU with a failure status.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    bootrecord::note(BootReason::Fault);
    let mut uart = Console(Uart::init());
    // SAFETY: read-only use of the System Control Block's fault status registers.
    let scb = unsafe { &*cortex_m::peripheral::SCB::PTR };
    let sp = cortex_m::register::psp::read() as usize;
    let stack = socklab_baremetal::stack::board_stack();
    if sp < stack.bottom + 32 {
        // The program's stack overflowed: its registers were never stacked (the frame
        // would lie below RAM, so the PC is lost), and the stack pointer and the fault's
        // address (bfar) tell what happened.
        let _ = writeln!(
            uart,
            "\nSTACK OVERFLOW: HardFault with sp={sp:#010x} below the stack's bottom \
             {:#010x} ({} B reserved); pc unknown (not stacked); cfsr={:#010x} \
             hfsr={:#010x} bfar={:#010x}",
            stack.bottom,
            stack.reserved(),
            scb.cfsr.read(),
            scb.hfsr.read(),
            scb.bfar.read(),
        );
        exit_failure()
    }
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
