//! The LAN9118's health in the log: link changes and error counts as they change, looked
//! at no more than once a second.

use log::{info, warn};

use crate::clock;
use crate::lan9118::{Counters, Lan9118};

/// What the log last said about the chip.
pub struct NicHealth {
    next_check_ms: u64,
    link_up: bool,
    errors: Counters,
}

impl NicHealth {
    /// Starts from the chip's state now.
    pub fn new(nic: &mut Lan9118) -> NicHealth {
        NicHealth {
            next_check_ms: 0,
            link_up: nic.is_link_up(),
            errors: nic.counters(),
        }
    }

    /// Logs a link change or grown error counts, if a second has passed since the last
    /// look.
    pub fn check(&mut self, nic: &mut Lan9118) {
        let now = clock::now_ms();
        if now < self.next_check_ms {
            return;
        }
        self.next_check_ms = now + 1000;
        let link_up = nic.is_link_up();
        if link_up != self.link_up {
            self.link_up = link_up;
            info!("LAN9118 link {}", if link_up { "up" } else { "down" });
        }
        let c = nic.counters();
        // Only the error counts: the traffic figures grow all the time.
        let errors = |c: &Counters| Counters {
            rx_frames: 0,
            rx_bytes: 0,
            tx_frames: 0,
            tx_bytes: 0,
            ..*c
        };
        if errors(&c) != errors(&self.errors) {
            warn!(
                "LAN9118 errors: rx {} bad, {} bad length, {} missed; tx {} failed, \
                 {} no space, {} bad length; {} register timeouts ({} frames in, {} out)",
                c.rx_errors,
                c.rx_length_errors,
                c.rx_missed,
                c.tx_errors,
                c.tx_no_space,
                c.tx_length_errors,
                c.csr_timeouts,
                c.rx_frames,
                c.tx_frames
            );
        }
        self.errors = c;
    }
}
