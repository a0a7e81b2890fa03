//! The riscv-virt machine: QEMU's `virt` with a riscv32imac core and a
//! virtio-net device over MMIO, booting the image of
//! `firmware/boards/riscv-virt`.

use super::machine::MachineSpec;

/// What QEMU needs to boot the riscv-virt board.
pub const SPEC: MachineSpec = MachineSpec {
    board: "riscv-virt",
    qemu: "qemu-system-riscv32",
    qemu_package: "qemu-system-misc",
    // No firmware (-bios none): the ELF runs in machine mode from 0x8000_0000.
    machine_args: &["-machine", "virt", "-bios", "none"],
    nic: &["-device", "virtio-net-device,netdev=n0,mac={mac}"],
    elf_name: "socklab-riscv",
    image_path:
        "firmware/boards/riscv-virt/target/riscv32imac-unknown-none-elf/release/socklab-riscv",
    build: &[
        "scripts/fw-cargo",
        "--board",
        "riscv-virt",
        "build",
        "--release",
    ],
    sources: &["firmware/app/src", "firmware/boards/riscv-virt/src"],
    image_env: "SOCKLAB_RISCV_ELF",
    about: "Our machine is an emulated RISC-V board (QEMU's virt machine, a riscv32imac \
            core), running the same TCP server firmware: smoltcp, no operating system, \
            every socket and buffer fixed when the image is built. Its network interface \
            is a virtio-net device, the NIC every virtual machine speaks; its log comes \
            out of its serial port (UART).",
};
