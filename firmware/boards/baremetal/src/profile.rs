//! `--profile`: where the time goes, logged every [`PERIOD_MS`].
//!
//! A period splits the board's [`Board::counter`] into the NIC driver's receive side
//! (looking for and taking frames), its transmit side (finding room, handing frames
//! over, flushing), the stack and services (the rest of a poll), and sleep. Under
//! QEMU's TCG a cycle counter follows the host's time-stamp counter, so only the
//! proportions mean something.

use core::marker::PhantomData;

use log::info;

use crate::board::Board;
use crate::phy::DriverTime;

/// Length of one profile period, in milliseconds.
pub const PERIOD_MS: u64 = 5000;

/// What a period has summed so far.
pub struct Profile<B> {
    since_ms: u64,
    since_count: u64,
    poll: u64,
    idle: u64,
    driver_then: DriverTime,
    board: PhantomData<B>,
}

impl<B: Board> Profile<B> {
    /// Starts the first period now; `driver` is the driver's time so far.
    pub fn new(driver: DriverTime) -> Profile<B> {
        Profile {
            since_ms: B::now_ms(),
            since_count: B::counter(),
            poll: 0,
            idle: 0,
            driver_then: driver,
            board: PhantomData,
        }
    }

    /// Adds one round of the loop (`poll` and `idle`, in counter units) and logs the
    /// period once it is [`PERIOD_MS`] long.
    pub fn record(&mut self, poll: u64, idle: u64, driver: DriverTime) {
        self.poll += poll;
        self.idle += idle;
        let ms = B::now_ms() - self.since_ms;
        if ms < PERIOD_MS {
            return;
        }
        let total = (B::counter() - self.since_count).max(1);
        let then = self.driver_then;
        let rx = driver.rx_time - then.rx_time;
        let tx = driver.tx_time - then.tx_time;
        let per_mille = |count: u64| count * 1000 / total;
        let stack = self.poll.saturating_sub(rx + tx);
        info!(
            "profile {ms} ms ({} M{}): driver RX {}‰ ({} frames), driver TX {}‰ ({} frames), \
             stack and services {}‰, idle {}‰",
            total / 1_000_000,
            B::COUNTER_UNIT,
            per_mille(rx),
            driver.rx_frames - then.rx_frames,
            per_mille(tx),
            driver.tx_frames - then.tx_frames,
            per_mille(stack),
            per_mille(self.idle)
        );
        *self = Profile::new(driver);
    }
}
