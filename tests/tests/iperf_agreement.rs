//! `socklab bench` and the stock iperf3 client measure the same
//! `socklab-tap` device and agree within 15 %, host→device and device→host.
//! A test binary of its own, so that no other test of the suite shares the
//! CPUs while it measures.

use socklab_tests::{iperf, BoardKind, Dut};

#[test]
fn bench_and_iperf3_agree_on_tap() {
    let dut = Dut::start(BoardKind::Tap);
    iperf::bench_and_iperf3_agree(&dut, 5);
    dut.assert_running();
}
