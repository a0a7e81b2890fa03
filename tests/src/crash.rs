//! Crashing firmware on purpose, to check that a crash fails a test: copies
//! a QEMU board's image with the first instruction of one function replaced by
//! an undefined one (`udf` on the Cortex-M3, `c.unimp` on RISC-V), so calling
//! it faults; the board's handler (HardFault, or the RISC-V exception handler)
//! prints the fault on the UART and ends QEMU with status 1.
//!
//! The ELF is patched in the file (QEMU's `-device loader` writes before
//! `-kernel` loads, so it cannot patch code): the function's address comes
//! from the symbol table, its file offset from the section that holds it.
//!
//! The crash cases are written once here and run on each QEMU machine
//! (`tests/tests/qemu_user.rs`, `tests/tests/riscv.rs`).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socklab_host::launch::QemuNet;
use socklab_host::launch::{find_image, Image, LaunchError, Machine, QemuDevice, QemuOptions};

use crate::{cases, eventually, BoardKind, Dut};

/// `udf #254` in Thumb, little-endian.
const UDF: [u8; 2] = [0xfe, 0xde];
/// `c.unimp` (all zero bits): an illegal instruction on RISC-V.
const UNIMP: [u8; 2] = [0x00, 0x00];
/// ELF `e_machine` of Arm.
const EM_ARM: u16 = 40;
/// ELF `e_machine` of RISC-V.
const EM_RISCV: u16 = 243;

/// Copies `image` to `dir` with the function whose (mangled) symbol name
/// contains every one of `parts` replaced by a fault; returns the copy.
pub fn image_faulting_in(image: &Path, dir: &Path, parts: &[&str]) -> Result<PathBuf, String> {
    let mut elf = fs::read(image).map_err(|e| format!("read {}: {e}", image.display()))?;
    let fault = match u16_at(&elf, 0x12)? {
        EM_ARM => UDF,
        EM_RISCV => UNIMP,
        other => {
            return Err(format!(
                "an ELF for machine {other}, neither Arm nor RISC-V"
            ))
        }
    };
    let offset = function_offset(&elf, parts)?;
    elf[offset..offset + fault.len()].copy_from_slice(&fault);
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let copy = dir.join(format!("faulting-in-{}.elf", parts.join("-")));
    fs::write(&copy, elf).map_err(|e| format!("write {}: {e}", copy.display()))?;
    Ok(copy)
}

fn u16_at(elf: &[u8], at: usize) -> Result<u16, String> {
    elf.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

fn u32_at(elf: &[u8], at: usize) -> Result<u32, String> {
    elf.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

/// One ELF32 section header: (address, file offset, size, link).
fn section(elf: &[u8], index: usize) -> Result<(u32, u32, u32, u32), String> {
    let shoff = u32_at(elf, 0x20)? as usize;
    let shentsize = u16_at(elf, 0x2e)? as usize;
    let at = shoff + index * shentsize;
    Ok((
        u32_at(elf, at + 12)?,
        u32_at(elf, at + 16)?,
        u32_at(elf, at + 20)?,
        u32_at(elf, at + 24)?,
    ))
}

/// The file offset of the first instruction of the function named by `parts`.
fn function_offset(elf: &[u8], parts: &[&str]) -> Result<usize, String> {
    const SHT_SYMTAB: u32 = 2;
    const STT_FUNC: u8 = 2;
    if elf.get(..6) != Some(b"\x7fELF\x01\x01".as_slice()) {
        return Err("not a little-endian ELF32 file".into());
    }
    let shoff = u32_at(elf, 0x20)? as usize;
    let shentsize = u16_at(elf, 0x2e)? as usize;
    let shnum = u16_at(elf, 0x30)? as usize;
    let symtab = (0..shnum)
        .find(|&i| u32_at(elf, shoff + i * shentsize + 4) == Ok(SHT_SYMTAB))
        .ok_or("no symbol table (stripped image?)")?;
    let (_, sym_off, sym_size, strtab) = section(elf, symtab)?;
    let (_, str_off, _, _) = section(elf, strtab as usize)?;
    let mut found = Vec::new();
    for entry in (sym_off..sym_off + sym_size).step_by(16) {
        let entry = entry as usize;
        if elf.get(entry + 12).map(|info| info & 0xf) != Some(STT_FUNC) {
            continue;
        }
        let name_at = str_off as usize + u32_at(elf, entry)? as usize;
        let name_len = elf[name_at..].iter().position(|&b| b == 0).unwrap_or(0);
        let name = String::from_utf8_lossy(&elf[name_at..name_at + name_len]);
        if parts.iter().all(|part| name.contains(part)) {
            let value = u32_at(elf, entry + 4)? & !1; // Thumb bit (0 on RISC-V)
            let shndx = u16_at(elf, entry + 14)? as usize;
            found.push((name.into_owned(), value, shndx));
        }
    }
    match found.as_slice() {
        [(_, addr, shndx)] => {
            let (sh_addr, sh_offset, sh_size, _) = section(elf, *shndx)?;
            if *addr < sh_addr || addr + 2 > sh_addr + sh_size {
                return Err(format!("symbol at {addr:#x} is outside its section"));
            }
            Ok((sh_offset + (addr - sh_addr)) as usize)
        }
        [] => Err(format!("no function symbol contains {parts:?}")),
        many => Err(format!(
            "{} function symbols contain {parts:?}: {:?}",
            many.len(),
            many.iter().map(|(name, ..)| name).collect::<Vec<_>>()
        )),
    }
}

/// What a machine's fault handler leaves behind: the UART line of the
/// fault (the undefined instruction's), and what the exit status 1 is.
fn fault_signs(machine: Machine) -> (&'static str, &'static str) {
    match machine {
        Machine::Mps2An385 => ("HARDFAULT pc=", "semihosting EXIT_FAILURE"),
        // mcause 2: illegal instruction.
        Machine::RiscvVirt => ("EXCEPTION mcause=0x00000002", "sifive_test failure status"),
    }
}

/// A scratch directory for patched images, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(machine: Machine, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "socklab-{}-{name}-{}",
            machine.spec().board,
            std::process::id()
        ));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// QEMU options for `image` on `machine`, on user networking with free ports.
pub fn user_options(machine: Machine, image: PathBuf) -> QemuOptions {
    QemuOptions {
        machine,
        net: QemuNet::user_any_ports(),
        image: Image::Path(image),
        ..QemuOptions::default()
    }
}

/// `machine`'s image, patched to fault in the function named by `parts`.
fn faulting_image(machine: Machine, scratch: &Scratch, parts: &[&str]) -> PathBuf {
    let image = find_image(machine, &Image::Rebuilt)
        .unwrap_or_else(|e| panic!("the {} image: {e}", machine.spec().board));
    image_faulting_in(&image, &scratch.0, parts).expect("patch the image")
}

/// The firmware faults while answering WHO: the case fails within its
/// bounded waits, QEMU's exit (status 1) is noticed, and the UART log shows
/// the fault.
pub fn crash_fails_the_case_and_shows_the_uart_log(machine: Machine) {
    let (fault, exit) = fault_signs(machine);
    let scratch = Scratch::new(machine, "crash-who");
    let faulty = faulting_image(machine, &scratch, &["WhoRow", "Display"]);
    let device = QemuDevice::start(user_options(machine, faulty)).expect("the image boots");
    let dut = Dut::from_device(BoardKind::QemuUser(machine), Box::new(device));

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
    assert_eq!(status.code(), Some(1), "{exit}");
    let running = panic::catch_unwind(AssertUnwindSafe(|| dut.assert_running()));
    assert!(running.is_err(), "assert_running passed on a dead device");
    let log = dut.log();
    assert!(log.contains(fault), "{log}");
    assert!(log.contains("QEMU exited"), "{log}");
}

/// The firmware faults while starting its services: `start` fails at once
/// with QEMU's exit status and the UART log, instead of waiting for a HELLO.
pub fn crash_at_boot_fails_start_with_the_uart_log(machine: Machine) {
    let (fault, _) = fault_signs(machine);
    let scratch = Scratch::new(machine, "crash-boot");
    let faulty = faulting_image(machine, &scratch, &["socklab_app", "6socket6listen"]);
    let started = Instant::now();
    let error = QemuDevice::start(user_options(machine, faulty))
        .expect_err("a faulting image cannot start");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let LaunchError::Exited { status, log } = &error else {
        panic!("expected an exit, got: {error}");
    };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains(fault), "{log}");
    let message = error.to_string();
    assert!(
        message.contains("exit status: 1") && message.contains(fault),
        "{message}"
    );
}

/// Declares the crash cases as tests for a QEMU machine (a patched image
/// faulting while serving and at boot, the stack overflow hook):
/// `crash_cases!(Machine::RiscvVirt)`.
#[macro_export]
macro_rules! crash_cases {
    ($machine:expr) => {
        #[test]
        fn firmware_crash_fails_the_case_and_shows_the_uart_log() {
            let _area = $crate::area::enter(module_path!());
            $crate::crash::crash_fails_the_case_and_shows_the_uart_log($machine);
        }

        #[test]
        fn crash_at_boot_fails_start_with_the_uart_log() {
            let _area = $crate::area::enter(module_path!());
            $crate::crash::crash_at_boot_fails_start_with_the_uart_log($machine);
        }

        #[test]
        fn stack_overflow_faults_with_a_report() {
            let _area = $crate::area::enter(module_path!());
            $crate::crash::stack_overflow_faults_with_a_report($machine);
        }
    };
}

/// The test hook `--test-stack-overflow` recurses until the stack overflows:
/// the board faults below its stack (which lies under the statics: below RAM
/// on mps2-an385, in a locked no-access PMP region on riscv-virt), prints a
/// stack overflow report with the fault, the stack pointer (and on
/// riscv-virt the PC and the faulting address) on the UART and ends QEMU
/// with status 1 before it serves.
pub fn stack_overflow_faults_with_a_report(machine: Machine) {
    let image = find_image(machine, &Image::Rebuilt)
        .unwrap_or_else(|e| panic!("the {} image: {e}", machine.spec().board));
    let error = QemuDevice::start(QemuOptions {
        firmware_args: vec!["--test-stack-overflow".to_owned()],
        ..user_options(machine, image)
    })
    .expect_err("an overflowing image cannot start");
    let LaunchError::Exited { status, log } = &error else {
        panic!("expected an exit, got: {error}");
    };
    assert_eq!(status.code(), Some(1), "{log}");
    let report = match machine {
        Machine::Mps2An385 => "STACK OVERFLOW: HardFault with sp=0x",
        // mcause 7: the store into the guard.
        Machine::RiscvVirt => "STACK OVERFLOW: store access fault (mcause 7) at mepc=0x",
    };
    assert!(log.contains(report), "{log}");
    assert!(log.contains("below the stack's bottom"), "{log}");
    if machine == Machine::RiscvVirt {
        for part in [" with sp=0x800f", " mtval=0x800f", "in the guard"] {
            assert!(log.contains(part), "{part:?} missing: {log}");
        }
    }
}
