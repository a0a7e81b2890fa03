//! The flash and RAM budgets of the bare-metal release images, held on the
//! images scripts/test builds (`size`'s text, data and bss; docs/boards.md,
//! "Flash and RAM per service", says what each service costs), and the RAM
//! budget each image reports in `INFO` (its `ram_*` pools) against `size` and
//! against the tables in docs/boards.md ("RAM per pool"), and the stack's
//! high-water mark after the conformance cases and iperf3.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use socklab_app::protocol::info;
use socklab_host::launch::artifacts::source_root;
use socklab_host::launch::{Machine, QemuDevice};
use socklab_tests::image::{image_path, image_size, ImageSize, Variant};
use socklab_tests::iperf::iperf3_ok;
use socklab_tests::{cases, crash, eventually, BoardKind, Dut};

const KIB: u64 = 1024;

/// Asserts that `machine`'s `variant` image keeps within `text` bytes of flash
/// and `ram` bytes of data + bss.
fn assert_within(machine: Machine, variant: Variant, text: u64, ram: u64) {
    let size: ImageSize = image_size(machine, variant).unwrap_or_else(|e| panic!("{e}"));
    let board = &machine.spec().board;
    assert!(
        size.text <= text,
        "{board} {variant:?}: text {} B over its budget of {text} B ({size:?})",
        size.text
    );
    assert!(
        size.data + size.bss <= ram,
        "{board} {variant:?}: data + bss {} B over its budget of {ram} B ({size:?})",
        size.data + size.bss
    );
}

/// The full mps2-an385 image: every service in 192 KiB of flash; its RAM is
/// the board's 4 MiB (the pool is sized for throughput).
#[test]
fn mps2_full_image_fits_192_kib_of_flash() {
    let _area = socklab_tests::area::enter(module_path!());
    assert_within(Machine::Mps2An385, Variant::Full, 192 * KIB, 512 * KIB);
}

/// The minimal mps2-an385 image (lab, management, TCP echo, `Sizes::MINIMAL`):
/// its statics fit a part with 64 KiB of RAM, its code 128 KiB of flash.
#[test]
fn mps2_minimal_image_fits_64_kib_of_ram() {
    let _area = socklab_tests::area::enter(module_path!());
    assert_within(Machine::Mps2An385, Variant::Minimal, 128 * KIB, 64 * KIB);
}

/// The minimal image's code is the smaller on every board: leaving the
/// services out takes their code with them. (Its RAM budget is held on
/// mps2-an385 above; riscv-virt's bss holds its 256 KiB stack as well.)
#[test]
fn minimal_images_are_smaller_than_full_ones() {
    let _area = socklab_tests::area::enter(module_path!());
    for &machine in Machine::ALL {
        let full = image_size(machine, Variant::Full).unwrap_or_else(|e| panic!("{e}"));
        let minimal = image_size(machine, Variant::Minimal).unwrap_or_else(|e| panic!("{e}"));
        let board = &machine.spec().board;
        assert!(
            minimal.text < full.text,
            "{board}: minimal {minimal:?} not below full {full:?}"
        );
    }
}

/// How far the RAM pools `INFO` names may be from what `size` counts: the
/// statics no pool names (the log's state, the clock's, the ConstStaticCells'
/// flags) are small.
const RAM_TOLERANCE_PERCENT: u64 = 5;

/// Whether `elf` has a section of its own for the stack (riscv-rt's
/// `.stack`), which `size` then counts in the bss.
fn has_stack_section(elf: &Path) -> bool {
    let out = Command::new("size")
        .arg("-A")
        .arg(elf)
        .output()
        .expect("run `size -A` (apt install binutils)");
    assert!(out.status.success(), "size -A {}", elf.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|line| line.split_whitespace().next() == Some(".stack"))
}

/// Boots `machine`'s `variant` image and checks its RAM budget against the
/// image: the `ram_*` pools add up to `ram_total`, the stack pool is the
/// stack's reservation and holds the application's state, and the pools
/// `size` counts (every one but the stack where the stack is no section)
/// are within [`RAM_TOLERANCE_PERCENT`] of data + bss.
fn assert_ram_pools_match_size(machine: Machine, variant: Variant) {
    let board = &machine.spec().board;
    let path = image_path(machine, variant);
    let size = image_size(machine, variant).unwrap_or_else(|e| panic!("{e}"));
    let device = QemuDevice::start(crash::user_options(machine, path.clone()))
        .unwrap_or_else(|e| panic!("{board} {variant:?} boots: {e}"));
    let dut = Dut::from_device(BoardKind::QemuUser(machine), Box::new(device));
    let info = dut
        .lab_client()
        .expect("lab client gets HELLO")
        .info()
        .expect("INFO answered");
    let value = |key: &str| -> u64 {
        info.parse(key)
            .unwrap_or_else(|| panic!("{board} {variant:?}: {key} = {:?}", info.get(key)))
    };
    let pools: Vec<(&str, u64)> = info::RAM_POOLS.iter().map(|k| (*k, value(k))).collect();
    let total: u64 = pools.iter().map(|(_, v)| v).sum();
    assert_eq!(
        value(info::RAM_TOTAL),
        total,
        "{board} {variant:?}: {pools:?}"
    );
    let stack = value(info::RAM_STACK);
    assert_eq!(stack, value(info::STACK_RESERVED), "{board} {variant:?}");
    assert!(
        value(info::RAM_APP) < stack,
        "{board} {variant:?}: the application's state ({} B) does not fit the stack it lives on ({stack} B)",
        value(info::RAM_APP)
    );
    let counted = if has_stack_section(&path) {
        total
    } else {
        total - stack
    };
    let statics = size.data + size.bss;
    let off = counted.abs_diff(statics);
    println!(
        "figures: {board} {variant:?}: RAM pools {total} B (stack {stack} B), of them {counted} B \
         in size's data + bss {statics} B: {off} B apart"
    );
    assert!(
        off * 100 <= statics * RAM_TOLERANCE_PERCENT,
        "{board} {variant:?}: the pools size counts add up to {counted} B, data + bss is \
         {statics} B: more than {RAM_TOLERANCE_PERCENT} % apart ({pools:?})"
    );
    dut.assert_running();
}

/// Every QEMU board's full and minimal image: `INFO`'s RAM pools add up to
/// `size`'s data + bss within 5 %.
#[test]
fn ram_pools_in_info_add_up_to_size_data_and_bss() {
    let _area = socklab_tests::area::enter(module_path!());
    for &machine in Machine::ALL {
        for variant in [Variant::Full, Variant::Minimal] {
            assert_ram_pools_match_size(machine, variant);
        }
    }
}

/// The RAM tables in docs/boards.md are what `scripts/image-sizes --ram`
/// prints for the images built now: each sits between
/// `<!-- scripts/image-sizes --ram --board B -->` and `<!-- end -->`.
#[test]
fn docs_ram_tables_are_what_image_sizes_prints() {
    let _area = socklab_tests::area::enter(module_path!());
    let root = source_root();
    let docs_path = root.join("docs/boards.md");
    let docs = std::fs::read_to_string(&docs_path).expect("read docs/boards.md");
    for &machine in Machine::ALL {
        let board = &machine.spec().board;
        let marker = format!("<!-- scripts/image-sizes --ram --board {board} -->\n");
        let start = docs
            .find(&marker)
            .unwrap_or_else(|| panic!("docs/boards.md has no `{}`", marker.trim()))
            + marker.len();
        let end = start
            + docs[start..]
                .find("<!-- end -->")
                .expect("an `<!-- end -->` after the table");
        let committed = docs[start..end].trim();
        let out = Command::new(root.join("scripts/image-sizes"))
            .args(["--ram", "--board", board])
            .env("SOCKLAB", socklab_tests::socklab_bin())
            .output()
            .expect("run scripts/image-sizes");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/image-sizes --ram --board {board}: {}{printed}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            committed,
            printed.trim(),
            "docs/boards.md's RAM table of {board} is not what `scripts/image-sizes --ram \
             --board {board}` prints now: paste its output there"
        );
    }
}

/// Bytes of the stack's reservation that must stay unused after the
/// conformance cases and iperf3: room for what the cases did not reach.
const STACK_MARGIN: u64 = 8 * 1024;

/// A conformance case of `socklab_tests::cases`.
type Case = fn(&Dut);

/// The conformance cases every board passes, run one after the other on one
/// device (the transport cases).
const CONFORMANCE: &[(&str, Case)] = &[
    (
        "hello_shows_each_client_its_own_socket",
        cases::hello_shows_each_client_its_own_socket,
    ),
    ("echo_answers_the_text", cases::echo_answers_the_text),
    (
        "say_reaches_every_other_client",
        cases::say_reaches_every_other_client,
    ),
    ("who_lists_the_clients", cases::who_lists_the_clients),
    (
        "netstat_lists_connections_and_listeners",
        cases::netstat_lists_connections_and_listeners,
    ),
    (
        "info_reports_sizes_and_counters",
        cases::info_reports_sizes_and_counters,
    ),
    ("quit_says_bye_and_closes", cases::quit_says_bye_and_closes),
    (
        "empty_line_gets_no_answer",
        cases::empty_line_gets_no_answer,
    ),
    (
        "unknown_command_is_an_error",
        cases::unknown_command_is_an_error,
    ),
    (
        "long_line_is_refused_and_connection_survives",
        cases::long_line_is_refused_and_connection_survives,
    ),
    (
        "longest_line_with_crlf_is_accepted",
        cases::longest_line_with_crlf_is_accepted,
    ),
    (
        "whole_pool_is_served_at_once",
        cases::whole_pool_is_served_at_once,
    ),
    (
        "two_hundred_cycles_leave_every_slot_listening",
        cases::two_hundred_cycles_leave_every_slot_listening,
    ),
    (
        "client_that_resets_frees_its_slot",
        cases::client_that_resets_frees_its_slot,
    ),
    (
        "echo_returns_a_mebibyte_byte_exact",
        cases::echo_returns_a_mebibyte_byte_exact,
    ),
    (
        "discard_swallows_bulk_data",
        cases::discard_swallows_bulk_data,
    ),
    (
        "chargen_lines_follow_rfc_864",
        cases::chargen_lines_follow_rfc_864,
    ),
    ("closed_port_is_refused", cases::closed_port_is_refused),
    (
        "clients_beyond_the_pool_wait_and_beyond_the_backlog_are_refused",
        cases::clients_beyond_the_pool_wait_and_beyond_the_backlog_are_refused,
    ),
    (
        "a_full_device_answers_who_netstat_and_info",
        cases::a_full_device_answers_who_netstat_and_info,
    ),
    ("daytime_answers_over_tcp", cases::daytime_answers_over_tcp),
];

/// The stack's high-water mark and reservation, from `INFO` (asked again for
/// up to 10 s: the last case's clients may still hold every lab socket).
fn stack_use(dut: &Dut) -> (u64, u64) {
    let info = eventually(Duration::from_secs(10), || {
        dut.lab_client().ok()?.info().ok()
    })
    .expect("INFO answered within 10 s");
    let value = |key| {
        info.parse(key)
            .unwrap_or_else(|| panic!("{key} = {:?}", info.get(key)))
    };
    (value(info::STACK_USED), value(info::STACK_RESERVED))
}

/// On each QEMU board's full image, the stack's high-water mark after every
/// conformance case and after iperf3 each way stays [`STACK_MARGIN`] below
/// the reservation; the figures are printed.
#[test]
fn stack_high_water_after_conformance_and_iperf3_leaves_a_margin() {
    let _area = socklab_tests::area::enter(module_path!());
    for &machine in Machine::ALL {
        let board = &machine.spec().board;
        let dut = Dut::start(BoardKind::QemuUser(machine));
        let (boot, reserved) = stack_use(&dut);
        for (name, case) in CONFORMANCE {
            // Each case expects the lab idle, as on a fresh device: the last
            // case's clients gone.
            eventually(Duration::from_secs(10), || {
                let info = dut.lab_client().ok()?.info().ok()?;
                let idle = info.parse::<u64>(info::LAB_IN_USE) == Some(1)
                    && info.parse::<u64>(info::LAB_QUEUED) == Some(0);
                idle.then_some(())
            })
            .unwrap_or_else(|| panic!("{board}: the lab is not idle before {name}"));
            case(&dut);
        }
        let (conformance, _) = stack_use(&dut);
        iperf3_ok(&dut, "-t 3");
        iperf3_ok(&dut, "-t 3 -R");
        let (iperf3, _) = stack_use(&dut);
        println!(
            "figures: {board}: stack_used {boot} B after boot, {conformance} B after the \
             conformance cases, {iperf3} B after iperf3 (3 s each way), of {reserved} B reserved"
        );
        for (when, used) in [("the conformance cases", conformance), ("iperf3", iperf3)] {
            assert!(
                used + STACK_MARGIN <= reserved,
                "{board}: the stack's high-water mark after {when}, {used} B, leaves less than \
                 {STACK_MARGIN} B of its {reserved} B"
            );
        }
        dut.assert_running();
    }
}
