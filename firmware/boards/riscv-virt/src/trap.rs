//! Traps and the stack guard: every trap runs on a stack of its own, a locked PMP
//! region that no access may touch lies just below the program's stack, and an
//! exception prints a report (a stack overflow named as one) and ends QEMU with a
//! failure status.
//!
//! The stack grows down towards the code's region (`memory.x`), and the 64 KiB just
//! below it (`GUARD`) hold nothing. PMP entry 0 covers them with no permission and the
//! lock bit: a machine-mode hart checks only locked entries, and QEMU's `virt` enforces
//! them so (measured: an overflow stores into the guard and traps with a store access
//! fault, mcause 7, `mtval` the address). A locked entry stays until the next reset.
//! A frame larger than the guard could step over it; the program's are far smaller.
//!
//! riscv-rt's own trap entry saves the registers below the interrupted stack pointer,
//! which after an overflow lies in the guard, so the save would fault again, for good.
//! This module's `_start_trap` (which takes the place of riscv-rt's default) keeps the
//! interrupted stack pointer in `mscratch`, saves riscv-rt's trap frame on
//! [`TRAP_STACK_BYTES`] of its own, and calls riscv-rt's `_start_trap_rust`, which
//! dispatches to [`exception`] and to the watchdog's timer interrupt as before. Traps do
//! not nest: the hart clears `mstatus.MIE` on entry and no handler sets it again.

use core::fmt::Write;

use socklab_app::BootReason;
use socklab_baremetal::stack::board_stack;
use socklab_baremetal::{bootrecord, Console};

use crate::uart::Uart;

/// Bytes of the stack every trap runs on: the trap frame (16 words) and the handlers'
/// own frames (the exception report's formatting, the watchdog's).
pub const TRAP_STACK_BYTES: usize = 2048;

// The trap entry: riscv-rt's `_default_start_trap` with the stack switched. The trap
// frame's layout is riscv-rt's `TrapFrame` for RV32I: ra, t0-t6, a0-a7, one word each.
core::arch::global_asm!(
    r#"
    .section .bss.socklab_trap_stack, "aw", @nobits
    .balign 16
    .space {stack_bytes}
_socklab_trap_stack_top:

    .section .trap.start, "ax"
    .balign 4
    .global _start_trap
_start_trap:
    csrw mscratch, sp
    lla sp, _socklab_trap_stack_top
    addi sp, sp, -16*4
    sw ra, 0*4(sp)
    sw t0, 1*4(sp)
    sw t1, 2*4(sp)
    sw t2, 3*4(sp)
    sw t3, 4*4(sp)
    sw t4, 5*4(sp)
    sw t5, 6*4(sp)
    sw t6, 7*4(sp)
    sw a0, 8*4(sp)
    sw a1, 9*4(sp)
    sw a2, 10*4(sp)
    sw a3, 11*4(sp)
    sw a4, 12*4(sp)
    sw a5, 13*4(sp)
    sw a6, 14*4(sp)
    sw a7, 15*4(sp)
    add a0, sp, zero
    jal ra, _start_trap_rust
    lw ra, 0*4(sp)
    lw t0, 1*4(sp)
    lw t1, 2*4(sp)
    lw t2, 3*4(sp)
    lw t3, 4*4(sp)
    lw t4, 5*4(sp)
    lw t5, 6*4(sp)
    lw t6, 7*4(sp)
    lw a0, 8*4(sp)
    lw a1, 9*4(sp)
    lw a2, 10*4(sp)
    lw a3, 11*4(sp)
    lw a4, 12*4(sp)
    lw a5, 13*4(sp)
    lw a6, 14*4(sp)
    lw a7, 15*4(sp)
    csrr sp, mscratch
    mret
"#,
    stack_bytes = const TRAP_STACK_BYTES,
);

extern "C" {
    /// The lowest address of the guard below the stack (`memory.x`).
    static _stack_guard_bottom: u8;
    /// The highest address of the guard: the stack's bottom (`memory.x`).
    static _stack_guard_top: u8;
}

/// The guard's bounds, `bottom..top`.
fn guard() -> (usize, usize) {
    // Only the symbols' addresses are taken.
    (
        &raw const _stack_guard_bottom as usize,
        &raw const _stack_guard_top as usize,
    )
}

/// `pmpcfg` bits: locked, naturally aligned power-of-two region, no permission.
const PMP_LOCKED_NAPOT_NONE: usize = 0x80 | 0x18;

/// Puts the locked, no-access PMP region over the guard. Returns whether the hart took
/// it (a hart without PMP reads the configuration back as zero).
pub fn guard_stack() -> bool {
    let (bottom, top) = guard();
    let len = top - bottom;
    assert!(
        len.is_power_of_two() && bottom % len == 0,
        "the stack guard {bottom:#x}..{top:#x} is not a naturally aligned power of two"
    );
    // NAPOT encoding: the base with the low bits set to half the size less one, in
    // units of four bytes.
    let addr = (bottom | (len / 2 - 1)) >> 2;
    let cfg: usize;
    // SAFETY: PMP entry 0, unused by anything else; the region holds no code or data
    // (`memory.x` keeps it free), so denying every access to it breaks nothing.
    unsafe {
        core::arch::asm!(
            "csrw pmpaddr0, {addr}",
            "csrw pmpcfg0, {cfg}",
            "csrr {read}, pmpcfg0",
            addr = in(reg) addr,
            cfg = in(reg) PMP_LOCKED_NAPOT_NONE,
            read = lateout(reg) cfg,
        );
    }
    cfg & 0xff == PMP_LOCKED_NAPOT_NONE
}

/// What an exception code (`mcause` without the interrupt bit) is.
fn exception_name(code: usize) -> &'static str {
    match code {
        0 => "instruction address misaligned",
        1 => "instruction access fault",
        2 => "illegal instruction",
        3 => "breakpoint",
        4 => "load address misaligned",
        5 => "load access fault",
        6 => "store address misaligned",
        7 => "store access fault",
        11 => "environment call",
        _ => "exception",
    }
}

/// Prints the exception on the UART, as a stack overflow when the interrupted stack
/// pointer or the faulting address lies below the stack's bottom, notes the fault in the
/// boot record and ends QEMU with a failure status.
#[export_name = "ExceptionHandler"]
fn exception(frame: &riscv_rt::TrapFrame) -> ! {
    bootrecord::note(BootReason::Fault);
    let cause = riscv::register::mcause::read().bits();
    let code = cause & !(1 << (usize::BITS - 1));
    let mepc = riscv::register::mepc::read();
    let mtval = riscv::register::mtval::read();
    let sp = riscv::register::mscratch::read();
    let stack = board_stack();
    let (guard_bottom, _) = guard();
    let below = |addr: usize| (guard_bottom..stack.bottom).contains(&addr);
    let mut uart = Console(Uart);
    if below(sp) || (matches!(code, 5 | 7) && below(mtval)) {
        let _ = writeln!(
            uart,
            "\nSTACK OVERFLOW: {} (mcause {code}) at mepc={mepc:#010x} with sp={sp:#010x} \
             mtval={mtval:#010x}, below the stack's bottom {:#010x} ({} B reserved), in the \
             guard",
            exception_name(code),
            stack.bottom,
            stack.reserved()
        );
    } else {
        let _ = writeln!(
            uart,
            "\nEXCEPTION mcause={cause:#010x} ({}) mepc={mepc:#010x} mtval={mtval:#010x} \
             sp={sp:#010x} ra={:#010x}",
            exception_name(code),
            frame.ra
        );
    }
    let _ = writeln!(
        uart,
        "  a0={:#010x} a1={:#010x} a2={:#010x} a3={:#010x} t0={:#010x}",
        frame.a0, frame.a1, frame.a2, frame.a3, frame.t0
    );
    crate::exit_failure()
}
