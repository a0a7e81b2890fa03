//! Boot options of the bare-metal boards: the words of the command line QEMU hands an
//! image (through semihosting), parsed without a heap into the [`Config`] and the bad link.
//!
//! Options (all optional): `--drop-chance P`, `--corrupt-chance P`,
//! `--duplicate-chance P`, `--reorder-chance P`, `--delay-chance P`,
//! `--delay-ms N` (0 to 60000), `--seed N` (the bad link), the timeouts of
//! [`TIMEOUT_OPTIONS`] (`--idle-timeout-ms N`, `--slow-reader-timeout-ms N`,
//! `--handshake-timeout-ms N`, `--closing-timeout-ms N`, `--keep-alive-ms N`,
//! `--dead-peer-ms N`, `--http-request-timeout-ms N`, `--http-idle-timeout-ms N`, each
//! within its range), `--backlog wait|refuse|busy`,
//! `--profile` (the board logs every few seconds where its time goes),
//! `--test-hang-after-ms N` (a test's hook, never given otherwise: on the power-on boot
//! the serve loop stops coming round N ms after boot, so the watchdog resets the device),
//! `--test-stack-overflow` (a test's hook: the board recurses until its stack overflows).
//! A percentage `P` is `5`, `0.5` or `12.25`; the first word, if it is not an option, is
//! the program's name and is skipped. The host tool runs the same parser on `socklab run
//! qemu`'s device options before it starts QEMU, so a bad option never reaches an image.

use core::fmt;

use smoltcp::time::Duration;

use crate::board::config::{BacklogPolicy, Config, TimeoutError, TimeoutOption, TIMEOUT_OPTIONS};
use crate::phy::badlink::{Faults, MAX_DELAY_MS, MILLION};

/// The options besides the timeouts (which [`TIMEOUT_OPTIONS`] lists).
const NAMES: [&str; 11] = [
    "--drop-chance",
    "--corrupt-chance",
    "--duplicate-chance",
    "--reorder-chance",
    "--delay-chance",
    "--delay-ms",
    "--seed",
    "--backlog",
    "--profile",
    "--test-hang-after-ms",
    "--test-stack-overflow",
];

/// What the command line asks for beyond the [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOptions {
    /// The bad link's faults (clean when none is given).
    pub faults: Faults,
    /// The bad link's seed.
    pub seed: u64,
    /// Log where the time goes every few seconds (`--profile`).
    pub profile: bool,
    /// A test's hook (`--test-hang-after-ms N`): on the power-on boot the serve
    /// loop hangs, without feeding the watchdog, once the clock reaches N ms.
    pub hang_after_ms: Option<u64>,
    /// A test's hook (`--test-stack-overflow`): the board recurses until its
    /// stack overflows, before it serves.
    pub stack_overflow: bool,
}

/// A command line the image cannot follow; its `Display` says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootOptionError<'a> {
    /// An option this image does not know.
    Unknown(&'a str),
    /// An option given without its value.
    MissingValue(&'a str),
    /// A value that is not a whole number.
    NotANumber(&'a str, &'a str),
    /// A value that is not a percentage from 0 to 100 with at most four decimals.
    NotAPercentage(&'a str, &'a str),
    /// `--backlog` with something other than wait, refuse or busy.
    BadBacklog(&'a str),
    /// A timeout that is not a number of milliseconds within its option's range.
    Timeout(TimeoutError<'a>),
    /// `--delay-ms` beyond [`MAX_DELAY_MS`].
    DelayTooLong(&'a str),
}

impl fmt::Display for BootOptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootOptionError::Unknown(o) => {
                write!(f, "unknown option `{o}`: the images take")?;
                for name in NAMES {
                    write!(f, " {name}")?;
                }
                for timeout in TIMEOUT_OPTIONS {
                    write!(f, " --{}", timeout.name)?;
                }
                Ok(())
            }
            BootOptionError::MissingValue(o) => write!(f, "option {o} needs a value"),
            BootOptionError::NotANumber(o, v) => write!(f, "option {o}: `{v}` is not a number"),
            BootOptionError::NotAPercentage(o, v) => {
                write!(f, "option {o}: `{v}` is not a percentage between 0 and 100")
            }
            BootOptionError::BadBacklog(v) => {
                write!(f, "option --backlog takes wait, refuse or busy, not `{v}`")
            }
            BootOptionError::Timeout(error) => error.fmt(f),
            BootOptionError::DelayTooLong(v) => write!(
                f,
                "option --delay-ms: `{v}` is longer than the bad link holds a frame: give 0 to \
                 {MAX_DELAY_MS}"
            ),
        }
    }
}

fn number<'a, T: core::str::FromStr>(
    option: &'a str,
    value: Option<&'a str>,
) -> Result<T, BootOptionError<'a>> {
    let value = value.ok_or(BootOptionError::MissingValue(option))?;
    value
        .parse()
        .map_err(|_| BootOptionError::NotANumber(option, value))
}

/// Parses a percentage such as `5`, `0.5` or `12.25` into parts per million,
/// without core's float parser (which would cost an image tens of KB).
fn percent<'a>(option: &'a str, value: Option<&'a str>) -> Result<u32, BootOptionError<'a>> {
    let value = value.ok_or(BootOptionError::MissingValue(option))?;
    let bad = BootOptionError::NotAPercentage(option, value);
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 4
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad);
    }
    let whole: u32 = whole.parse().map_err(|_| bad)?;
    // Four decimals of a percent are whole parts per million.
    let mut ppm = whole.checked_mul(10_000).ok_or(bad)?;
    let mut scale = 1_000;
    for digit in fraction.bytes() {
        ppm += u32::from(digit - b'0') * scale;
        scale /= 10;
    }
    if ppm > MILLION {
        return Err(bad);
    }
    Ok(ppm)
}

/// Reads the command line `text`: timeouts and backlog go into `config`, the bad link's
/// settings and `--profile` are returned.
pub fn parse<'a>(text: &'a str, config: &mut Config) -> Result<BootOptions, BootOptionError<'a>> {
    let mut options = BootOptions {
        faults: Faults::default(),
        seed: 1,
        profile: false,
        hang_after_ms: None,
        stack_overflow: false,
    };
    let mut words = text.split_ascii_whitespace().peekable();
    if words.peek().is_some_and(|w| !w.starts_with("--")) {
        words.next();
    }
    while let Some(option) = words.next() {
        if option == "--profile" {
            options.profile = true;
            continue;
        }
        if option == "--test-stack-overflow" {
            options.stack_overflow = true;
            continue;
        }
        let value = words.next();
        match option {
            "--drop-chance" => options.faults.drop_ppm = percent(option, value)?,
            "--corrupt-chance" => options.faults.corrupt_ppm = percent(option, value)?,
            "--duplicate-chance" => options.faults.duplicate_ppm = percent(option, value)?,
            "--reorder-chance" => options.faults.reorder_ppm = percent(option, value)?,
            "--delay-chance" => options.faults.delay_ppm = percent(option, value)?,
            "--delay-ms" => {
                let ms: u64 = number(option, value)?;
                if ms > MAX_DELAY_MS {
                    return Err(BootOptionError::DelayTooLong(value.unwrap_or_default()));
                }
                options.faults.delay = Duration::from_millis(ms);
            }
            "--seed" => options.seed = number(option, value)?,
            "--test-hang-after-ms" => options.hang_after_ms = Some(number(option, value)?),
            "--backlog" => {
                config.backlog = match value {
                    Some("wait") => BacklogPolicy::Wait,
                    Some("refuse") => BacklogPolicy::Refuse,
                    Some("busy") => BacklogPolicy::Busy,
                    Some(other) => return Err(BootOptionError::BadBacklog(other)),
                    None => return Err(BootOptionError::MissingValue(option)),
                }
            }
            _ => match TimeoutOption::find(option).filter(|_| option.starts_with("--")) {
                Some(timeout) => {
                    let value = value.ok_or(BootOptionError::MissingValue(option))?;
                    let ms = timeout.parse(value).map_err(BootOptionError::Timeout)?;
                    timeout.set(&mut config.timeouts, ms);
                }
                None => return Err(BootOptionError::Unknown(option)),
            },
        }
    }
    Ok(options)
}

#[cfg(test)]
mod test {
    extern crate std;
    use std::format;
    use std::string::{String, ToString};

    use super::*;

    #[test]
    fn parses_every_kind_of_option() {
        let mut config = Config::default();
        let o = parse(
            "socklab-riscv --drop-chance 5 --corrupt-chance 0.5 --seed 7 --backlog busy \
             --idle-timeout-ms 2000 --profile --test-hang-after-ms 3000",
            &mut config,
        )
        .unwrap();
        assert_eq!(o.faults.drop_ppm, 50_000);
        assert_eq!(o.faults.corrupt_ppm, 5_000);
        assert_eq!(o.seed, 7);
        assert!(o.profile);
        assert_eq!(o.hang_after_ms, Some(3000));
        assert_eq!(config.backlog, BacklogPolicy::Busy);
        assert_eq!(config.timeouts.idle_ms, 2000);
        assert_eq!(parse("", &mut config).unwrap().faults, Faults::default());
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        let mut c = Config::default();
        assert_eq!(
            parse("--nope", &mut c),
            Err(BootOptionError::Unknown("--nope"))
        );
        assert_eq!(
            parse("--seed", &mut c),
            Err(BootOptionError::MissingValue("--seed"))
        );
        assert_eq!(
            parse("--seed x", &mut c),
            Err(BootOptionError::NotANumber("--seed", "x"))
        );
        for line in [
            "--drop-chance 101",
            "--drop-chance 1.23456",
            "--drop-chance -1",
            "--drop-chance +5",
            "--drop-chance .5",
            "--drop-chance 5.x",
            "--drop-chance 99999999",
        ] {
            assert!(
                matches!(
                    parse(line, &mut c),
                    Err(BootOptionError::NotAPercentage(..))
                ),
                "{line}"
            );
        }
        assert_eq!(
            parse("--backlog later", &mut c),
            Err(BootOptionError::BadBacklog("later"))
        );
        assert_eq!(
            parse("--delay-ms 18446744073709551615", &mut c),
            Err(BootOptionError::DelayTooLong("18446744073709551615"))
        );
    }

    #[test]
    fn every_name_the_unknown_option_message_lists_is_an_option() {
        for name in NAMES {
            let mut c = Config::default();
            assert!(
                !matches!(parse(name, &mut c), Err(BootOptionError::Unknown(_))),
                "{name}"
            );
        }
        let message = BootOptionError::Unknown("--ip").to_string();
        assert!(message.contains("--closing-timeout-ms") && message.contains("--seed"));
    }

    #[test]
    fn every_timeout_is_an_option_within_its_range() {
        for option in crate::board::config::TIMEOUT_OPTIONS {
            let mut c = Config::default();
            let flag = format!("--{}", option.name);
            assert_eq!(option.get(&c.timeouts), option.default_ms, "{flag}");
            let line = format!("{flag} {}", option.max_ms);
            parse(&line, &mut c).unwrap();
            assert_eq!(option.get(&c.timeouts), option.max_ms, "{flag}");
            c.check().unwrap();
            for bad in [
                String::from("18446744073709551615"),
                (option.max_ms + 1).to_string(),
                (option.min_ms - 1).to_string(),
                String::from("-1"),
                String::from("5s"),
            ] {
                let line = format!("{flag} {bad}");
                match parse(&line, &mut c) {
                    Err(BootOptionError::Timeout(e)) => {
                        assert_eq!(e.option.name, option.name);
                        let message = e.to_string();
                        assert!(
                            message.contains(&flag) && message.contains("ms"),
                            "{message}"
                        );
                    }
                    other => panic!("{line}: {other:?}"),
                }
            }
            assert_eq!(
                parse(&flag, &mut c),
                Err(BootOptionError::MissingValue(&flag))
            );
        }
        let mut c = Config::default();
        parse("--closing-timeout-ms 750", &mut c).unwrap();
        assert_eq!(c.timeouts.closing_ms, 750);
    }
}
