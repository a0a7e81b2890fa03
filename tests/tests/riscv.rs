//! The riscv-virt board (riscv32imac, virtio-net) in QEMU: the conformance suite over
//! user networking (ports forwarded on 127.0.0.1, no root) and over a TAP in a private
//! namespace (the device's own addresses, ping and IPv6), the abrupt-death reliability
//! cases, and crash tests: a patched image faults and QEMU exits with status 1, no hang.
//! One binary, so its cases run side by side. The TAP cases need root.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socklab_host::launch::{
    find_image, Image, LaunchError, Machine, QemuDevice, QemuNet, QemuOptions,
};
use socklab_tests::{cases, crash, eventually, network_cases, reliability, transport_cases};
use socklab_tests::{BoardKind, Dut};

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
        reliability::reset_clients_free_their_sockets(BoardKind::RISCV_TAP);
    }

    #[test]
    fn clients_vanished_mid_transfer_free_their_sockets() {
        reliability::silent_clients_free_their_sockets(BoardKind::RISCV_TAP);
    }
}

/// A scratch directory for patched images, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("socklab-rv-{name}-{}", std::process::id()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(image: PathBuf) -> QemuOptions {
    QemuOptions {
        machine: Machine::RiscvVirt,
        net: QemuNet::user_any_ports(),
        image: Image::Path(image),
        ..QemuOptions::default()
    }
}

/// The firmware faults while answering WHO: the case fails within its bounded waits,
/// QEMU's exit (status 1 from `sifive_test`) is noticed, and the UART log shows the
/// exception.
#[test]
fn firmware_crash_fails_the_case_and_shows_the_uart_log() {
    let scratch = Scratch::new("crash-who");
    let image = find_image(Machine::RiscvVirt, &Image::Rebuilt).expect("the riscv-virt image");
    let faulty = crash::image_faulting_in(&image, &scratch.0, &["WhoRow", "Display"])
        .expect("patch the image");
    let device = QemuDevice::start(options(faulty)).expect("the image boots");
    let dut = Dut::from_device(BoardKind::RISCV_USER, Box::new(device));

    let started = Instant::now();
    let case = panic::catch_unwind(AssertUnwindSafe(|| cases::who_lists_the_clients(&dut)));
    assert!(case.is_err(), "the case passed on a crashed device");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the case took {:?} to notice",
        started.elapsed()
    );
    let status =
        eventually(Duration::from_secs(5), || dut.exit_status()).expect("QEMU's exit is noticed");
    assert_eq!(status.code(), Some(1), "sifive_test failure status");
    let log = dut.log();
    // mcause 2: illegal instruction.
    assert!(log.contains("EXCEPTION mcause=0x00000002"), "{log}");
    assert!(log.contains("QEMU exited"), "{log}");
}

/// The firmware faults while starting its services: `start` fails at once with QEMU's
/// exit status and the UART log, instead of waiting for a HELLO.
#[test]
fn crash_at_boot_fails_start_with_the_uart_log() {
    let scratch = Scratch::new("crash-boot");
    let image = find_image(Machine::RiscvVirt, &Image::Rebuilt).expect("the riscv-virt image");
    let faulty = crash::image_faulting_in(&image, &scratch.0, &["socklab_app", "3lab6listen"])
        .expect("patch the image");
    let started = Instant::now();
    let error = QemuDevice::start(options(faulty)).expect_err("a faulting image cannot start");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let LaunchError::Exited { status, log } = &error else {
        panic!("expected an exit, got: {error}");
    };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains("EXCEPTION mcause="), "{log}");
}

/// A boot option the image does not know stops it with a message that names it.
#[test]
fn unknown_boot_option_stops_the_image_with_a_reason() {
    let image = find_image(Machine::RiscvVirt, &Image::Rebuilt).expect("the riscv-virt image");
    let error = QemuDevice::start(QemuOptions {
        firmware_args: vec!["--no-such-option".to_owned()],
        ..options(image)
    })
    .expect_err("the image refuses the option");
    let LaunchError::Exited { status, log } = &error else {
        panic!("expected an exit, got: {error}");
    };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains("unknown option `--no-such-option`"), "{log}");
}
