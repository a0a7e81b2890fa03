//! The console over a board's UART: text out, the `log` sink, and the panic report.
//!
//! A board gives a [`ByteWriter`] (its UART's transmit register); [`Console`] turns it
//! into `core::fmt::Write` with `\r\n` line ends, and [`UartLogger`] into a `log::Log`
//! whose records are stamped with the board's clock: `[   12.345 INFO  target] message`.
//! Writes are polled and need no interrupt; on these boards no interrupt handler runs,
//! so lines never interleave.

use core::fmt::{self, Write};
use core::panic::PanicInfo;

/// A UART's transmitter: sends one byte, waiting while it is busy.
pub trait ByteWriter {
    /// Sends `byte`.
    fn write_byte(&self, byte: u8);
}

impl<W: ByteWriter> ByteWriter for &W {
    fn write_byte(&self, byte: u8) {
        (**self).write_byte(byte);
    }
}

/// Text on a [`ByteWriter`], each `\n` sent as `\r\n`.
pub struct Console<W>(pub W);

impl<W: ByteWriter> Write for Console<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(byte);
        }
        Ok(())
    }
}

/// The `log` backend: every enabled record becomes one line on the UART.
pub struct UartLogger<W> {
    uart: W,
    now_ms: fn() -> u64,
}

impl<W> UartLogger<W> {
    /// A logger on `uart`, stamping records with `now_ms` (milliseconds since boot).
    pub const fn new(uart: W, now_ms: fn() -> u64) -> UartLogger<W> {
        UartLogger { uart, now_ms }
    }
}

impl<W: ByteWriter + Sync + Send> log::Log for UartLogger<W> {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = (self.now_ms)();
        let _ = writeln!(
            Console(&self.uart),
            "[{:>6}.{:03} {:<5} {}] {}",
            ms / 1000,
            ms % 1000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Makes `logger` the `log` sink with the given maximum level.
pub fn install(logger: &'static dyn log::Log, level: log::LevelFilter) {
    // Only fails if a logger is already set, which leaves that one in place.
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

/// Writes a panic on `uart`: `PANIC at <ms> ms: <message and place>`. The board then
/// ends the machine with its failure status.
pub fn report_panic(uart: impl ByteWriter, now_ms: u64, info: &PanicInfo) {
    let _ = writeln!(Console(uart), "\nPANIC at {now_ms} ms: {info}");
}
