//! RISC-V semihosting: the one call the image makes to the host (QEMU with
//! `-semihosting-config enable=on,target=native`), reading its command line.

/// One semihosting call: operation `op` with the parameter block at `param`; returns the
/// host's status word.
///
/// # Safety
/// QEMU must run with semihosting enabled (the runner and the launcher always enable it;
/// without it the `ebreak` is a breakpoint exception, which ends the run with a failure),
/// and `param` must point to the block `op` expects, valid for the host to read and write.
pub unsafe fn call(op: usize, param: usize) -> usize {
    let result: usize;
    // SAFETY: the RISC-V semihosting sequence (an `ebreak` between two marker
    // instructions, uncompressed, within one page); QEMU carries out `op` and returns.
    unsafe {
        core::arch::asm!(
            ".balign 16",
            ".option push",
            ".option norvc",
            "slli zero, zero, 0x1f",
            "ebreak",
            "srai zero, zero, 0x7",
            ".option pop",
            inout("a0") op => result,
            in("a1") param,
            options(nostack),
        );
    }
    result
}
