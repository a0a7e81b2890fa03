//! A Java client, written as a socket-programming course writes one
//! (`tests/java/LabCourseClient.java`: `java.net.Socket`, `BufferedReader`,
//! `PrintWriter`), compiled with javac and run against the device: HELLO,
//! ECHO, SAY heard by a second Java client, WHO, NETSTAT, QUIT, and a
//! `ConnectException` on a closed port.

use std::time::Duration;

use socklab_app::protocol::{BYE, END, LAB_PORT, OK};

use super::{in_netns, require, run, suite_file, TempDir};
use crate::{BoardKind, Dut};

/// The client's source, in the suite.
pub const SOURCE: &str = "java/LabCourseClient.java";

/// The lines one client (`alice`, `bob`) received, in order.
fn heard<'a>(transcript: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}< ");
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

/// The whole course session against the device, checked line by line.
pub fn course_client_session(board: BoardKind) {
    let dut = Dut::start(board);
    require("javac");
    let classes = TempDir::new("java");
    let mut javac = std::process::Command::new("javac");
    javac.arg("-d").arg(classes.path()).arg(suite_file(SOURCE));
    run(javac, Duration::from_secs(120)).assert_success();

    let closed = dut.closed_ports()[0];
    let host = dut.addr(0).ip().to_string();
    let mut java = in_netns(&dut, "java");
    java.arg("-cp")
        .arg(classes.path())
        .arg("LabCourseClient")
        .arg(&host)
        .arg(LAB_PORT.to_string())
        .arg(closed.to_string());
    let output = run(java, Duration::from_secs(120));
    output.assert_success();
    let t = &output.stdout;
    let context = || {
        format!(
            "transcript of `{}`:\n{t}\n{}",
            output.command, output.stderr
        )
    };

    let alice = heard(t, "alice");
    let bob = heard(t, "bob");
    let alice_addr = t
        .lines()
        .find_map(|l| l.strip_prefix("alice is "))
        .unwrap_or_else(|| panic!("no address line; {}", context()));
    assert!(alice[0].starts_with("HELLO socklab/"), "{}", context());
    assert!(bob[0].starts_with("HELLO socklab/"), "{}", context());
    assert_eq!(alice[1], "hello from Java", "{}", context());
    assert_eq!(alice[2], OK, "{}", context());
    assert_eq!(bob[1], format!("FROM {alice_addr} hi bob"), "{}", context());
    // WHO: both clients, then END.
    let who_end = alice[3..]
        .iter()
        .position(|l| *l == END)
        .unwrap_or_else(|| panic!("WHO has no END; {}", context()))
        + 3;
    let who = &alice[3..who_end];
    assert_eq!(who.len(), 2, "WHO lists two clients; {}", context());
    assert!(who.iter().any(|l| l.ends_with(alice_addr)), "{}", context());
    // NETSTAT: both connections and the listeners, then END.
    let netstat_end = alice[who_end + 1..]
        .iter()
        .position(|l| *l == END)
        .unwrap_or_else(|| panic!("NETSTAT has no END; {}", context()))
        + who_end
        + 1;
    let netstat = &alice[who_end + 1..netstat_end];
    assert!(
        netstat
            .iter()
            .any(|l| l.starts_with("tcp") && l.contains(alice_addr) && l.contains("ESTABLISHED")),
        "NETSTAT shows alice's connection; {}",
        context()
    );
    assert!(
        netstat
            .iter()
            .any(|l| l.starts_with(&format!("tcp *:{LAB_PORT} *:* LISTEN"))),
        "NETSTAT shows a lab listener; {}",
        context()
    );
    assert_eq!(&bob[2..], [BYE, "<end of stream>"], "{}", context());
    assert_eq!(
        &alice[netstat_end + 1..],
        [BYE, "<end of stream>"],
        "{}",
        context()
    );
    let refused = t
        .lines()
        .find_map(|l| l.strip_prefix("refused: "))
        .unwrap_or_else(|| panic!("port {closed} was not refused; {}", context()));
    assert!(
        refused.starts_with("java.net.ConnectException: Connection refused"),
        "{}",
        context()
    );
    println!(
        "figures: Java course client on {}: HELLO, ECHO, SAY to a second client, WHO, NETSTAT \
         ({} rows), QUIT, {refused} (port {closed}); JVM run {:.1} s",
        dut.board_name(),
        netstat.len(),
        output.elapsed.as_secs_f64()
    );
    dut.assert_running();
}
