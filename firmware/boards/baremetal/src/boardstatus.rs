//! What a bare-metal board tells `INFO` about itself: the boot record's reason and
//! count, and the painted stack's size and high-water mark.
//!
//! Every board's `memory.x` defines the symbols this needs: `_stack_bottom` and
//! `_stack_top` (the stack's bounds) and `_boot_record` (the start of the `NOINIT`
//! region).

use log::info;
use socklab_app::{BoardStatus, BootReason, StackMeter};

use crate::bootrecord;
use crate::stack::board_stack;

/// Paints the stack and reads the boot record: the board's status for `INFO`, with
/// `watchdog_ms` the watchdog's timeout if the board runs one. Called once, first thing
/// in `main`.
pub fn start(watchdog_ms: Option<u32>) -> BoardStatus {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    let stack = board_stack();
    // SAFETY: the board's one stack, from its linker script; `sp` (this frame) is in it
    // and everything below it is free this early in `main`.
    unsafe { stack.paint(sp) };
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

/// Logs why the board booted, how often, and its stack's reservation.
pub fn log_boot(status: &BoardStatus) {
    info!(
        "boot {} ({}), stack {} B reserved",
        status.boot_count.unwrap_or(0),
        status.boot_reason.map_or("unknown", BootReason::name),
        status.stack_reserved.unwrap_or(0)
    );
}
