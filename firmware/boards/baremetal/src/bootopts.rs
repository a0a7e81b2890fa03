//! Boot options: the command line QEMU hands the image through semihosting
//! (`-semihosting-config enable=on,arg=<image>,arg=--drop-chance,arg=5`), read once at
//! start-up into a fixed buffer and parsed by the application's `bootopts`, which lists
//! the options.

use socklab_app::bootopts::{self, BootOptions};
use socklab_app::Config;

/// Longest command line read.
pub const CMDLINE_BYTES: usize = 512;
/// Semihosting operation SYS_GET_CMDLINE.
pub const SYS_GET_CMDLINE: usize = 0x15;

/// Reads the command line through `semihosting` into `buffer`; returns its text (empty
/// when the host gives none).
fn read_cmdline(
    buffer: &mut [u8; CMDLINE_BYTES],
    semihosting: impl FnOnce(usize, usize) -> usize,
) -> &str {
    // The SYS_GET_CMDLINE block: buffer address and length; the host writes the length
    // used back into the second word.
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    let status = semihosting(SYS_GET_CMDLINE, block.as_mut_ptr() as usize);
    if status != 0 {
        return "";
    }
    let len = block[1].min(buffer.len());
    let text = buffer[..len].split(|&b| b == 0).next().unwrap_or(&[]);
    core::str::from_utf8(text).unwrap_or_else(|_| panic!("the command line is not UTF-8"))
}

/// The application's configuration for the board named `board` (one interface, DHCP on,
/// the rest default) with the command line applied, and the boot options it gave: timeouts and
/// backlog go into the configuration, the bad link's settings and `--profile` come back
/// beside it. A line the image cannot follow stops it with a panic that says why (the
/// host sees it in the UART log and in QEMU's exit status).
///
/// `semihosting(op, block)` is the board's semihosting call: it carries out operation
/// `op` with the parameter block at address `block` (here SYS_GET_CMDLINE, whose block
/// names a buffer the host writes into) and returns the host's status word. The block
/// and its buffer stay valid across the call.
pub fn boot_options(
    board: &'static str,
    semihosting: impl FnOnce(usize, usize) -> usize,
) -> (Config, BootOptions) {
    let mut config = Config {
        board,
        ..Config::default()
    };
    config.nets[0].dhcp = true;
    let mut buffer = [0u8; CMDLINE_BYTES];
    let text = read_cmdline(&mut buffer, semihosting);
    let options =
        bootopts::parse(text, &mut config).unwrap_or_else(|e| panic!("boot options: {e}"));
    (config, options)
}
