//! Sleeping between polls: `wfi` until a frame arrives or the next poll is due.
//!
//! Two interrupts wake the hart: the NIC's, routed through the PLIC as a machine external
//! interrupt, and the CLINT's machine timer (the alarm in `clock`). Both are enabled in
//! `mie` around the `wfi`, with `mstatus.MIE` clear, so no handler runs: a pending,
//! enabled interrupt still ends `wfi`, and this module clears it again. Outside the
//! wait, the timer belongs to the [`watchdog`], whose handler runs. The
//! conditions themselves (a frame waiting, the deadline reached) are read from the
//! hardware after every wake-up, so a spurious or missed wake-up costs one more round.

use core::ptr::{read_volatile, write_volatile};

use crate::clock;
use crate::nic::VirtioNet;
use crate::watchdog;

/// The PLIC of QEMU's virt machine.
const PLIC_BASE: usize = 0x0C00_0000;
/// Source priorities, one word per source.
const PLIC_PRIORITY: usize = PLIC_BASE;
/// Context 0 (hart 0, machine mode): enable bits, one per source.
const PLIC_ENABLE_CTX0: usize = PLIC_BASE + 0x2000;
/// Context 0: priority threshold.
const PLIC_THRESHOLD_CTX0: usize = PLIC_BASE + 0x20_0000;
/// Context 0: claim (read) and complete (write).
const PLIC_CLAIM_CTX0: usize = PLIC_BASE + 0x20_0004;

fn write(addr: usize, value: u32) {
    // SAFETY: a PLIC register of this machine; only this module touches the PLIC.
    unsafe { write_volatile(addr as *mut u32, value) }
}

fn read(addr: usize) -> u32 {
    // SAFETY: as in `write`.
    unsafe { read_volatile(addr as *const u32) }
}

/// Routes every NIC's interrupt to hart 0 and lets them and the timer end `wfi`.
pub fn init<'a>(nics: impl IntoIterator<Item = &'a VirtioNet>) {
    assert!(
        !riscv::register::mstatus::read().mie(),
        "idle::init needs interrupts off (mstatus.MIE clear)"
    );
    for nic in nics {
        let irq = nic.irq() as usize;
        write(PLIC_PRIORITY + 4 * irq, 1);
        let enable = PLIC_ENABLE_CTX0 + 4 * (irq / 32);
        write(enable, read(enable) | 1 << (irq % 32));
    }
    write(PLIC_THRESHOLD_CTX0, 0);
    clock::disarm_alarm();
    // SAFETY: with mstatus.MIE clear no handler can run; the bit only lets the timer
    // end `wfi` (`wait` enables the NIC's interrupt around its own `wfi`).
    unsafe { riscv::register::mie::set_mtimer() };
}

/// Takes every pending PLIC source off the pending list.
fn clear_external() {
    loop {
        let source = read(PLIC_CLAIM_CTX0);
        if source == 0 {
            break;
        }
        write(PLIC_CLAIM_CTX0, source);
    }
}

/// Returns when one of the NICs holds a received frame, frees a transmit buffer the
/// stack was waiting for, or `ms` milliseconds have passed, whichever is first (at once
/// for 0 or when a frame is already waiting).
///
/// The checks read the virtqueues in RAM; the interrupt and timer registers (MMIO, each
/// access a trip through QEMU's global lock) are touched only on the way to `wfi`.
pub fn wait(nics: &mut [&mut VirtioNet], ms: u64) {
    let ready =
        |nics: &mut [&mut VirtioNet]| nics.iter_mut().any(|n| n.rx_waiting() || n.tx_freed());
    if ms == 0 || ready(nics) {
        return;
    }
    let deadline = clock::now_ticks() + ms * clock::TICKS_PER_MS;
    // The watchdog's timer interrupt stays off while the alarm holds `mtimecmp`; the
    // external interrupt only ends `wfi`, with no handler.
    watchdog::pause();
    // SAFETY: with mstatus.MIE clear no handler can run; the bit only lets the NIC's
    // interrupt end `wfi`.
    unsafe { riscv::register::mie::set_mext() };
    loop {
        // Drop the NIC's interrupt first, then look: an event after the look raises it
        // again and ends the `wfi` below at once. Arming the alarm for a later time
        // clears the timer's.
        for nic in nics.iter_mut() {
            nic.ack_interrupt();
        }
        clear_external();
        if ready(nics) || clock::now_ticks() >= deadline {
            break;
        }
        clock::arm_alarm(deadline);
        riscv::asm::wfi();
    }
    // SAFETY: only stops the NIC's interrupt from ending a `wfi`, or reaching a handler.
    unsafe { riscv::register::mie::clear_mext() };
    watchdog::resume();
}
