//! The HTTP server on port 80 on both boards, driven by the real curl: on
//! linux-tap over its TAP, on mps2-an385 through QEMU's user networking
//! (127.0.0.1:<base>+80). Both boards in one area, so they run side by side.

mod tap {
    socklab_tests::http_cases!(socklab_tests::BoardKind::Tap);
}

mod qemu_user {
    socklab_tests::http_cases!(socklab_tests::BoardKind::MPS2_USER);
}
