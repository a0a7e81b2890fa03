//! Monotonic millisecond clock and wake-up alarm from the CLINT's `mtime` (10 MHz).
//!
//! `mtime` is a 64-bit counter that QEMU keeps in step with host time; it never wraps in
//! practice. The hart reads it through its `time` CSR, which QEMU answers from the same
//! counter without an MMIO access (an MMIO access takes QEMU's global lock, which its
//! I/O thread holds while it moves frames). The alarm is hart 0's `mtimecmp`: when `mtime`
//! reaches it, the machine timer interrupt becomes pending, which only ends a `wfi` (no
//! handler runs, see `idle`).

use core::ptr::write_volatile;

/// Hart 0's `mtimecmp`, low word (the high word follows at +4).
const MTIMECMP: usize = 0x0200_4000;

/// The CLINT's timebase on QEMU's virt machine.
pub const TICKS_PER_SECOND: u64 = 10_000_000;
/// Ticks in one millisecond.
pub const TICKS_PER_MS: u64 = TICKS_PER_SECOND / 1000;

/// Ticks (10 MHz) since QEMU started the machine, never going backwards.
pub fn now_ticks() -> u64 {
    // `time` and `timeh`, read so that a carry between the halves is not missed.
    riscv::register::time::read64()
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

/// Clears the machine timer interrupt for good: the next compare is never reached.
pub fn disarm_alarm() {
    set_compare(u64::MAX);
}
