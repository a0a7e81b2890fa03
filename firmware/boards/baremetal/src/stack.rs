//! Stack painting: the stack's free part is filled with a known word at boot, and the
//! high-water mark is how far down from the top that word has been overwritten.
//!
//! The board gives the stack's bounds (from its linker script) and paints it first thing
//! in `main`; [`Stack::used`] scans up from the bottom for the first word that changed.
//! The scan reads the whole unused part, so it runs when `INFO` asks, not every poll.

use core::ptr::{read_volatile, write_volatile};

/// The word a painted, never-used stack word holds.
pub const PAINT: u32 = 0x5354_4b21;
/// Bytes below the stack pointer left unpainted, for safety's sake (the painting loop
/// itself needs none).
const MARGIN: usize = 256;

extern "C" {
    /// The stack's lowest address (the board's `memory.x` defines the symbol).
    static _stack_bottom: u32;
    /// The stack's highest address, the stack pointer at reset (`memory.x`).
    static _stack_top: u32;
}

/// The board's stack, as its `memory.x` lays it out.
pub fn board_stack() -> Stack {
    // Only the symbols' addresses are taken.
    Stack {
        bottom: &raw const _stack_bottom as usize,
        top: &raw const _stack_top as usize,
    }
}

/// The stack: from `bottom` (lowest address) up to `top` (the initial stack pointer).
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    /// Lowest address of the stack.
    pub bottom: usize,
    /// Highest address: the stack pointer at reset.
    pub top: usize,
}

impl Stack {
    /// Bytes reserved for the stack.
    pub const fn reserved(&self) -> usize {
        self.top - self.bottom
    }

    /// Fills the stack from its bottom up to a little below this call's own stack
    /// pointer with [`PAINT`].
    ///
    /// Out of line and reading the stack pointer register itself, so that every frame of
    /// its callers lies above what it paints: an address taken in the caller (a local's)
    /// would not do, because an inlined caller's frame may hold live values below that
    /// local, which the compiler does not expect to change (at `opt-level = "z"`
    /// riscv-virt's `main` keeps its NIC driver's state there).
    ///
    /// # Safety
    /// `bottom..top` is this program's only stack, RAM that nothing else uses, both
    /// 4-aligned, and this call runs on it with interrupts off: everything below the stack
    /// pointer is free.
    #[inline(never)]
    pub unsafe fn paint(&self) {
        let end = stack_pointer().saturating_sub(MARGIN) & !3;
        let mut word = self.bottom;
        while word < end {
            // SAFETY: a word of the stack below the live part, per the caller's promise.
            unsafe { write_volatile(word as *mut u32, PAINT) };
            word += 4;
        }
    }

    /// The high-water mark: bytes from the top down to the lowest word that no longer
    /// holds [`PAINT`].
    ///
    /// # Safety
    /// As for [`paint`](Self::paint), which ran at boot.
    pub unsafe fn used(&self) -> usize {
        let mut word = self.bottom;
        // SAFETY: words of the stack, readable RAM per the caller's promise.
        while word < self.top && unsafe { read_volatile(word as *const u32) } == PAINT {
            word += 4;
        }
        self.top - word
    }
}

/// The stack pointer register.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register into another; touches no memory.
    #[cfg(target_arch = "riscv32")]
    unsafe {
        core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: as above.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    // A host build (the crate's unit tests) paints no stack: a local's address stands in.
    #[cfg(not(any(target_arch = "riscv32", target_arch = "arm")))]
    {
        let marker = 0u8;
        sp = core::ptr::addr_of!(marker) as usize;
    }
    sp
}

/// The test hook `--test-stack-overflow`: recurses, each level holding a buffer the
/// optimiser cannot drop, until the stack overflows. Never returns on a board whose
/// stack faults when it overflows.
pub fn overflow(depth: u32) -> u32 {
    let frame = core::hint::black_box([depth; 64]);
    if core::hint::black_box(depth) == u32::MAX {
        return 0;
    }
    overflow(depth + 1).wrapping_add(frame[(depth % 64) as usize])
}
