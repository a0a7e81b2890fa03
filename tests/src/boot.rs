//! The boot record and the stack on the QEMU boards: a fresh machine reports
//! `boot_reason=power-on` and `boot_count=1`; a machine reset (QEMU's monitor
//! `system_reset`, which reloads the image as a reset does) boots again with
//! the record kept, as `software-reset` and count 2; the painted stack's
//! high-water mark lies inside its reservation; a hung serve loop is reset by
//! the watchdog and the device comes back with `boot_reason=watchdog`.
//!
//! The cases are written once here and run on each QEMU machine
//! (`tests/tests/qemu_user.rs`, `tests/tests/riscv.rs`).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socklab_app::protocol::info;
use socklab_host::client::LabClient;
use socklab_host::launch::{find_image, Image, Machine, QemuDevice, QemuOptions};

use crate::{crash, eventually, BoardKind, Dut};

/// How long the machine may take to boot again and answer.
const REBOOT_WAIT: Duration = Duration::from_secs(20);

/// The device's `INFO` as `(boot_reason, boot_count, stack_used, stack_reserved)`.
fn boot_info(client: &mut LabClient) -> (String, u64, u64, u64) {
    let info = client.info().expect("INFO answered");
    let number = |key: &str| {
        info.parse::<u64>(key)
            .unwrap_or_else(|| panic!("INFO has no numeric `{key}`: {:?}", info.entries))
    };
    let reason = info
        .get(info::BOOT_REASON)
        .unwrap_or_else(|| panic!("INFO has no boot_reason: {:?}", info.entries))
        .to_owned();
    (
        reason,
        number(info::BOOT_COUNT),
        number(info::STACK_USED),
        number(info::STACK_RESERVED),
    )
}

/// The monitor socket of one QEMU run, removed on drop.
struct Monitor(PathBuf);

impl Monitor {
    fn new(machine: Machine) -> Self {
        Monitor(std::env::temp_dir().join(format!(
            "socklab-{}-monitor-{}.sock",
            machine.spec().board,
            std::process::id()
        )))
    }

    /// QEMU's argument for a monitor on this socket.
    fn qemu_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "-monitor".into(),
            format!("unix:{},server,nowait", self.0.display()).into(),
        ]
    }

    /// Sends one monitor command.
    fn command(&self, line: &str) {
        let mut stream = UnixStream::connect(&self.0)
            .unwrap_or_else(|e| panic!("connect to QEMU's monitor {}: {e}", self.0.display()));
        writeln!(stream, "{line}").expect("write to QEMU's monitor");
        // The monitor reads the line before the connection closes.
        std::thread::sleep(Duration::from_millis(300));
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh machine boots as `power-on`, count 1, its stack's high-water mark
/// inside its reservation; reset, it boots as `software-reset`, count 2, and
/// answers HELLO again.
pub fn boot_record_counts_resets_and_names_the_reason(machine: Machine) {
    let image = find_image(machine, &Image::Rebuilt)
        .unwrap_or_else(|e| panic!("the {} image: {e}", machine.spec().board));
    let monitor = Monitor::new(machine);
    let device = QemuDevice::start(QemuOptions {
        qemu_args: monitor.qemu_args(),
        ..crash::user_options(machine, image)
    })
    .expect("the image boots");
    let dut = Dut::from_device(BoardKind::QemuUser(machine), Box::new(device));

    let mut client = dut.lab_client().expect("lab client gets HELLO");
    let (reason, count, used, reserved) = boot_info(&mut client);
    assert_eq!((reason.as_str(), count), ("power-on", 1));
    assert!(
        used > 0 && used <= reserved,
        "stack_used {used} of stack_reserved {reserved}"
    );
    drop(client);

    monitor.command("system_reset");
    eventually(REBOOT_WAIT, || {
        dut.log().contains("boot 2 (software-reset)").then_some(())
    })
    .unwrap_or_else(|| panic!("no second boot in the UART log:\n{}", dut.log()));
    let mut client = eventually(REBOOT_WAIT, || dut.lab_client().ok())
        .unwrap_or_else(|| panic!("no HELLO after the reset:\n{}", dut.log()));
    let (reason, count, _, _) = boot_info(&mut client);
    assert_eq!((reason.as_str(), count), ("software-reset", 2));
    dut.assert_running();
}

/// Declares the boot record and watchdog cases as tests for a QEMU machine:
/// `boot_cases!(Machine::RiscvVirt)`.
#[macro_export]
macro_rules! boot_cases {
    ($machine:expr) => {
        #[test]
        fn boot_record_counts_resets_and_names_the_reason() {
            let _area = $crate::area::enter(module_path!());
            $crate::boot::boot_record_counts_resets_and_names_the_reason($machine);
        }

        #[test]
        fn watchdog_resets_a_hung_loop() {
            let _area = $crate::area::enter(module_path!());
            $crate::boot::watchdog_resets_a_hung_loop($machine);
        }
    };
}

/// When the test hook hangs the serve loop (on the power-on boot only), the
/// watchdog reports on the UART and resets the machine within its timeout;
/// the device boots again, answers HELLO and reports `boot_reason=watchdog`.
pub fn watchdog_resets_a_hung_loop(machine: Machine) {
    const HANG_AFTER_MS: u64 = 2000;
    let image = find_image(machine, &Image::Rebuilt)
        .unwrap_or_else(|e| panic!("the {} image: {e}", machine.spec().board));
    let device = QemuDevice::start(QemuOptions {
        firmware_args: vec!["--test-hang-after-ms".into(), HANG_AFTER_MS.to_string()],
        ..crash::user_options(machine, image)
    })
    .expect("the image boots");
    let dut = Dut::from_device(BoardKind::QemuUser(machine), Box::new(device));
    let mut client = dut.lab_client().expect("lab client gets HELLO");
    let timeout = client
        .info()
        .expect("INFO answered")
        .parse::<u64>(info::WATCHDOG_MS)
        .expect("INFO has a numeric watchdog_ms");
    assert!((1000..=10_000).contains(&timeout), "watchdog_ms={timeout}");
    drop(client);

    let hung = eventually(REBOOT_WAIT, || {
        dut.log()
            .contains("the serve loop hangs now")
            .then(Instant::now)
    })
    .unwrap_or_else(|| panic!("the hook did not hang the loop:\n{}", dut.log()));
    eventually(REBOOT_WAIT, || {
        dut.log().contains("boot 2 (watchdog)").then_some(())
    })
    .unwrap_or_else(|| panic!("no watchdog reset in the UART log:\n{}", dut.log()));
    let reset_after = hung.elapsed();
    assert!(
        reset_after <= Duration::from_millis(timeout + 2000),
        "the reset took {reset_after:?} for a {timeout} ms watchdog"
    );
    assert!(dut.log().contains("WATCHDOG at"), "{}", dut.log());
    let mut client = eventually(REBOOT_WAIT, || dut.lab_client().ok())
        .unwrap_or_else(|| panic!("no HELLO after the watchdog's reset:\n{}", dut.log()));
    let (reason, count, _, _) = boot_info(&mut client);
    assert_eq!((reason.as_str(), count), ("watchdog", 2));
    println!("watchdog reset {reset_after:?} after the hang (watchdog_ms={timeout})");
    dut.assert_running();
}
