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

/// `socklab ifconfig` on mps2-an385, whose machine has one LAN9118: one
/// interface, its DHCP lease from QEMU, in text and JSON, and INFO says the
/// board serves one.
#[test]
fn ifconfig_shows_the_one_interface() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = socklab_tests::Dut::start(BoardKind::MPS2_USER);
    let lab = dut.addr(socklab_app::protocol::LAB_PORT).to_string();
    let run = |json: bool| {
        let mut command = std::process::Command::new(socklab_tests::socklab_bin());
        command.args(["ifconfig", &lab]);
        if json {
            command.arg("--json");
        }
        let output = command.output().expect("run socklab ifconfig");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let text = run(false);
    for expected in [
        "1: eth0: <UP> mtu 1500",
        "link/ether 02:00:00:00:00:01",
        "(dhcp)",
        "inet6 fdaa::1/64",
    ] {
        assert!(text.contains(expected), "`{expected}` missing:\n{text}");
    }
    assert!(
        !text.contains("eth1"),
        "a second interface on mps2-an385:\n{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&run(true)).expect("JSON");
    let interfaces = json.as_array().expect("an array");
    assert_eq!(interfaces.len(), 1, "{json}");
    assert_eq!(interfaces[0]["ipv4_source"], "dhcp", "{json}");
    assert!(
        interfaces[0]["rx_frames"].as_u64().is_some_and(|n| n > 0),
        "{json}"
    );
    let mut client = dut.lab_client().expect("a lab client");
    let info = client.info().expect("INFO");
    assert_eq!(info.get("interfaces"), Some("1"));
    assert_eq!(info.get("interfaces_max"), Some("1"));
    dut.assert_running();
}
