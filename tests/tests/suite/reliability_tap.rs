//! Reliability on the linux-tap board (issue 5): `socklab-tap` on a TAP in a
//! private namespace, abused by a SYN flood, slowloris, a slow reader,
//! clients dying mid-transfer and a soak (the bad link is in `bad_link.rs`).
//! Needs root. Each case starts its own device with short timeouts;
//! `-- --nocapture` shows the figures.

use socklab_tests::{reliability, BoardKind};

#[test]
fn syn_flood_keeps_echo_answered_and_every_slot_listens_again() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::syn_flood(BoardKind::Tap);
}

#[test]
fn slowloris_clients_get_bye_idle_and_newcomers_are_served() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::slowloris(BoardKind::Tap);
}

#[test]
fn slow_reader_is_disconnected_and_fast_clients_lose_nothing() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::slow_reader(BoardKind::Tap);
}

#[test]
fn clients_reset_mid_transfer_free_their_sockets() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::reset_clients_free_their_sockets(BoardKind::Tap);
}

#[test]
fn clients_vanished_mid_transfer_free_their_sockets() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::silent_clients_free_their_sockets(BoardKind::Tap);
}

#[test]
fn soak_of_twenty_thousand_cycles_leaks_nothing() {
    let _area = socklab_tests::area::enter(module_path!());
    reliability::soak(BoardKind::Tap);
}
