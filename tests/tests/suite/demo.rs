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
    let _area = socklab_tests::area::enter(module_path!());
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
    let _area = socklab_tests::area::enter(module_path!());
    demo(&["--board", "qemu"]);
}

#[test]
fn the_demo_passes_on_the_riscv_board() {
    let _area = socklab_tests::area::enter(module_path!());
    demo(&["--board", "riscv"]);
}

/// `--networks 2`: the demo ends with "one device, two networks", every step of
/// it passed (a client on each network, two local addresses on one port, two
/// interfaces, no route from one network to the other's address).
fn two_networks(board: &str) {
    let transcript = demo(&["--board", board, "--networks", "2"]);
    for step in [
        "One device, two networks",
        "✔ alice, on network A, connects to 192.168.69.1:6666",
        "✔ dave, on network B, connects to 192.168.70.1:6666",
        "✔ dave: NETSTAT: two local addresses, one port",
        "✔ dave: IFCONFIG: two interfaces, two addresses: eth0 192.168.69.1/24, eth1 192.168.70.1/24",
        "✔ network A connects to 192.168.70.1:6666: refused: Network is unreachable",
    ] {
        assert!(transcript.contains(step), "no `{step}` in:\n{transcript}");
    }
}

#[test]
fn the_two_network_step_passes_on_the_tap_board() {
    let _area = socklab_tests::area::enter(module_path!());
    two_networks("tap");
}

#[test]
fn the_two_network_step_passes_on_the_riscv_board() {
    let _area = socklab_tests::area::enter(module_path!());
    two_networks("riscv");
}

/// `--pause` for a classroom: before each section after the first the demo
/// prints a prompt and waits for a line on stdin (Enter in a terminal; here
/// a pipe): nothing more comes until the line is sent.
#[test]
fn the_demo_pauses_between_sections_until_a_line_comes() {
    let _area = socklab_tests::area::enter(module_path!());
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(socklab())
        .args(["demo", "--pause"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run socklab demo --pause");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut transcript = String::new();
    let mut prompts = 0;
    let mut last_section = 0;
    loop {
        let line = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the demo stalled:\n{transcript}");
            }
        };
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some((n, _)) = line.split_once(". ") {
            if let Ok(n) = n.parse::<usize>() {
                last_section = n;
            }
        }
        if line == "[next section after a line on stdin]" {
            prompts += 1;
            // Waiting: nothing more for a while, and no next section.
            match lines.recv_timeout(Duration::from_millis(300)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                other => panic!("the demo went on without a line: {other:?}\n{transcript}"),
            }
            stdin.write_all(b"\n").expect("send a line");
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}\n{transcript}");
    assert!(last_section >= 10, "{transcript}");
    assert_eq!(
        prompts,
        last_section - 1,
        "one wait before each section but the first:\n{transcript}"
    );
    assert!(transcript.contains(" 0 failed"), "{transcript}");
}
