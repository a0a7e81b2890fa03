//! The riscv-virt board (riscv32imac, virtio-net) in QEMU: the conformance suite over
//! user networking (ports forwarded on 127.0.0.1, no root) and over a TAP in a private
//! namespace (the device's own addresses, ping and IPv6), the abrupt-death reliability
//! cases, crash tests (a patched image faults and QEMU exits with status 1, no hang), the
//! boot record across a reset, and the command line QEMU really runs with. One area, so
//! its cases run side by side. The TAP cases need root.

use std::collections::BTreeMap;

use socklab_host::launch::{
    find_image, Image, LaunchError, Machine, QemuDevice, QemuNet, QemuOptions, RunningBoard,
    FORWARDED_PORTS,
};
use socklab_tests::{
    boot_cases, crash, crash_cases, network_cases, reliability, transport_cases, BoardKind,
};

mod user {
    use super::*;
    transport_cases!(BoardKind::RISCV_USER);
}

mod tap {
    use super::*;
    transport_cases!(BoardKind::RISCV_TAP);
    network_cases!(BoardKind::RISCV_TAP);

    #[test]
    fn clients_reset_mid_transfer_free_their_sockets() {
        let _area = socklab_tests::area::enter(module_path!());
        reliability::reset_clients_free_their_sockets(BoardKind::RISCV_TAP);
    }

    #[test]
    fn clients_vanished_mid_transfer_free_their_sockets() {
        let _area = socklab_tests::area::enter(module_path!());
        reliability::silent_clients_free_their_sockets(BoardKind::RISCV_TAP);
    }
}

crash_cases!(Machine::RiscvVirt);
boot_cases!(Machine::RiscvVirt);

/// A boot option the image does not know is refused before QEMU starts, by the
/// image's own parser, with a message that names it.
#[test]
fn unknown_boot_option_stops_the_image_with_a_reason() {
    let _area = socklab_tests::area::enter(module_path!());
    let image = find_image(Machine::RiscvVirt, &Image::Rebuilt).expect("the riscv-virt image");
    let error = QemuDevice::start(QemuOptions {
        firmware_args: vec!["--no-such-option".to_owned()],
        ..crash::user_options(Machine::RiscvVirt, image)
    })
    .expect_err("the image refuses the option");
    let LaunchError::BootOptions(reason) = &error else {
        panic!("expected the boot options refused, got: {error}");
    };
    assert!(
        reason.contains("unknown option `--no-such-option`"),
        "{reason}"
    );
}

/// The QEMU the launcher starts (the one `socklab run riscv` and the cargo runner use)
/// runs, as its `/proc/PID/cmdline` says, with `event_idx=off` on the virtio-net device
/// and every port of the tool's list forwarded from 127.0.0.1:base+port, and no other.
#[test]
fn qemu_runs_with_event_idx_off_and_the_tools_forwarded_ports() {
    let _area = socklab_tests::area::enter(module_path!());
    let device = QemuDevice::start(QemuOptions {
        machine: Machine::RiscvVirt,
        net: QemuNet::user_any_ports(),
        ..QemuOptions::default()
    })
    .expect("the riscv-virt image boots");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", device.pid())).expect("QEMU runs");
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    assert!(args[0].ends_with("qemu-system-riscv32"), "{args:?}");
    let values = |flag: &str| -> Vec<&String> {
        args.windows(2)
            .filter(|pair| pair[0] == flag)
            .map(|pair| &pair[1])
            .collect()
    };

    let nics: Vec<&String> = values("-device")
        .into_iter()
        .filter(|value| value.starts_with("virtio-net-device"))
        .collect();
    assert_eq!(nics.len(), 1, "one virtio-net device: {args:?}");
    assert!(
        nics[0].split(',').any(|option| option == "event_idx=off"),
        "virtio-net without event_idx=off: {}",
        nics[0]
    );

    let netdevs = values("-netdev");
    assert_eq!(netdevs.len(), 1, "one netdev: {args:?}");
    let base = device.port_base().expect("user networking");
    let forwarded: BTreeMap<u16, u16> = netdevs[0]
        .split(',')
        .filter_map(|option| option.strip_prefix("hostfwd="))
        .map(|rule| {
            let rule = rule
                .strip_prefix("tcp:127.0.0.1:")
                .unwrap_or_else(|| panic!("a TCP rule on 127.0.0.1 only: {rule}"));
            let (host, guest) = rule.split_once("-:").expect("host-:guest");
            (
                guest.parse().expect("a port"),
                host.parse().expect("a port"),
            )
        })
        .collect();
    let expected: BTreeMap<u16, u16> = FORWARDED_PORTS
        .iter()
        .map(|&port| (port, base + port))
        .collect();
    assert_eq!(forwarded, expected, "{}", netdevs[0]);
    assert_eq!(
        netdevs[0].matches("hostfwd=").count(),
        FORWARDED_PORTS.len(),
        "{}",
        netdevs[0]
    );
    // And the device answers through them.
    device
        .lab_client()
        .expect("HELLO through the forwarded lab port");
}
