//! `socklab bench` and Debian's `iperf3` client measure the same device in
//! the same run and agree within 15 % host→device and device→host, on
//! mps2-an385 over a TAP. An area of its own (`socklab_tests::area`) so that
//! nothing else of the suite shares the two CPUs while it measures. linux-tap is not covered:
//! its runs still vary from one to the next beyond 15 % on a loaded 2-vCPU
//! machine (the README says why).

use socklab_tests::{iperf, BoardKind, Dut};

/// Rounds of each tool, and seconds per run.
const ROUNDS: usize = 6;
const SECONDS: u64 = 1;

#[test]
fn bench_and_iperf3_agree_on_mps2_tap() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::MPS2_TAP);
    iperf::bench_and_iperf3_agree(&dut, ROUNDS, SECONDS);
    dut.assert_running();
}
