//! Boot options: the command line QEMU hands the image through RISC-V semihosting
//! (`-semihosting-config enable=on,target=native,arg=socklab-riscv,arg=--drop-chance,arg=5`),
//! read once at start-up into a fixed buffer and parsed by the application's `bootopts`,
//! which lists the options (`--profile` here logs every 5 s where the hart's cycles go).

use socklab_app::bootopts::{self, BootOptions};
use socklab_app::Config;

/// Longest command line read.
const CMDLINE_BYTES: usize = 512;
/// Semihosting operation SYS_GET_CMDLINE.
const SYS_GET_CMDLINE: usize = 0x15;

/// One semihosting call: operation `op` with the parameter block at `param`.
///
/// # Safety
/// QEMU must run with semihosting enabled (the runner and the launcher always enable it;
/// without it the `ebreak` is a breakpoint exception, which ends the run with a failure),
/// and `param` must point to the block `op` expects, valid for the host to read and write.
unsafe fn semihosting_call(op: usize, param: usize) -> isize {
    let result: isize;
    // SAFETY: the RISC-V semihosting sequence (an `ebreak` between two marker
    // instructions, uncompressed, within one page); QEMU carries out `op` and returns.
    unsafe {
        core::arch::asm!(
            ".balign 16",
            ".option push",
            ".option norvc",
            "slli zero, zero, 0x1f",
            "ebreak",
            "srai zero, zero, 0x7",
            ".option pop",
            inout("a0") op as isize => result,
            in("a1") param,
            options(nostack),
        );
    }
    result
}

/// Reads the semihosting command line into `buffer`; returns its text.
fn read_cmdline(buffer: &mut [u8; CMDLINE_BYTES]) -> &str {
    // The SYS_GET_CMDLINE block: buffer address and length; the host writes the length
    // used back into the second word.
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    // SAFETY: the block and the buffer it names live across the call; QEMU writes at most
    // `buffer.len()` bytes.
    let status = unsafe { semihosting_call(SYS_GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return "";
    }
    let len = block[1].min(buffer.len());
    let text = buffer[..len].split(|&b| b == 0).next().unwrap_or(&[]);
    core::str::from_utf8(text).unwrap_or_else(|_| panic!("the command line is not UTF-8"))
}

/// Reads and applies the command line: timeouts and backlog go into `config`, the bad
/// link's settings are returned. A line the image cannot follow stops it with a panic
/// that says why (the host sees it in the UART log and in QEMU's exit status).
pub fn apply(config: &mut Config) -> BootOptions {
    let mut buffer = [0u8; CMDLINE_BYTES];
    let text = read_cmdline(&mut buffer);
    bootopts::parse(text, config).unwrap_or_else(|e| panic!("boot options: {e}"))
}
