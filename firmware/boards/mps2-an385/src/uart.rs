//! Log sink: CMSDK APB UART0 (QEMU's stdout with `-nographic`) as a `log::Log`.
//!
//! Transmit only, polled: a byte is written when the TX buffer is not full. Records
//! are stamped with the board clock, `[   12.345 INFO  target] message`.

use core::fmt::{self, Write};
use core::ptr::{read_volatile, write_volatile};

use crate::clock;

/// Base address of UART0 on the mps2-an385 (CMSDK APB UART).
const UART0_BASE: usize = 0x4000_4000;
/// DATA: a write sends one byte (bits 0..7).
const DATA: usize = 0x00;
/// STATE: bit 0 = TX buffer full, bit 1 = RX buffer full.
const STATE: usize = 0x04;
/// CTRL: bit 0 = TX enable, bit 1 = RX enable.
const CTRL: usize = 0x08;
/// BAUDDIV: clock divider; QEMU ignores the rate but wants a value of at least 16.
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const CTRL_TX_ENABLE: u32 = 1 << 0;

/// UART0's transmitter. It has no state: every method goes to the registers.
#[derive(Clone, Copy)]
pub struct Uart;

impl Uart {
    fn reg(offset: usize) -> *mut u32 {
        (UART0_BASE + offset) as *mut u32
    }

    /// Turns the transmitter on. Idempotent; the panic and fault handlers call it too.
    pub fn init() -> Uart {
        // SAFETY: UART0's registers exist on this machine; writing the divider and the
        // control register has no effect beyond the UART.
        unsafe {
            write_volatile(Self::reg(BAUDDIV), 16);
            write_volatile(Self::reg(CTRL), CTRL_TX_ENABLE);
        }
        Uart
    }

    /// Sends one byte, waiting while the TX buffer is full.
    pub fn write_byte(self, byte: u8) {
        // SAFETY: MMIO reads and writes of UART0's own registers.
        unsafe {
            while read_volatile(Self::reg(STATE)) & STATE_TX_FULL != 0 {}
            write_volatile(Self::reg(DATA), u32::from(byte));
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

/// The `log` backend: every enabled record becomes one UART line.
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
        // A record is written with interrupts off so that lines never interleave (today
        // nothing logs from an interrupt; this keeps it true if something does).
        cortex_m::interrupt::free(|_| {
            let mut uart = Uart;
            let _ = writeln!(
                uart,
                "[{:>6}.{:03} {:<5} {}] {}",
                ms / 1000,
                ms % 1000,
                record.level(),
                record.target(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

/// Sets UART0 up and makes it the `log` sink with the given maximum level.
pub fn init_logger(level: log::LevelFilter) {
    Uart::init();
    // Only fails if a logger is already set, which leaves that one in place.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
