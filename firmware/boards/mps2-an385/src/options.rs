//! Boot options: the command line QEMU hands the image through semihosting
//! (`-semihosting-config enable=on,arg=socklab-mps2,arg=--drop-chance,arg=5`),
//! read once at start-up into a fixed buffer and parsed by the application's
//! `bootopts` (which lists the options; `--profile` here logs every 5 s where the time
//! goes: FIFOs, stack, idle).

use socklab_app::bootopts::{self, BootOptions};
use socklab_app::Config;

/// Longest command line read; the rest is ignored with a warning.
const CMDLINE_BYTES: usize = 512;

/// Reads the semihosting command line into `buffer`; returns its text.
fn read_cmdline(buffer: &mut [u8; CMDLINE_BYTES]) -> &str {
    // The SYS_GET_CMDLINE block: buffer address and length; the host writes
    // the length used back into the second word.
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    // SAFETY: the block and the buffer it names live across the call; QEMU
    // writes at most `buffer.len()` bytes. Runs with semihosting enabled (the
    // runner and the launcher always enable it).
    let status = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::GET_CMDLINE,
            block.as_mut_ptr() as usize,
        )
    };
    if status != 0 {
        return "";
    }
    let len = block[1].min(buffer.len());
    let text = &buffer[..len];
    let text = text.split(|&b| b == 0).next().unwrap_or(&[]);
    core::str::from_utf8(text).unwrap_or_else(|_| panic!("the command line is not UTF-8"))
}

/// Reads and applies the command line: timeouts and backlog go into `config`,
/// the bad link's settings are returned. A line the image cannot follow stops it with a
/// panic that says why (the host sees it in the UART log and in QEMU's exit status).
pub fn apply(config: &mut Config) -> BootOptions {
    let mut buffer = [0u8; CMDLINE_BYTES];
    let text = read_cmdline(&mut buffer);
    bootopts::parse(text, config).unwrap_or_else(|e| panic!("boot options: {e}"))
}
