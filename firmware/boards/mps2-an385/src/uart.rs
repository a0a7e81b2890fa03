//! CMSDK APB UART0 (QEMU's stdout with `-nographic`): the console's byte writer.
//!
//! Transmit only, polled: a byte is written when the TX buffer is not full.

use core::ptr::{read_volatile, write_volatile};

use socklab_baremetal::ByteWriter;

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
}

impl ByteWriter for Uart {
    fn write_byte(&self, byte: u8) {
        // SAFETY: MMIO reads and writes of UART0's own registers.
        unsafe {
            while read_volatile(Self::reg(STATE)) & STATE_TX_FULL != 0 {}
            write_volatile(Self::reg(DATA), u32::from(byte));
        }
    }
}
