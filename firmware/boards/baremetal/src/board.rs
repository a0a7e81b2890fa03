//! The board contract: what the serve loop needs from a board besides its NIC driver.

use crate::nic::Nic;

/// One bare-metal board: its clock, its profile counter, and the code that watches and
/// waits on its NIC.
pub trait Board {
    /// The board's network controller.
    type Nic: Nic;

    /// What [`counter`](Self::counter) counts, as the profile line names it
    /// (`"cycles"`, `"ticks"`).
    const COUNTER_UNIT: &'static str;

    /// Whether a stack overflow faults (and is reported) on this board, rather than
    /// running on into other memory: `--test-stack-overflow` runs only where it does.
    const OVERFLOW_FAULTS: bool;

    /// Milliseconds since boot: the application's clock. Never goes backwards.
    fn now_ms() -> u64;

    /// A fast free-running counter that the profile splits time with (the CPU's cycle
    /// counter, or a timer). Never goes backwards.
    fn counter() -> u64;

    /// Called after every poll, for each NIC: logs what changed in its health (link,
    /// errors).
    fn check_nic(&mut self, nic: &mut Self::Nic);

    /// Tells the board's watchdog that the serve loop came round: called once per
    /// poll. A loop that stops calling it is reset after the board's timeout.
    fn feed_watchdog(&mut self);

    /// Sleeps until one of the NICs holds something for the stack (a received frame, a
    /// transmit buffer it was waiting for) or `ms` milliseconds have passed; at once for 0.
    fn idle(&mut self, nics: &mut [&mut Self::Nic], ms: u64);
}
