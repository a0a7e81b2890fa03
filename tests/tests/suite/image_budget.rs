//! The flash and RAM budgets of the bare-metal release images, held on the
//! images scripts/test builds (`size`'s text, data and bss; docs/boards.md,
//! "Flash and RAM per service", says what each service costs).

use socklab_host::launch::Machine;
use socklab_tests::image::{image_size, ImageSize, Variant};

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
/// services out takes their code with them. (Its RAM is compared on
/// mps2-an385 above: riscv-virt's bss spans the RAM the board gives the
/// image, whatever the pool.)
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
