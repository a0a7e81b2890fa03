//! The riscv-virt board (riscv32imac, virtio-net) in QEMU: the conformance suite over
//! user networking (ports forwarded on 127.0.0.1, no root) and over a TAP in a private
//! namespace (the device's own addresses, ping and IPv6), the abrupt-death reliability
//! cases, and crash tests: a patched image faults and QEMU exits with status 1, no hang.
//! One area, so its cases run side by side. The TAP cases need root.

use socklab_host::launch::{find_image, Image, LaunchError, Machine, QemuDevice, QemuOptions};
use socklab_tests::{crash, crash_cases, network_cases, reliability, transport_cases, BoardKind};

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
