//! The minimal image of each QEMU board (`--no-default-features --features
//! minimal`: the lab, the management port and TCP echo, with
//! `Sizes::MINIMAL`) in QEMU on user networking: the conformance cases of the
//! services it has, and the ports of the services it leaves out refused. One
//! module per board: `mps2` (mps2-an385), `riscv` (riscv-virt).
//!
//! Each image is booted through its board's `image_env` variable
//! (`SOCKLAB_MPS2_ELF`, `SOCKLAB_RISCV_ELF`), set for this test binary only.

use std::sync::Once;

use socklab_app::protocol::{
    info, CHARGEN_PORT, DAYTIME_PORT, DISCARD_PORT, ECHO_PORT, HTTP_PORT, IPERF2_PORT, IPERF3_PORT,
    LAB_PORT,
};
use socklab_app::Sizes;
use socklab_host::launch::Machine;
use socklab_tests::cases::assert_refused;
use socklab_tests::image::{image_path, Variant};
use socklab_tests::{conformance, BoardKind, Dut};

/// `machine` on user networking, booting its minimal image. Every board's
/// variable is set once, before any test starts a device, so that no test
/// reads the environment while another writes it.
fn minimal(machine: Machine) -> BoardKind {
    static SET: Once = Once::new();
    SET.call_once(|| {
        for &machine in Machine::ALL {
            let path = image_path(machine, Variant::Minimal);
            if path.is_file() {
                std::env::set_var(&machine.spec().image_env, &path);
            }
        }
    });
    let path = image_path(machine, Variant::Minimal);
    assert!(
        path.is_file(),
        "{} is missing: build it with `{}` (scripts/test does)",
        path.display(),
        Variant::Minimal.build_command(machine)
    );
    BoardKind::QemuUser(machine)
}

/// The minimal image's tests on `machine`: the conformance cases of the
/// services it has, the left-out services' ports refused, its `INFO` and
/// `NETSTAT`.
macro_rules! minimal_cases {
    ($machine:expr) => {
        conformance!(minimal($machine);
            hello_shows_each_client_its_own_socket,
            echo_answers_the_text,
            say_reaches_every_other_client,
            who_lists_the_clients,
            quit_says_bye_and_closes,
            empty_line_gets_no_answer,
            unknown_command_is_an_error,
            long_line_is_refused_and_connection_survives,
            longest_line_with_crlf_is_accepted,
            whole_pool_is_served_at_once,
            two_hundred_cycles_leave_every_slot_listening,
            client_that_resets_frees_its_slot,
            echo_returns_a_mebibyte_byte_exact,
            closed_port_is_refused,
            clients_beyond_the_pool_wait_and_beyond_the_backlog_are_refused,
            a_full_device_answers_who_netstat_and_info,
        );

        #[test]
        fn ports_of_the_services_left_out_are_refused() {
            super::ports_of_the_services_left_out_are_refused($machine);
        }

        #[test]
        fn info_and_netstat_show_the_minimal_table() {
            super::info_and_netstat_show_the_minimal_table($machine);
        }
    };
}

mod mps2 {
    use super::*;
    minimal_cases!(Machine::Mps2An385);
}

mod riscv {
    use super::*;
    minimal_cases!(Machine::RiscvVirt);
}

/// The services left out have no listener: their ports are refused like any
/// closed port, and the refusals are counted.
fn ports_of_the_services_left_out_are_refused(machine: Machine) {
    let dut = Dut::start(minimal(machine));
    let left_out = [
        DISCARD_PORT,
        CHARGEN_PORT,
        HTTP_PORT,
        DAYTIME_PORT,
        IPERF3_PORT,
        IPERF2_PORT,
    ];
    for port in left_out {
        assert_refused(&dut, port);
    }
    let mut client = dut.lab_client().expect("lab client gets HELLO");
    let info = client.info().expect("INFO answered");
    assert_eq!(
        info.parse::<u64>(info::CONN_REFUSED),
        Some(left_out.len() as u64),
        "{:?}",
        info.entries
    );
    dut.assert_running();
}

/// `INFO` gives the minimal pool and none of the left-out services' keys;
/// `NETSTAT` lists the lab's and echo's listeners and nothing on the other
/// services' ports.
fn info_and_netstat_show_the_minimal_table(machine: Machine) {
    let dut = Dut::start(minimal(machine));
    let mut client = dut.lab_client().expect("lab client gets HELLO");
    let info = client.info().expect("INFO answered");
    let pool = Sizes::MINIMAL;
    assert_eq!(info.get(info::BOARD), Some(machine.spec().board.as_str()));
    assert_eq!(info.parse(info::LAB_SLOTS), Some(pool.lab.slots));
    assert_eq!(info.parse(info::LAB_BACKLOG), Some(pool.lab.backlog));
    assert_eq!(info.parse(info::BULK_SLOTS), Some(pool.bulk.slots));
    // The lab's sockets, echo's (the one bulk service), the closing pool's;
    // no fixed-size service. (This crate's `Sizes` counts every service.)
    let echo = pool.bulk.slots * pool.bulk.socket_bytes();
    let closing =
        pool.closing.lab * pool.lab.socket_bytes() + pool.closing.bulk * pool.bulk.socket_bytes();
    assert_eq!(
        info.parse(info::BUFFER_BYTES),
        Some(pool.lab.buffer_bytes() + echo + closing)
    );
    for key in [
        info::IPERF3_SOCKETS,
        info::IPERF2_SOCKETS,
        info::DAYTIME_ANSWERS,
    ] {
        assert_eq!(info.get(key), None, "{key} in {:?}", info.entries);
    }

    let rows = client.netstat().expect("NETSTAT answered");
    let listening = |port| {
        rows.iter()
            .filter(|r| r.local.port() == Some(port) && r.state == "LISTEN")
            .count()
    };
    // Every lab socket, slots and backlog, listens but this client's.
    assert_eq!(listening(LAB_PORT), pool.lab.sockets() - 1, "{rows:#?}");
    assert_eq!(listening(ECHO_PORT), pool.bulk.slots, "{rows:#?}");
    for port in [DISCARD_PORT, CHARGEN_PORT, HTTP_PORT, DAYTIME_PORT] {
        assert!(
            rows.iter().all(|r| r.local.port() != Some(port)),
            "a socket on port {port}: {rows:#?}"
        );
    }
    dut.assert_running();
}
