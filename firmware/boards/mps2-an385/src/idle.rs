//! Sleeping between polls: `wfi` until a frame arrives or the next poll is due.
//!
//! Two interrupt sources wake the core: the LAN9118's RX status level (NVIC line 13)
//! and the dual timer's one-shot alarm (line 10). Both are enabled in the NVIC but
//! interrupts stay masked with PRIMASK for the whole run, so no handler ever runs:
//! a pending, enabled interrupt still ends `wfi`, and this module clears it again.
//! The conditions themselves (a frame waiting, the deadline reached) are read from the
//! hardware after every wake-up, so a spurious or missed wake-up costs nothing but
//! one more round.

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

use crate::clock;
use crate::lan9118::{self, Lan9118};

/// An NVIC line of the mps2-an385 by number (the board has no peripheral access crate).
#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: both numbers below are valid external interrupt lines of this machine.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

const NIC_IRQ: Irq = Irq(lan9118::MPS2_AN385_IRQ);
const ALARM_IRQ: Irq = Irq(clock::DUALTIMER_IRQ);

/// Lets the NIC and the alarm wake the core. Interrupts must be masked (PRIMASK set,
/// `cortex_m::interrupt::disable`) before this and stay masked afterwards.
pub fn init(nic: &mut Lan9118) {
    assert!(
        cortex_m::register::primask::read().is_inactive(),
        "idle::init needs interrupts masked"
    );
    nic.enable_rx_interrupt();
    NVIC::unpend(NIC_IRQ);
    NVIC::unpend(ALARM_IRQ);
    // SAFETY: with PRIMASK set, unmasking cannot start a handler; it only lets these
    // lines end `wfi`.
    unsafe {
        NVIC::unmask(NIC_IRQ);
        NVIC::unmask(ALARM_IRQ);
    }
}

/// Returns when the NIC holds a received frame or `ms` milliseconds have passed,
/// whichever is first (at once for 0 or when a frame is already waiting).
pub fn wait(nic: &mut Lan9118, ms: u64) {
    let deadline = clock::now_ticks() + ms * clock::TICKS_PER_MS;
    loop {
        // Drop both lines first, then look: an event after the look raises a line again
        // and ends the `wfi` below at once.
        nic.clear_rx_interrupt();
        clock::disarm_alarm();
        NVIC::unpend(NIC_IRQ);
        NVIC::unpend(ALARM_IRQ);
        let now = clock::now_ticks();
        if nic.rx_frames_waiting() > 0 || now >= deadline {
            break;
        }
        clock::arm_alarm(deadline - now);
        cortex_m::asm::wfi();
    }
    clock::disarm_alarm();
}
