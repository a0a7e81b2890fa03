//! Stack painting: the stack's free part is filled with a known word at boot, and the
//! high-water mark is how far down from the top that word has been overwritten.
//!
//! The board gives the stack's bounds (from its linker script) and paints it first thing
//! in `main`; [`used`] scans up from the bottom for the first word that changed. The scan
//! reads the whole unused part, so it runs when `INFO` asks, not every poll.

use core::ptr::{read_volatile, write_volatile};

/// The word a painted, never-used stack word holds.
pub const PAINT: u32 = 0x5354_4b21;
/// Bytes below the current stack pointer left unpainted: room for the painting call's
/// own frame.
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

    /// Fills the stack from its bottom up to a little below `sp` (the caller's stack
    /// pointer) with [`PAINT`].
    ///
    /// # Safety
    /// `bottom..top` is this program's only stack, RAM that nothing else uses, both
    /// 4-aligned, and `sp` lies in it: everything below `sp` is free.
    pub unsafe fn paint(&self, sp: usize) {
        let end = sp.saturating_sub(MARGIN) & !3;
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
