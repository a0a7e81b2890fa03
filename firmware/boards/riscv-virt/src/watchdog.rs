//! A timer-interrupt watchdog: QEMU's `virt` machine has no watchdog device, so the
//! CLINT's machine timer interrupt stands in for one, and the `sifive_test` device
//! resets the machine.
//!
//! Feeding stores the time in RAM (no MMIO per poll). While the serve loop runs,
//! interrupts are on (`mstatus.MIE`) with only the timer's enabled, and hart 0's
//! `mtimecmp` is at most [`TIMEOUT_MS`] after the last feed; the handler re-arms it from
//! the last feed, or, when that is [`TIMEOUT_MS`] old, notes the watchdog in the boot
//! record, reports on the UART and resets. `idle` turns interrupts off around its `wfi`
//! (whose alarm shares `mtimecmp`, and whose sleep is shorter than the timeout) and
//! [`resume`]s the watchdog after it.

use core::fmt::Write;
use core::ptr::write_volatile;
use core::sync::atomic::{AtomicU32, Ordering};

use riscv::interrupt::Interrupt;
use socklab_app::BootReason;
use socklab_baremetal::{bootrecord, Console};

use crate::clock;
use crate::uart::Uart;

/// A serve loop that does not come round in this time resets the machine. Longer than
/// the loop's longest sleep, so an idle device is never taken for a stuck one.
pub const TIMEOUT_MS: u32 = 4000;
const _: () = assert!(TIMEOUT_MS as u64 > socklab_baremetal::serve::MAX_IDLE_MS + 1000);

/// The `sifive_test` device.
const SIFIVE_TEST: usize = 0x0010_0000;
/// `sifive_test` word that resets the machine.
const SIFIVE_TEST_RESET: u32 = 0x7777;

/// The clock's milliseconds (low 32 bits) at the last feed.
static FED_MS: AtomicU32 = AtomicU32::new(0);

/// Milliseconds since the last feed.
fn since_fed() -> u32 {
    (clock::now_ms() as u32).wrapping_sub(FED_MS.load(Ordering::Relaxed))
}

/// The serve loop came round: another [`TIMEOUT_MS`] to go.
pub fn feed() {
    FED_MS.store(clock::now_ms() as u32, Ordering::Relaxed);
}

/// Points the timer at [`TIMEOUT_MS`] after the last feed.
fn arm() {
    let left = TIMEOUT_MS.saturating_sub(since_fed());
    clock::arm_alarm(clock::now_ticks() + u64::from(left) * clock::TICKS_PER_MS);
}

/// Starts the watchdog: fed now, the timer armed, its interrupt taken.
pub fn start() {
    feed();
    resume();
}

/// Re-arms the timer for the watchdog and takes its interrupt (after `idle` used the
/// timer for its own alarm with interrupts off).
pub fn resume() {
    arm();
    // SAFETY: the machine timer's handler below is the only one enabled (`idle` enables
    // the external interrupt only with `mstatus.MIE` clear); it touches only
    // `mtimecmp` (owned by `clock`, which nothing else writes meanwhile), the UART and
    // the boot record.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::register::mstatus::set_mie();
    }
}

/// Stops taking the timer's interrupt, for `idle`'s `wfi`.
pub fn pause() {
    // SAFETY: masking interrupts only delays the handler until `resume`.
    unsafe { riscv::register::mstatus::clear_mie() };
}

/// The machine timer: re-arms, or resets a loop that has not come round in time.
#[riscv_rt::core_interrupt(Interrupt::MachineTimer)]
fn machine_timer() {
    let since = since_fed();
    if since < TIMEOUT_MS {
        arm();
        return;
    }
    bootrecord::note(BootReason::Watchdog);
    let _ = writeln!(
        Console(Uart),
        "\nWATCHDOG at {} ms: the serve loop did not come round in {since} ms; reset",
        clock::now_ms()
    );
    // SAFETY: the `sifive_test` device of QEMU's virt machine; the write resets it.
    unsafe { write_volatile(SIFIVE_TEST as *mut u32, SIFIVE_TEST_RESET) };
    loop {
        core::hint::spin_loop();
    }
}
