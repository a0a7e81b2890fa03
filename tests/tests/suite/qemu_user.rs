//! The conformance suite on the mps2-an385 board: the firmware image in QEMU
//! on user networking (no root), reached through the ports QEMU forwards on
//! 127.0.0.1; each device gets a free port base, so cases run side by side.
//! Ping and IPv6 do not cross QEMU's user-mode NAT: they run on `qemu_tap`.
//!
//! Also: a firmware crash fails a case at once and shows the UART log, and a
//! stack overflow faults with a report (`crash_cases!`); the boot record counts
//! a reset and names its reason; the watchdog resets a hung loop.

use socklab_host::launch::Machine;
use socklab_tests::{boot_cases, crash_cases, transport_cases, BoardKind};

transport_cases!(BoardKind::MPS2_USER);
crash_cases!(Machine::Mps2An385);
boot_cases!(Machine::Mps2An385);
