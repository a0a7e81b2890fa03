//! The mps2-an385 machine: a Cortex-M3 with a LAN9118 Ethernet controller,
//! booting the image of `firmware/boards/mps2-an385`.

use super::machine::MachineSpec;

/// What QEMU needs to boot the mps2-an385 board.
pub const SPEC: MachineSpec = MachineSpec {
    board: "mps2-an385",
    qemu: "qemu-system-arm",
    qemu_package: "qemu-system-arm",
    machine_args: &["-machine", "mps2-an385", "-cpu", "cortex-m3"],
    nic: &["-net", "nic,netdev=n0,model=lan9118,macaddr={mac}"],
    elf_name: "socklab-mps2",
    image_path: "firmware/boards/mps2-an385/target/thumbv7m-none-eabi/release/socklab-mps2",
    build: &["scripts/fw-cargo", "build", "--release"],
    sources: &["firmware/app/src", "firmware/boards/mps2-an385/src"],
    image_env: "SOCKLAB_MPS2_ELF",
    about: "Our machine is an emulated microcontroller board, Arm's MPS2 with a Cortex-M3 \
            (QEMU's mps2-an385), running a TCP server firmware: smoltcp, no operating \
            system, every socket and buffer fixed when the image is built. Its network \
            interface is the board's LAN9118 Ethernet chip; its log comes out of its \
            serial port (UART).",
};
