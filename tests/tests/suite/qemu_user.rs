//! The conformance suite on the mps2-an385 board: the firmware image in QEMU
//! on user networking (no root), reached through the ports QEMU forwards on
//! 127.0.0.1; each device gets a free port base, so cases run side by side.
//! Ping and IPv6 do not cross QEMU's user-mode NAT: they run on `qemu_tap`.
//!
//! Also: a firmware crash fails a case at once and shows the UART log; the boot
//! record counts a reset and names its reason; the watchdog resets a hung
//! loop; a stack overflow faults with a report.

use socklab_host::launch::Machine;
use socklab_tests::{boot_cases, crash_cases, transport_cases, BoardKind};

transport_cases!(BoardKind::MPS2_USER);
crash_cases!(Machine::Mps2An385);
boot_cases!(Machine::Mps2An385);

/// A stack overflow faults below the stack and is reported on the UART.
#[test]
fn stack_overflow_faults_with_a_report() {
    let _area = socklab_tests::area::enter(module_path!());
    socklab_tests::crash::stack_overflow_faults_with_a_report(Machine::Mps2An385);
}
