//! `socklab top --once`, the real binary, against a real `socklab-tap` in its
//! namespace: lab clients connected over IPv4 and IPv6 show in their slots
//! with their addresses, directly (`--netns`) and through a 127.0.0.1
//! forwarder; the same documents read through the host library's API model
//! agree; a device with a bad link has its counts in the counters box, and
//! one without has none. Bad targets fail with a clear message and a
//! non-zero exit.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use socklab_app::protocol::{DISCARD_PORT, HTTP_PORT, LAB_PORT};
use socklab_host::api::ApiClient;
use socklab_host::client::LabClient;
use socklab_host::forward::Forwarder;
use socklab_tests::page::PAGE_BAD_LINK;
use socklab_tests::{socklab_bin, BoardKind, Dut};

/// Runs `socklab [--netns NS] top ARGS`, stdout piped.
fn top(netns: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(socklab_bin());
    if let Some(ns) = netns {
        cmd.args(["--netns", ns]);
    }
    cmd.arg("top")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run socklab top")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The frame's row of `lab slot N`.
fn slot_row(frame: &str, slot: usize) -> &str {
    let name = format!("lab slot {slot} ");
    frame
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("no row for lab slot {slot} in\n{frame}"))
}

/// The states of the ladder of the connection from `peer` in the "State
/// changes" box: the line that names the peer there, `NAME PEER` at the end
/// of the box's row, is followed by the steps `STATE +TIME → STATE ...` at
/// the same column.
fn ladder_steps(frame: &str, peer: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = frame.lines().map(|l| l.chars().collect()).collect();
    let until_border =
        |chars: &[char]| -> String { chars.iter().take_while(|&&c| c != '│').collect() };
    for (n, line) in lines.iter().enumerate() {
        let text: String = line.iter().collect();
        let Some(at) = text.find(&format!(" {peer}")) else {
            continue;
        };
        // The name (e.g. `lab slot 3`) starts after the box's left border.
        let column = text[..at].chars().count();
        let Some(start) = line[..column].iter().rposition(|&c| c == '│') else {
            continue;
        };
        let Some(next) = lines.get(n + 1) else {
            continue;
        };
        let steps = until_border(next.get(start + 1..).unwrap_or_default());
        if !steps.starts_with("  ") || steps.trim().is_empty() {
            continue;
        }
        let states: Vec<String> = steps
            .split('→')
            .filter_map(|step| step.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        if states
            .iter()
            .all(|s| s.chars().all(|c| c.is_ascii_uppercase() || c == '-'))
        {
            return states;
        }
    }
    panic!("no ladder for {peer} in\n{frame}")
}

fn netns(dut: &Dut) -> String {
    dut.host_net()
        .netns_name()
        .expect("a TAP device lives in a namespace")
        .to_owned()
}

#[test]
fn top_once_shows_the_lab_clients_in_their_slots() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    let ns = netns(&dut);
    let mut clients: Vec<LabClient> = (0..2)
        .map(|_| dut.lab_client().expect("a lab client"))
        .collect();
    let v6 = dut.addr6(LAB_PORT).expect("the TAP device has IPv6");
    clients.push(dut.lab_client_at(v6).expect("a lab client over IPv6"));
    let device = dut.addr(HTTP_PORT).ip().to_string();

    let out = top(Some(&ns), &[&device, "--once"]);
    let (frame, log) = text(&out);
    assert!(out.status.success(), "socklab top failed: {log}\n{frame}");
    assert!(frame.contains("linux-tap"), "{frame}");
    assert!(frame.contains("192.168.69.1/24"), "{frame}");
    for client in &clients {
        let hello = client.greeting();
        let row = slot_row(&frame, hello.slot);
        assert!(row.contains(&hello.peer.to_string()), "{row}");
        assert!(row.contains(&hello.local.to_string()), "{row}");
        assert!(row.contains("ESTABLISHED"), "{row}");
        // Its own ladder: the handshake, then ESTABLISHED, with its peer.
        let steps = ladder_steps(&frame, &hello.peer.to_string());
        assert_eq!(
            steps,
            ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"],
            "the ladder of {}:\n{frame}",
            hello.peer
        );
    }
    assert!(frame.contains("*:6666"), "{frame}");
    assert!(
        !frame.contains("bad link"),
        "a device without a bad link:\n{frame}"
    );

    // The same picture through the library's API model.
    let mut api = ApiClient::new(
        dut.host_net().clone(),
        dut.addr(HTTP_PORT),
        Duration::from_secs(5),
    );
    let sockets = api.sockets().expect("/api/sockets");
    let groups = sockets.groups();
    for client in &clients {
        let hello = client.greeting();
        let s = groups
            .connected
            .iter()
            .find(|s| s.remote == Some(hello.peer))
            .unwrap_or_else(|| panic!("{} not connected: {groups:#?}", hello.peer));
        assert_eq!(s.slot, Some(hello.slot));
        assert_eq!(s.state, "ESTABLISHED");
    }

    // Through a forwarder on 127.0.0.1 in this namespace, as `socklab run
    // tap` makes one (on a free port here, not 10080: tests run side by side).
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port();
    let base = free
        .checked_sub(HTTP_PORT)
        .expect("an ephemeral port is over 80");
    let ip: IpAddr = dut.addr(HTTP_PORT).ip();
    let forwarder =
        Forwarder::start(dut.host_net(), ip, &[HTTP_PORT], base).expect("forward the page");
    let local: SocketAddr = forwarder.local(HTTP_PORT).unwrap();
    let out = top(None, &[&local.to_string(), "--once", "--width", "100"]);
    let (frame, log) = text(&out);
    assert!(
        out.status.success(),
        "socklab top via {local} failed: {log}\n{frame}"
    );
    assert!(frame.contains(&format!("http://{local}")), "{frame}");
    for client in &clients {
        let hello = client.greeting();
        assert!(slot_row(&frame, hello.slot).contains(&hello.peer.to_string()));
    }
    assert!(frame.lines().all(|l| l.chars().count() <= 100), "{frame}");
    drop(forwarder);
    dut.assert_running();
}

/// The counters box's row `  NAME   IN/OUT` (the bad link's counts,
/// host→device and device→host).
fn link_row(frame: &str, name: &str) -> (u64, u64) {
    let row = frame
        .lines()
        .filter_map(|l| {
            // The counters box is the last on its line: `│  NAME   A/B│`.
            let inner = l.strip_suffix('│')?;
            let cell = &inner[inner.rfind('│')? + '│'.len_utf8()..];
            cell.strip_prefix(&format!("  {name} "))
        })
        .next()
        .unwrap_or_else(|| panic!("no bad-link row {name} in\n{frame}"));
    let (a, b) = row
        .trim()
        .split_once('/')
        .unwrap_or_else(|| panic!("{name}: {row}"));
    (
        a.parse().expect("a count in"),
        b.parse().expect("a count out"),
    )
}

#[test]
fn top_once_shows_the_bad_links_counts() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start_with(BoardKind::Tap, PAGE_BAD_LINK);
    let ns = netns(&dut);
    // Frames through the link: 1 MiB into discard.
    let addr = dut.addr(DISCARD_PORT);
    let wait = Duration::from_secs(90);
    let mut sink = dut
        .host_net()
        .run(|| TcpStream::connect_timeout(&addr, wait))
        .expect("enter the device's namespace")
        .expect("connect to discard through the bad link");
    sink.set_write_timeout(Some(wait)).unwrap();
    sink.write_all(&vec![0; 1 << 20])
        .expect("1 MiB into discard");
    drop(sink);

    let mut client = dut.lab_client().expect("a lab client");
    client.set_timeout(wait);
    let before = client.info().expect("INFO");
    let device = dut.addr(HTTP_PORT).ip().to_string();
    let out = top(Some(&ns), &[&device, "--once", "--timeout", "60"]);
    let (frame, log) = text(&out);
    assert!(out.status.success(), "socklab top failed: {log}\n{frame}");
    let after = client.info().expect("INFO again");
    assert!(frame.contains("bad link"), "{frame}");
    // What top shows lies between INFO before it and INFO after it.
    for name in [
        "frames",
        "dropped",
        "corrupted",
        "duplicated",
        "reordered",
        "delayed",
    ] {
        let shown = link_row(&frame, name);
        for (dir, value) in [("rx", shown.0), ("tx", shown.1)] {
            let key = format!("badlink_{dir}_{name}");
            let low: u64 = before.parse(&key).expect("INFO's count");
            let high: u64 = after.parse(&key).expect("INFO's count");
            assert!(
                low <= value && value <= high,
                "{key}: top shows {value}, INFO said {low} before and {high} after\n{frame}"
            );
        }
    }
    let (frames_in, frames_out) = link_row(&frame, "frames");
    assert!(
        frames_in >= 700 && frames_out > 0,
        "1 MiB through the link is at least 700 frames in: {frames_in}/{frames_out}"
    );
    let _ = client.quit();
    dut.assert_running();
}

#[test]
fn top_refuses_bad_targets_with_clear_messages() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    let ns = netns(&dut);
    let device = dut.addr(HTTP_PORT).ip();

    // Nothing listens on port 81: the device refuses.
    let out = top(Some(&ns), &[&format!("{device}:81"), "--once"]);
    let (stdout, log) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        log.contains("cannot reach the device's web server") && log.contains("refused"),
        "{log}"
    );
    assert!(stdout.is_empty(), "{stdout}");

    // The lab port answers, but not in HTTP.
    let out = top(Some(&ns), &[&format!("{device}:{LAB_PORT}"), "--once"]);
    let (_, log) = text(&out);
    assert!(!out.status.success());
    assert!(log.contains("not an HTTP answer"), "{log}");

    // No host at this address: no answer within --timeout.
    let out = top(Some(&ns), &["192.168.69.77", "--once", "--timeout", "1"]);
    let (_, log) = text(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("cannot reach the device's web server at 192.168.69.77:80"),
        "{log}"
    );

    // A malformed address or option: clap's message, exit 2.
    for args in [
        &["192.168.69.1:99999", "--once"][..],
        &["[fdaa::1", "--once"],
        &["192.168.69.1", "--once", "--interval", "0"],
    ] {
        let out = top(Some(&ns), args);
        let (_, log) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {log}");
        assert!(log.contains("error:"), "{args:?}: {log}");
    }

    // Without --once, stdout must be a terminal.
    let out = top(Some(&ns), &[&device.to_string()]);
    let (_, log) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("--once"), "{log}");
    dut.assert_running();
}
