//! Third-party tools against the riscv-virt board: the firmware image in QEMU with its
//! virtio-net on a TAP in a private namespace, driven by tshark (on QEMU's `filter-dump`
//! capture, `vnet_hdr` off), nmap, hping3, ping, a Java course client and Python asyncio
//! from inside that namespace. Needs root.

use socklab_tests::{thirdparty_every_board, BoardKind};

thirdparty_every_board!(BoardKind::RISCV_TAP);
