//! Third-party tools against the mps2-an385 board: the firmware image in
//! QEMU with its LAN9118 on a TAP in a private namespace, driven by tshark
//! (on QEMU's `filter-dump` capture), nmap, hping3, ping, a Java course
//! client and Python asyncio from inside that namespace. Needs root.

use socklab_tests::{thirdparty_every_board, BoardKind};

thirdparty_every_board!(BoardKind::MPS2_TAP);
