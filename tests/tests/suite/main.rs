//! socklab's integration tests, one binary with a module per area. Most need
//! root (TAPs in private namespaces) and the tools scripts/setup installs;
//! the `socklab` and `socklab-tap` binaries must be built first (`cargo build
//! --release --workspace --bins`, which scripts/test runs).
//!
//! The tests of one area run side by side; two areas never run at the same
//! time (`socklab_tests::area`). Run one area with its module path as the
//! filter: `cargo test --release -p socklab-tests --test suite cli::`.
//!
//! * conformance on every board: [`tap`], [`qemu_tap`], [`qemu_user`],
//!   [`riscv`] (with its reliability and crash cases);
//! * services: [`http`], [`browser`] (the page in Chromium), [`iperf`],
//!   [`iperf_agreement`] (the bench against iperf3, alone on the CPUs);
//! * the `socklab` command: [`cli`], [`bad_input`], [`demo`], [`top`];
//! * the images: [`image_budget`] (flash and RAM budgets); the minimal build's
//!   conformance cases are a binary of their own (`tests/tests/minimal_image.rs`):
//!   they point the mps2-an385 image variable at the minimal image for the whole
//!   process;
//! * the link: [`offload`], [`bad_link`];
//! * abuse: [`reliability_tap`], [`reliability_qemu`];
//! * tools we did not write: [`thirdparty_tap`], [`thirdparty_qemu`],
//!   [`thirdparty_riscv`].

mod bad_input;
mod bad_link;
mod browser;
mod cli;
mod demo;
mod http;
mod image_budget;
mod iperf;
mod iperf_agreement;
mod offload;
mod qemu_tap;
mod qemu_user;
mod reliability_qemu;
mod reliability_tap;
mod riscv;
mod tap;
mod thirdparty_qemu;
mod thirdparty_riscv;
mod thirdparty_tap;
mod top;
mod two_networks;
