//! The CMSDK APB watchdog at 0x4000_8000, as QEMU's mps2-an385 models it: a down
//! counter on the 25 MHz system clock. At zero it raises its interrupt (wired to the
//! NMI on this machine) and reloads; at zero again with the interrupt still raised it
//! resets the machine (QEMU's `-watchdog-action`, `reset` by default). Feeding it clears
//! the interrupt and reloads the counter.
//!
//! Each half of [`TIMEOUT_MS`] is one count from the load value: the NMI, half-way,
//! notes the watchdog as the cause in the boot record and reports on UART0; the reset
//! follows.

use core::ptr::write_volatile;

/// The watchdog's registers.
const BASE: usize = 0x4000_8000;
/// Load value: the counter restarts from it.
const LOAD: usize = BASE;
/// Control: bit 0 enables the interrupt (and the counter), bit 1 the reset.
const CONTROL: usize = BASE + 0x08;
/// Any write clears the interrupt and reloads the counter.
const INTCLR: usize = BASE + 0x0C;
/// CONTROL's interrupt enable.
const INTEN: u32 = 1 << 0;
/// CONTROL's reset enable.
const RESEN: u32 = 1 << 1;
/// The watchdog's clock (WDOGCLK, the system clock).
const CLOCK_HZ: u32 = 25_000_000;

/// A serve loop that does not come round in this time resets the machine. Its half
/// (the NMI) is longer than the loop's longest sleep, so an idle device is never
/// taken for a stuck one.
pub const TIMEOUT_MS: u32 = 4000;
const _: () = assert!(TIMEOUT_MS as u64 / 2 > socklab_baremetal::serve::MAX_IDLE_MS + 500);

fn write(addr: usize, value: u32) {
    // SAFETY: a watchdog register of this machine; only this module touches them.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// Starts the watchdog with [`TIMEOUT_MS`].
pub fn start() {
    write(LOAD, CLOCK_HZ / 1000 * (TIMEOUT_MS / 2));
    write(INTCLR, 1);
    write(CONTROL, INTEN | RESEN);
}

/// Clears the interrupt and reloads the counter: another [`TIMEOUT_MS`] to go.
pub fn feed() {
    write(INTCLR, 1);
}
