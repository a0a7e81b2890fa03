//! Reliability on the mps2-an385 board (issue 5): the firmware image in QEMU,
//! its LAN9118 on a TAP in a private namespace. Needs root. Clients dying
//! mid-transfer (the bad link is in `bad_link.rs`); `-- --nocapture` shows the figures.

use socklab_tests::{reliability, BoardKind};

#[test]
fn clients_reset_mid_transfer_free_their_sockets() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::reset_clients_free_their_sockets(BoardKind::MPS2_TAP);
}

#[test]
fn clients_vanished_mid_transfer_free_their_sockets() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::silent_clients_free_their_sockets(BoardKind::MPS2_TAP);
}
