//! socklab's conformance suite: cases written once against the host tools'
//! [`RunningBoard`] trait and run, through [`conformance!`], on every board.
//!
//! Every case starts its own device (a `socklab-tap` process on a TAP in a
//! private namespace, or a QEMU), talks to it with real kernel sockets and
//! asserts what the README promises. When a case fails, the device's log is
//! printed under the failure; a device that died during a case (a firmware
//! crash ends QEMU) fails it.
//!
//! [`reliability`] holds the cases that abuse the device (a SYN flood,
//! slowloris, a slow reader, a bad link, abrupt deaths, a soak); each starts
//! its device with the options it needs ([`Dut::start_with`]).
//!
//! [`thirdparty`] drives tools we did not write (tshark, nmap, hping3, ping,
//! a Java client, Python asyncio) against the device from its namespace.
//!
//! The tests themselves are one binary, `tests/suite`, a module per area;
//! [`area`] keeps the areas from running at the same time.

pub mod area;
pub mod boot;
pub mod browser;
pub mod cases;
pub mod crash;
pub mod flood;
pub mod http;
pub mod image;
pub mod iperf;
pub mod networks;
pub mod page;
pub mod reliability;
pub mod thirdparty;

use std::ops::Deref;
use std::time::{Duration, Instant};

pub use socklab_host::board::BoardKind;
pub use socklab_host::board::StartOptions;
use socklab_host::launch::RunningBoard;

/// How the host sees a device refuse a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The device's RST reaches the host: `connect()` fails with
    /// "connection refused".
    Reset,
    /// QEMU's user networking accepts the host's connection itself and
    /// closes it when the device answers the SYN with RST: the connection
    /// ends without a byte (no `HELLO`).
    ClosedWithoutHello,
}

/// A device under test: stopped and cleaned up on drop, its log printed if
/// the test is failing.
pub struct Dut {
    board: BoardKind,
    device: Box<dyn RunningBoard>,
    /// The TAP the device is attached to, if any (host side, in the
    /// device's namespace).
    tap: Option<String>,
}

impl Dut {
    /// Starts a fresh device on `board`.
    pub fn start(board: BoardKind) -> Dut {
        Self::start_with(board, &[])
    }

    /// Starts a fresh device on `board` with device options, the same words
    /// on every board: `socklab-tap`'s flags, which the QEMU images take as
    /// boot options (e.g. `["--idle-timeout-ms", "2000"]`).
    pub fn start_with(board: BoardKind, options: &[&str]) -> Dut {
        Self::start_opts(board, StartOptions::with_args(options))
    }

    /// Starts a fresh device on `board` with these options.
    pub fn start_opts(board: BoardKind, options: StartOptions) -> Dut {
        let shown = format!("{:?}", options.device_args);
        let device = board
            .start(options)
            .unwrap_or_else(|e| panic!("start {board} {shown}: {e}"));
        let tap = device.tap_name().map(str::to_owned);
        Dut { board, device, tap }
    }

    /// Wraps a device started by other means (e.g. with fault options).
    pub fn from_device(board: BoardKind, device: Box<dyn RunningBoard>) -> Dut {
        let tap = device.tap_name().map(str::to_owned);
        Dut { board, device, tap }
    }

    /// The host side of the device's TAP (in the device's namespace), if it
    /// has one.
    pub fn tap_name(&self) -> Option<&str> {
        self.tap.as_deref()
    }

    /// The board this device runs on.
    pub fn board(&self) -> BoardKind {
        self.board
    }

    /// The name `INFO` gives for this board.
    pub fn board_name(&self) -> &'static str {
        self.board.board_name()
    }

    /// True when the host reaches the device at its own addresses, so both
    /// ends see the same address pair (not through QEMU's NAT).
    pub fn has_real_addresses(&self) -> bool {
        self.board.has_real_addresses()
    }

    /// How a refused connection shows on the host.
    pub fn refusal(&self) -> Refusal {
        if self.device.behind_nat() {
            Refusal::ClosedWithoutHello
        } else {
            Refusal::Reset
        }
    }

    /// Device ports where nothing listens and that the host can reach.
    pub fn closed_ports(&self) -> &'static [u16] {
        self.board.closed_ports()
    }

    /// Panics, with the device's log, if the device is no longer running
    /// (a firmware crash ends QEMU).
    pub fn assert_running(&self) {
        if let Some(status) = self.device.exit_status() {
            panic!(
                "the {} device (pid {}) exited during the test: {status}",
                self.device.board(),
                self.device.pid()
            );
        }
    }
}

impl Deref for Dut {
    type Target = dyn RunningBoard;
    fn deref(&self) -> &Self::Target {
        self.device.as_ref()
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let ended = match self.device.exit_status() {
                Some(status) => format!(", exited: {status}"),
                None => String::new(),
            };
            eprintln!(
                "---- {} device log (pid {}{ended}) ----\n{}\n---- end of device log ----",
                self.device.board(),
                self.device.pid(),
                self.device.log()
            );
        }
    }
}

/// The `socklab` binary built next to the test binaries (`cargo build
/// --workspace --bins`, which scripts/test runs first).
pub fn socklab_bin() -> std::path::PathBuf {
    built_binary("socklab")
}

/// A binary of the workspace (`socklab`, `socklab-tap`) built next to the
/// test binaries (`cargo build --workspace --bins`, which scripts/test runs
/// first).
pub fn built_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release --workspace --bins` first (scripts/test does)",
        bin.display()
    );
    bin
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
/// `conformance!(BoardKind::Tap; hello_shows_each_client_its_own_socket, ...)`;
/// or with `start = EXPR;` first, on the device `EXPR` starts for each case (a
/// two-network device seen from its second network, say).
#[macro_export]
macro_rules! conformance {
    (start = $start:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _area = $crate::area::enter(module_path!());
                let dut = $start;
                $crate::cases::$case(&dut);
                dut.assert_running();
            }
        )+
    };
    ($board:expr; $($case:ident),+ $(,)?) => {
        $crate::conformance!(start = $crate::Dut::start($board); $($case),+);
    };
}

/// The cases every board passes, whatever its network (`start = EXPR` as in
/// [`conformance!`]).
#[macro_export]
macro_rules! transport_cases {
    (start = $start:expr) => {
        $crate::conformance!(start = $start;
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
            closed_port_is_refused,
            clients_beyond_the_pool_wait_and_beyond_the_backlog_are_refused,
            a_full_device_answers_who_netstat_and_info,
            daytime_answers_over_tcp,
        );
    };
    ($board:expr) => {
        $crate::transport_cases!(start = $crate::Dut::start($board));
    };
}

/// The cases that need the device's own addresses on the host's network:
/// ping, IPv6 and UDP (not through QEMU's user-mode NAT, which forwards TCP
/// ports only). `start = EXPR` as in [`conformance!`].
#[macro_export]
macro_rules! network_cases {
    (start = $start:expr) => {
        $crate::conformance!(start = $start;
            ping_is_answered,
            lab_session_over_ipv6,
            udp_services_answer,
            daytime_answers_over_udp,
        );
    };
    ($board:expr) => {
        $crate::network_cases!(start = $crate::Dut::start($board));
    };
}
