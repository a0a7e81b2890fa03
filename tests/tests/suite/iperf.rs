//! Debian's `iperf3` and `iperf` clients against the device's iperf3 (5201)
//! and iperf2 (5001) servers on every board: `socklab-tap`, mps2-an385 and
//! riscv-virt on a TAP, and the two QEMU boards through QEMU user networking
//! (127.0.0.1:15201 and 15001). Each test starts its own device.

use socklab_tests::{iperf, BoardKind, Dut};

macro_rules! iperf_cases {
    ($board:expr, $bytes:expr) => {
        #[test]
        fn iperf3_modes() {
            let _area = socklab_tests::area::enter(module_path!());
            let dut = Dut::start($board);
            iperf::iperf3_modes(&dut);
            dut.assert_running();
        }

        #[test]
        fn iperf3_busy_and_bad_clients() {
            let _area = socklab_tests::area::enter(module_path!());
            let dut = Dut::start($board);
            iperf::iperf3_busy_and_bad_clients(&dut);
            dut.assert_running();
        }

        #[test]
        fn fifty_iperf3_tests_back_to_back() {
            let _area = socklab_tests::area::enter(module_path!());
            let dut = Dut::start($board);
            iperf::fifty_iperf3_tests_back_to_back(&dut, $bytes);
            dut.assert_running();
        }

        #[test]
        fn iperf2_modes() {
            let _area = socklab_tests::area::enter(module_path!());
            let dut = Dut::start($board);
            iperf::iperf2_modes(&dut);
            dut.assert_running();
        }
    };
}

mod tap {
    use super::*;
    iperf_cases!(BoardKind::Tap, "8M");
}

mod qemu_tap {
    use super::*;
    iperf_cases!(BoardKind::MPS2_TAP, "512K");
}

mod qemu_user {
    use super::*;
    iperf_cases!(BoardKind::MPS2_USER, "512K");
}

mod riscv_tap {
    use super::*;
    iperf_cases!(BoardKind::RISCV_TAP, "512K");
}

mod riscv_user {
    use super::*;
    iperf_cases!(BoardKind::RISCV_USER, "512K");
}
