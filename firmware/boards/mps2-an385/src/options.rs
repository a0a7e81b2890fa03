//! Boot options: the command line QEMU hands the image through semihosting
//! (`-semihosting-config enable=on,arg=socklab-mps2,arg=--drop-chance,arg=5`),
//! read once at start-up into a fixed buffer and parsed without a heap.
//!
//! Options (all optional): `--drop-chance P`, `--corrupt-chance P`,
//! `--duplicate-chance P`, `--reorder-chance P`, `--delay-chance P`,
//! `--delay-ms N`, `--seed N` (the bad link), `--idle-timeout-ms N`,
//! `--slow-reader-timeout-ms N`, `--handshake-timeout-ms N`,
//! `--keep-alive-ms N`, `--dead-peer-ms N`, `--backlog wait|refuse|busy`,
//! `--profile` (log every 5 s where the time goes: FIFOs, stack, idle).
//! An option the image does not know stops it with a panic that says so (the
//! host sees it in the UART log and in QEMU's exit status).

use socklab_app::badlink::Faults;
use socklab_app::smoltcp::time::Duration;
use socklab_app::{BacklogPolicy, Config};

/// Longest command line read; the rest is ignored with a warning.
const CMDLINE_BYTES: usize = 512;

/// What the command line asks for.
pub struct Options {
    /// The bad link's faults (clean when none is given).
    pub faults: Faults,
    /// The bad link's seed.
    pub seed: u64,
    /// Log where the time goes every few seconds (`--profile`).
    pub profile: bool,
}

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

fn number<T: core::str::FromStr>(option: &str, value: Option<&str>) -> T {
    let value = value.unwrap_or_else(|| panic!("option {option} needs a value"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("option {option}: `{value}` is not a number"))
}

/// Parses a percentage such as `5`, `0.5` or `12.25` into parts per million,
/// without core's float parser (which would cost the image tens of KB).
fn percent(option: &str, value: Option<&str>) -> u32 {
    let value = value.unwrap_or_else(|| panic!("option {option} needs a value"));
    let bad =
        || -> ! { panic!("option {option}: `{value}` is not a percentage between 0 and 100") };
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty() || fraction.len() > 4 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        bad();
    }
    let whole: u32 = whole.parse().unwrap_or_else(|_| bad());
    // Four decimals of a percent are whole parts per million.
    let mut ppm = whole.checked_mul(10_000).unwrap_or_else(|| bad());
    let mut scale = 1_000;
    for digit in fraction.bytes() {
        ppm += u32::from(digit - b'0') * scale;
        scale /= 10;
    }
    if ppm > socklab_app::badlink::MILLION {
        bad();
    }
    ppm
}

/// Reads and applies the command line: timeouts and backlog go into `config`,
/// the bad link's settings are returned.
pub fn apply(config: &mut Config) -> Options {
    let mut buffer = [0u8; CMDLINE_BYTES];
    let text = read_cmdline(&mut buffer);
    let mut options = Options {
        faults: Faults::default(),
        seed: 1,
        profile: false,
    };
    let mut words = text.split_ascii_whitespace().peekable();
    // QEMU puts the image's name (or the first `arg=`) first.
    if words.peek().is_some_and(|w| !w.starts_with("--")) {
        words.next();
    }
    let t = &mut config.timeouts;
    while let Some(option) = words.next() {
        if option == "--profile" {
            options.profile = true;
            continue;
        }
        let value = words.next();
        match option {
            "--drop-chance" => options.faults.drop_ppm = percent(option, value),
            "--corrupt-chance" => options.faults.corrupt_ppm = percent(option, value),
            "--duplicate-chance" => options.faults.duplicate_ppm = percent(option, value),
            "--reorder-chance" => options.faults.reorder_ppm = percent(option, value),
            "--delay-chance" => options.faults.delay_ppm = percent(option, value),
            "--delay-ms" => options.faults.delay = Duration::from_millis(number(option, value)),
            "--seed" => options.seed = number(option, value),
            "--idle-timeout-ms" => t.idle_ms = number(option, value),
            "--slow-reader-timeout-ms" => t.slow_reader_ms = number(option, value),
            "--handshake-timeout-ms" => t.handshake_ms = number(option, value),
            "--keep-alive-ms" => t.keep_alive_ms = number(option, value),
            "--dead-peer-ms" => t.dead_peer_ms = number(option, value),
            "--backlog" => {
                config.backlog = match value {
                    Some("wait") => BacklogPolicy::Wait,
                    Some("refuse") => BacklogPolicy::Refuse,
                    Some("busy") => BacklogPolicy::Busy,
                    _ => panic!("option --backlog takes wait, refuse or busy"),
                }
            }
            _ => {
                panic!("unknown option `{option}` (see firmware/boards/mps2-an385/src/options.rs)")
            }
        }
    }
    options
}
