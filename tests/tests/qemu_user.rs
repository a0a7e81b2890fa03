//! The conformance suite on the mps2-an385 board: the firmware image in QEMU
//! on user networking (no root), reached through the ports QEMU forwards on
//! 127.0.0.1; each device gets a free port base, so cases run side by side.
//! Ping and IPv6 do not cross QEMU's user-mode NAT: they run on `qemu_tap`.
//!
//! Also: a firmware crash fails a case at once and shows the UART log.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socklab_host::launch::{
    find_image, Image, LaunchError, Machine, QemuDevice, QemuNet, QemuOptions,
};
use socklab_tests::{cases, crash, eventually, transport_cases, BoardKind, Dut};

transport_cases!(BoardKind::MPS2_USER);

/// A scratch directory for patched images, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("socklab-{name}-{}", std::process::id()));
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
        net: QemuNet::user_any_ports(),
        image: Image::Path(image),
        ..QemuOptions::default()
    }
}

/// The firmware faults while answering WHO: the case fails within its
/// bounded waits, QEMU's exit (status 1) is noticed, and the UART log shows
/// the fault.
#[test]
fn firmware_crash_fails_the_case_and_shows_the_uart_log() {
    let scratch = Scratch::new("crash-who");
    let image = find_image(Machine::Mps2An385, &Image::Rebuilt).expect("the mps2-an385 image");
    let faulty = crash::image_faulting_in(&image, &scratch.0, &["WhoRow", "Display"])
        .expect("patch the image");
    let device = QemuDevice::start(options(faulty)).expect("the image boots");
    let dut = Dut::from_device(BoardKind::MPS2_USER, Box::new(device));

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
    assert_eq!(status.code(), Some(1), "semihosting EXIT_FAILURE");
    let running = panic::catch_unwind(AssertUnwindSafe(|| dut.assert_running()));
    assert!(running.is_err(), "assert_running passed on a dead device");
    let log = dut.log();
    assert!(log.contains("HARDFAULT pc="), "{log}");
    assert!(log.contains("QEMU exited"), "{log}");
}

/// The firmware faults while starting its services: `start` fails at once
/// with QEMU's exit status and the UART log, instead of waiting for a HELLO.
#[test]
fn crash_at_boot_fails_start_with_the_uart_log() {
    let scratch = Scratch::new("crash-boot");
    let image = find_image(Machine::Mps2An385, &Image::Rebuilt).expect("the mps2-an385 image");
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
    assert!(log.contains("HARDFAULT pc="), "{log}");
    let message = error.to_string();
    assert!(
        message.contains("exit status: 1") && message.contains("HARDFAULT"),
        "{message}"
    );
}
