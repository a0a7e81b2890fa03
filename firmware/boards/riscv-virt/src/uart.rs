//! Log sink: the virt machine's NS16550A UART (QEMU's stdout with `-nographic`) as a `log::Log`.
//!
//! Transmit only, polled: a byte is written when the transmit holding register is empty.
//! Records are stamped with the board clock, `[   12.345 INFO  target] message`.

use core::fmt::{self, Write};
use core::ptr::{read_volatile, write_volatile};

use crate::clock;

/// Base address of the NS16550A on QEMU's virt machine (byte-wide registers).
const UART_BASE: usize = 0x1000_0000;
/// THR: a write sends one byte.
const THR: usize = 0;
/// LSR: line status; bit 5 = transmit holding register empty.
const LSR: usize = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// The UART's transmitter. It has no state: every method goes to the registers.
#[derive(Clone, Copy)]
pub struct Uart;

impl Uart {
    /// Sends one byte, waiting while the transmitter is busy.
    pub fn write_byte(self, byte: u8) {
        // SAFETY: MMIO reads and writes of the UART's own registers, which exist on this
        // machine and affect nothing else.
        unsafe {
            while read_volatile((UART_BASE + LSR) as *const u8) & LSR_THR_EMPTY == 0 {}
            write_volatile((UART_BASE + THR) as *mut u8, byte);
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

/// The `log` backend: every enabled record becomes one UART line. Interrupts never run
/// handlers on this board (see `idle`), so lines cannot interleave.
struct UartLogger;

static LOGGER: UartLogger = UartLogger;

impl log::Log for UartLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = clock::now_ms();
        let _ = writeln!(
            Uart,
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

/// Makes the UART the `log` sink with the given maximum level.
pub fn init_logger(level: log::LevelFilter) {
    // Only fails if a logger is already set, which leaves that one in place.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
