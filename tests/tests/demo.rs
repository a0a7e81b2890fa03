//! The README's first command: `socklab demo` on each board must pass every
//! step and leave nothing behind (it exits non-zero if any step fails).

use std::process::Command;

use socklab_tests::socklab_bin as socklab;

/// Runs the demo and returns its transcript, every step passed or skipped.
fn demo(args: &[&str]) -> String {
    let out = Command::new(socklab())
        .arg("demo")
        .args(args)
        .output()
        .expect("run socklab demo");
    let transcript = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "socklab demo {args:?} failed ({}):\n{transcript}\n{log}",
        out.status
    );
    let summary = transcript
        .lines()
        .rev()
        .find(|l| l.contains(" steps: "))
        .unwrap_or_else(|| panic!("no summary line:\n{transcript}"));
    assert!(summary.ends_with(" 0 failed"), "{summary}\n{transcript}");
    assert!(!transcript.contains('✘'), "a step failed:\n{transcript}");
    for needed in [
        "HELLO socklab/",
        "FROM ",
        "LISTEN",
        "refused",
        "came back identical",
    ] {
        assert!(
            transcript.contains(needed),
            "no `{needed}` in:\n{transcript}"
        );
    }
    transcript.into_owned()
}

#[test]
fn the_demo_passes_on_the_tap_board() {
    let transcript = demo(&[]);
    // On a TAP the UDP step runs (user networking forwards TCP only).
    assert!(
        transcript.contains("✔ two UDP sockets, one datagram each to port 7")
            && transcript.contains("one udp socket for everybody"),
        "the UDP step did not pass:\n{transcript}"
    );
}

#[test]
fn the_demo_passes_on_the_qemu_board() {
    demo(&["--board", "qemu"]);
}

#[test]
fn the_demo_passes_on_the_riscv_board() {
    demo(&["--board", "riscv"]);
}
