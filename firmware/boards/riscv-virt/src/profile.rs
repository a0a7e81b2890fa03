//! `--profile`: where the hart's time goes, from its own cycle counter, logged every 5 s.
//!
//! `mcycle` counts the hart's cycles (under QEMU's TCG it follows the host's time-stamp
//! counter, so only its proportions mean something); `mtime` (10 MHz) dates the report.
//! A period splits into the driver's receive side (completing frames, posting buffers
//! back), its transmit side (queueing frames and notifying the device, which traps into
//! QEMU), the stack and services (the rest of a poll), and sleep in `wfi`.

use log::info;

use crate::clock;
use crate::nic::Counters;

/// The hart's cycle counter.
pub fn cycles() -> u64 {
    riscv::register::mcycle::read64()
}

/// What a period has summed so far.
pub struct Profile {
    since_ticks: u64,
    since_cycles: u64,
    poll_cycles: u64,
    idle_cycles: u64,
    nic_then: Counters,
}

impl Profile {
    /// Five seconds of `mtime`.
    const PERIOD_TICKS: u64 = 5 * clock::TICKS_PER_SECOND;

    /// Starts the first period now.
    pub fn new(nic: Counters) -> Profile {
        Profile {
            since_ticks: clock::now_ticks(),
            since_cycles: cycles(),
            poll_cycles: 0,
            idle_cycles: 0,
            nic_then: nic,
        }
    }

    /// Adds one round of the loop (`poll` and `idle` cycles) and logs the period once it
    /// is five seconds long.
    pub fn record(&mut self, poll: u64, idle: u64, nic: Counters) {
        self.poll_cycles += poll;
        self.idle_cycles += idle;
        let ticks = clock::now_ticks() - self.since_ticks;
        if ticks < Self::PERIOD_TICKS {
            return;
        }
        let total = (cycles() - self.since_cycles).max(1);
        let then = self.nic_then;
        let rx = nic.rx_cycles - then.rx_cycles;
        let tx = nic.tx_cycles - then.tx_cycles;
        let per_mille = |c: u64| c * 1000 / total;
        let stack = self.poll_cycles.saturating_sub(rx + tx);
        info!(
            "profile {} ms ({} Mcycles): driver RX {}‰ ({} frames), driver TX {}‰ ({} frames), \
             stack and services {}‰, idle {}‰",
            ticks / clock::TICKS_PER_MS,
            total / 1_000_000,
            per_mille(rx),
            nic.rx_frames - then.rx_frames,
            per_mille(tx),
            nic.tx_frames - then.tx_frames,
            per_mille(stack),
            per_mille(self.idle_cycles)
        );
        *self = Profile::new(nic);
    }
}
