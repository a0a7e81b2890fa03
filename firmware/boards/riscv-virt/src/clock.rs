//! Monotonic millisecond clock and wake-up alarm from the CLINT's `mtime` (10 MHz).
//!
//! `mtime` is a 64-bit counter that QEMU keeps in step with host time; it never wraps in
//! practice. The alarm is hart 0's `mtimecmp`: when `mtime` reaches it, the machine timer
//! interrupt becomes pending, which only ends a `wfi` (no handler runs, see `idle`).

use core::ptr::{read_volatile, write_volatile};

/// `mtime`, low word (the high word follows at +4).
const MTIME: usize = 0x0200_BFF8;
/// Hart 0's `mtimecmp`, low word (the high word follows at +4).
const MTIMECMP: usize = 0x0200_4000;

/// The CLINT's timebase on QEMU's virt machine.
pub const TICKS_PER_SECOND: u64 = 10_000_000;
/// Ticks in one millisecond.
pub const TICKS_PER_MS: u64 = TICKS_PER_SECOND / 1000;

/// Ticks (10 MHz) since QEMU started the machine, never going backwards.
pub fn now_ticks() -> u64 {
    // SAFETY: reads of the CLINT's `mtime`, which exists on this machine. The high word
    // is read before and after the low one so that a carry between them is not missed.
    unsafe {
        loop {
            let hi = read_volatile((MTIME + 4) as *const u32);
            let lo = read_volatile(MTIME as *const u32);
            if read_volatile((MTIME + 4) as *const u32) == hi {
                return (u64::from(hi) << 32) | u64::from(lo);
            }
        }
    }
}

/// Milliseconds since QEMU started the machine.
pub fn now_ms() -> u64 {
    now_ticks() / TICKS_PER_MS
}

/// Sets hart 0's `mtimecmp`, one 32-bit half at a time without passing through an
/// earlier value (which could raise the interrupt by mistake).
fn set_compare(at: u64) {
    // SAFETY: writes to hart 0's `mtimecmp`, which only this module touches.
    unsafe {
        write_volatile((MTIMECMP + 4) as *mut u32, u32::MAX);
        write_volatile(MTIMECMP as *mut u32, at as u32);
        write_volatile((MTIMECMP + 4) as *mut u32, (at >> 32) as u32);
    }
}

/// Makes the machine timer interrupt pending at tick `at` (at once if it is past).
pub fn arm_alarm(at: u64) {
    set_compare(at);
}

/// Clears the machine timer interrupt: the next compare is never reached.
pub fn disarm_alarm() {
    set_compare(u64::MAX);
}
