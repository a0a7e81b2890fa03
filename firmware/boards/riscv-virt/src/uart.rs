//! The virt machine's NS16550A UART (QEMU's stdout with `-nographic`): the console's
//! byte writer.
//!
//! Transmit only, polled: a byte is written when the transmit holding register is empty.

use core::ptr::{read_volatile, write_volatile};

use socklab_baremetal::ByteWriter;

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

impl ByteWriter for Uart {
    fn write_byte(&self, byte: u8) {
        // SAFETY: MMIO reads and writes of the UART's own registers, which exist on this
        // machine and affect nothing else.
        unsafe {
            while read_volatile((UART_BASE + LSR) as *const u8) & LSR_THR_EMPTY == 0 {}
            write_volatile((UART_BASE + THR) as *mut u8, byte);
        }
    }
}
