//! What a bare-metal board tells `INFO` about itself: the boot record's reason and
//! count, the painted stack's size and high-water mark, and the RAM of every pool.
//!
//! Every board's `memory.x` defines the symbols this needs: `_stack_bottom` and
//! `_stack_top` (the stack's bounds) and `_boot_record` (the start of the `NOINIT`
//! region).

use log::info;
use socklab_app::{BoardRam, BoardStatus, BootReason, Sizes, StackMeter, RAM};

use crate::bootrecord;
use crate::serve::BAD_LINK_BYTES;
use crate::stack::board_stack;

/// Paints the stack and reads the boot record: the board's status for `INFO`, with
/// `watchdog_ms` the watchdog's timeout if the board runs one. Called once, first thing
/// in `main`.
pub fn start(watchdog_ms: Option<u32>) -> BoardStatus {
    let stack = board_stack();
    // SAFETY: the board's one stack, from its linker script, which this runs on; this
    // early in `main` interrupts are off and everything below the stack pointer is free.
    unsafe { stack.paint() };
    let (reason, count) = bootrecord::boot();
    BoardStatus {
        boot_reason: Some(reason),
        boot_count: Some(count),
        stack_reserved: Some(stack.reserved()),
        stack_used: Some(StackMeter(stack_used)),
        watchdog_ms,
    }
}

/// The stack's high-water mark in bytes.
fn stack_used() -> usize {
    // SAFETY: the board's one stack, painted by `start`.
    unsafe { board_stack().used() }
}

/// Records the RAM of every pool for `INFO` (`ram_*`, `ram_total`): the application's
/// from `sizes`, the bad link's hold buffers, the stack's reservation, and the statics
/// the board declares in `board` (its NIC buffers, DMA memory, exception stack). Called
/// once in `main`, with the `SIZES` it takes its storage for.
pub fn record_ram(sizes: &Sizes, board: BoardRam) {
    let ram = sizes.ram().with_board(BoardRam {
        bad_link: BAD_LINK_BYTES,
        stack: board_stack().reserved(),
        ..board
    });
    RAM.record(&ram);
    info!(
        "RAM {} B: pools {} B, stack {} B",
        ram.total(),
        ram.total() - ram.board.stack,
        ram.board.stack
    );
}

/// Logs why the board booted, how often, and its stack's reservation.
pub fn log_boot(status: &BoardStatus) {
    info!(
        "boot {} ({}), stack {} B reserved",
        status.boot_count.unwrap_or(0),
        status.boot_reason.map_or("unknown", BootReason::name),
        status.stack_reserved.unwrap_or(0)
    );
}
