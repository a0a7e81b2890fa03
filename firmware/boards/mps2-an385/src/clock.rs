//! Monotonic millisecond clock and wake-up alarm from the CMSDK dual timer (25 MHz).
//!
//! Timer 1 free-runs down from `u32::MAX` and is extended to 64 bits in software: every
//! read adds the ticks elapsed since the previous read, so the clock stays right as long
//! as it is read at least once per wrap (2^32 / 25 MHz = 171.8 s; the main loop reads it
//! at least every second). No interrupt counts time: under QEMU's TCG, tick interrupts
//! get lost, a free-running counter does not.
//!
//! Timer 2 is a one-shot alarm whose interrupt (NVIC line 10) only wakes the core from
//! `wfi`; interrupts stay masked with PRIMASK, so no handler runs.

use core::cell::Cell;
use core::ptr::{read_volatile, write_volatile};

use cortex_m::interrupt::{self, Mutex};

/// Base address of the CMSDK APB dual timer on the mps2-an385.
const DUALTIMER_BASE: usize = 0x4000_2000;
/// Timer 1 LOAD: the value the counter starts from (writing it restarts the count).
const T1_LOAD: usize = 0x00;
/// Timer 1 VALUE: the current count, read-only, counting down.
const T1_VALUE: usize = 0x04;
/// Timer 1 CONTROL: bit 0 one-shot, bit 1 32-bit, bits 2..3 prescale, bit 5 interrupt
/// enable, bit 6 periodic mode, bit 7 enable.
const T1_CONTROL: usize = 0x08;
/// Timer 2 LOAD (same layout as timer 1, 0x20 further).
const T2_LOAD: usize = 0x20;
/// Timer 2 CONTROL.
const T2_CONTROL: usize = 0x28;
/// Timer 2 INTCLR: any write clears its interrupt.
const T2_INTCLR: usize = 0x2C;

const CTRL_ONESHOT: u32 = 1 << 0;
const CTRL_32BIT: u32 = 1 << 1;
const CTRL_INT_ENABLE: u32 = 1 << 5;
const CTRL_ENABLE: u32 = 1 << 7;

/// The dual timer counts the 25 MHz APB clock.
pub const TICKS_PER_SECOND: u64 = 25_000_000;
/// Ticks in one millisecond.
pub const TICKS_PER_MS: u64 = TICKS_PER_SECOND / 1000;
/// NVIC line of the dual timer (both timers share it).
pub const DUALTIMER_IRQ: u16 = 10;

/// The software half of the 64-bit count.
#[derive(Clone, Copy)]
struct Extended {
    /// Timer 1's VALUE at the previous read.
    last: u32,
    /// Ticks counted up to that read.
    ticks: u64,
}

static STATE: Mutex<Cell<Extended>> = Mutex::new(Cell::new(Extended {
    last: u32::MAX,
    ticks: 0,
}));

fn reg(offset: usize) -> *mut u32 {
    (DUALTIMER_BASE + offset) as *mut u32
}

/// Starts timer 1 free-running from `u32::MAX`; the clock reads 0 ms from here.
pub fn init() {
    interrupt::free(|cs| {
        // SAFETY: MMIO writes to the dual timer, which only this module touches.
        unsafe {
            write_volatile(reg(T1_CONTROL), 0);
            write_volatile(reg(T1_LOAD), u32::MAX);
            // Enabled, 32-bit, free-running (wraps to u32::MAX), no interrupt.
            write_volatile(reg(T1_CONTROL), CTRL_ENABLE | CTRL_32BIT);
            write_volatile(reg(T2_CONTROL), 0);
            write_volatile(reg(T2_INTCLR), 1);
        }
        STATE.borrow(cs).set(Extended {
            last: u32::MAX,
            ticks: 0,
        });
    });
}

/// Ticks (25 MHz) since [`init`], never going backwards.
pub fn now_ticks() -> u64 {
    interrupt::free(|cs| {
        let state = STATE.borrow(cs);
        let mut ext = state.get();
        // SAFETY: a read of timer 1's VALUE register.
        let value = unsafe { read_volatile(reg(T1_VALUE)) };
        // It counts down: the ticks elapsed are how far it went below the last value.
        ext.ticks += u64::from(ext.last.wrapping_sub(value));
        ext.last = value;
        state.set(ext);
        ext.ticks
    })
}

/// Milliseconds since [`init`].
pub fn now_ms() -> u64 {
    now_ticks() / TICKS_PER_MS
}

/// Arms timer 2 to raise its interrupt in `ticks` ticks (at most 2^32, ~171 s; longer is
/// cut to that). The interrupt only marks NVIC line 10 pending, which ends a `wfi`.
pub fn arm_alarm(ticks: u64) {
    let ticks = ticks.clamp(1, u64::from(u32::MAX)) as u32;
    // SAFETY: MMIO writes to timer 2, which only this module touches.
    unsafe {
        write_volatile(reg(T2_CONTROL), 0);
        write_volatile(reg(T2_INTCLR), 1);
        write_volatile(reg(T2_LOAD), ticks);
        write_volatile(
            reg(T2_CONTROL),
            CTRL_ENABLE | CTRL_32BIT | CTRL_ONESHOT | CTRL_INT_ENABLE,
        );
    }
}

/// Stops timer 2 and clears its interrupt.
pub fn disarm_alarm() {
    // SAFETY: MMIO writes to timer 2, which only this module touches.
    unsafe {
        write_volatile(reg(T2_CONTROL), 0);
        write_volatile(reg(T2_INTCLR), 1);
    }
}
