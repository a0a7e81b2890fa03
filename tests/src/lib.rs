//! socklab's conformance suite: cases written once against the host tools'
//! [`Device`] trait and run, through [`conformance!`], on every board.
//!
//! Every case starts its own device (a `socklab-tap` process on a TAP in a
//! private namespace, or a QEMU), talks to it with real kernel sockets and
//! asserts what DESIGN.md promises. When a case fails, the device's log is
//! printed under the failure.

pub mod cases;

use std::ops::Deref;
use std::time::{Duration, Instant};

use socklab_host::launch::{Device, TapDevice};

/// The boards the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// `socklab-tap` on a TAP interface in a private namespace.
    Tap,
}

/// A device under test: stopped and cleaned up on drop, its log printed if
/// the test is failing.
pub struct Dut {
    board: Board,
    device: Box<dyn Device>,
}

impl Dut {
    /// Starts a fresh device on `board`.
    pub fn start(board: Board) -> Dut {
        let device: Box<dyn Device> = match board {
            Board::Tap => Box::new(TapDevice::start_default().expect("start socklab-tap")),
        };
        Dut { board, device }
    }

    /// The board this device runs on.
    pub fn board(&self) -> Board {
        self.board
    }

    /// The name `INFO` gives for this board.
    pub fn board_name(&self) -> &'static str {
        match self.board {
            Board::Tap => "linux-tap",
        }
    }

    /// True when the host reaches the device at its own addresses, so both
    /// ends see the same address pair (not through QEMU's NAT).
    pub fn has_real_addresses(&self) -> bool {
        match self.board {
            Board::Tap => true,
        }
    }
}

impl Deref for Dut {
    type Target = dyn Device;
    fn deref(&self) -> &Self::Target {
        self.device.as_ref()
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} device log (pid {}) ----\n{}\n---- end of device log ----",
                self.device.board(),
                self.device.pid(),
                self.device.log()
            );
        }
    }
}

/// Retries `check` every 20 ms until it returns `Some` or `limit` passes.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Declares one `#[test]` per conformance case for a board:
/// `conformance!(Board::Tap; hello_shows_each_client_its_own_socket, ...)`.
#[macro_export]
macro_rules! conformance {
    ($board:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let dut = $crate::Dut::start($board);
                $crate::cases::$case(&dut);
            }
        )+
    };
}

/// The cases every board passes, whatever its network.
#[macro_export]
macro_rules! transport_cases {
    ($board:expr) => {
        $crate::conformance!($board;
            hello_shows_each_client_its_own_socket,
            echo_answers_the_text,
            say_reaches_every_other_client,
            who_lists_the_clients,
            netstat_lists_connections_and_listeners,
            info_reports_sizes_and_counters,
            quit_says_bye_and_closes,
            empty_line_gets_no_answer,
            unknown_command_is_an_error,
            long_line_is_refused_and_connection_survives,
            longest_line_with_crlf_is_accepted,
            whole_pool_is_served_at_once,
            two_hundred_cycles_leave_every_slot_listening,
            client_that_resets_frees_its_slot,
            echo_returns_a_mebibyte_byte_exact,
            discard_swallows_bulk_data,
            chargen_lines_follow_rfc_864,
        );
    };
}

/// The cases that need the device's own addresses on the host's network:
/// refusal by RST, ping, IPv6 (not through QEMU's user-mode NAT).
#[macro_export]
macro_rules! network_cases {
    ($board:expr) => {
        $crate::conformance!($board;
            closed_port_is_refused,
            ping_is_answered,
            lab_session_over_ipv6,
            connect_beyond_the_pool_is_refused,
        );
    };
}
