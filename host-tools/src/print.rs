//! `println!`, `print!` and `eprintln!` that never panic: a closed stdout or
//! stderr (`socklab netstat | head -1`, `socklab run tap 2>&1 | head`) ends
//! the output quietly instead of panicking with "Broken pipe".
//!
//! Declared with `#[macro_use]` before every other module of the library and
//! of the `socklab` binary, these shadow the standard macros of the same
//! names in the whole crate; the command then ends with its usual status.

#[allow(unused_macros)]
macro_rules! println {
    () => {
        $crate::print::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::print::write_out(format_args!($($arg)*))
    };
}

#[allow(unused_macros)]
macro_rules! eprintln {
    () => {
        $crate::print::write_err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout; a failed write (a closed pipe) is dropped.
#[allow(dead_code)]
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Writes to stderr; a failed write (a closed pipe) is dropped.
#[allow(dead_code)]
pub fn write_err(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// True once stdout cannot take more output (its reader went away): a
/// command that only prints can stop.
#[allow(dead_code)]
pub fn stdout_closed() -> bool {
    use std::io::Write;
    std::io::stdout().lock().flush().is_err()
}
