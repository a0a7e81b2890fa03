//! `println!`, `print!` and `eprintln!` that never panic: a closed stdout or
//! stderr (`socklab netstat | head -1`, `socklab run tap 2>&1 | head`) ends
//! the output quietly instead of panicking with "Broken pipe".
//!
//! Declared with `#[macro_use]` before every other module of the library,
//! these shadow the standard macros of the same names in the whole crate;
//! exported, they do the same in a crate that takes them with
//! `#[macro_use] extern crate socklab_host;` (the `socklab` command). The
//! command then ends with its usual status.

/// `std::println!` that drops its output once stdout is closed.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `std::print!` that drops its output once stdout is closed.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::print::write_out(format_args!($($arg)*))
    };
}

/// `std::eprintln!` that drops its output once stderr is closed.
#[macro_export]
macro_rules! eprintln {
    () => {
        $crate::print::write_err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout; a failed write (a closed pipe) is dropped.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Writes to stderr; a failed write (a closed pipe) is dropped.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// True once stdout cannot take more output (its reader went away): a
/// command that only prints can stop.
pub fn stdout_closed() -> bool {
    use std::io::Write;
    std::io::stdout().lock().flush().is_err()
}
