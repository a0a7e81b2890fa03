//! The `socklab` command as a new user meets it, run as the real binary:
//! bad input gets one clear message and a non-zero exit (a table of cases),
//! each subcommand's help lists only its options and shows an example, a
//! closed stdout or stderr ends a command quietly, and against a real
//! `socklab-tap` device: netstat's grouped table, ping's summary, the
//! messages for a refused port and for a service that is not the lab, and
//! `socklab connect` in a terminal (a pty) printing a `FROM` line above the
//! line being typed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use socklab_tests::{socklab_bin, BoardKind, Dut};

/// What a run of `socklab ARGS` must end with.
struct Case {
    args: &'static [&'static str],
    /// The exit status: 1 for our errors, 2 for clap's (a bad option value).
    code: i32,
    /// Texts the message must contain.
    says: &'static [&'static str],
    /// Texts it must not contain.
    never: &'static [&'static str],
}

/// Never in any message: a panic, a raw broken pipe, a misleading hint.
const NEVER: [&str; 3] = ["panicked", "Broken pipe", "RUST_BACKTRACE"];

fn socklab(args: &[&str]) -> Output {
    Command::new(socklab_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run socklab")
}

/// Runs every case and checks its status and message; stdout stays empty.
fn check(cases: &[Case], prefix: &[&str]) {
    for case in cases {
        let args: Vec<&str> = prefix.iter().chain(case.args).copied().collect();
        let out = socklab(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(case.code),
            "socklab {args:?}: exit status\n{stderr}"
        );
        assert!(stdout.is_empty(), "socklab {args:?}: printed {stdout:?}");
        let style = if case.code == 1 {
            "socklab: error: "
        } else {
            "error: "
        };
        assert!(
            stderr.starts_with(style) && stderr.matches(style).count() == 1,
            "socklab {args:?}: one message starting {style:?}:\n{stderr}"
        );
        for text in case.says {
            assert!(
                stderr.contains(text),
                "socklab {args:?}: no {text:?} in\n{stderr}"
            );
        }
        for text in case.never.iter().chain(&NEVER) {
            assert!(
                !stderr.contains(text),
                "socklab {args:?}: {text:?} in\n{stderr}"
            );
        }
    }
}

#[test]
fn bad_input_gets_one_clear_message_and_a_nonzero_exit() {
    let _area = socklab_tests::area::enter(module_path!());
    check(
        &[
            Case {
                args: &["netstat", "127.0.0.1:1"],
                code: 1,
                says: &[
                    "127.0.0.1:1 refused the connection (RST): nothing listens on port 1",
                    "serves lab 6666, echo 7",
                    "`socklab run` forwards device port P to 10000 + P (lab 16666",
                ],
                never: &["is the device running"],
            },
            Case {
                args: &["connect", "127.0.0.1:1"],
                code: 1,
                says: &["refused the connection (RST)", "lab 6666"],
                never: &["is the device running"],
            },
            Case {
                args: &["tap", "down", "--name", "nosuch"],
                code: 1,
                says: &["there is no TAP nosuch: nothing to delete", "ip link show"],
                never: &["tap up"],
            },
            Case {
                args: &["--netns", "nosuch-ns", "tap", "down"],
                code: 1,
                says: &["network namespace \"nosuch-ns\" does not exist"],
                never: &["tap up"],
            },
            Case {
                args: &["ping", "127.0.0.1"],
                code: 1,
                says: &["ping needs the TAP: 127.0.0.1 is this machine"],
                never: &[],
            },
            Case {
                args: &["ping", "::1"],
                code: 1,
                says: &["ping needs the TAP"],
                never: &[],
            },
            Case {
                args: &["netstat", "192.168.69.1", "--timeout", "nan"],
                code: 2,
                says: &["greater than 0 and at most 3600"],
                never: &[],
            },
            Case {
                args: &["who", "192.168.69.1", "--timeout", "0"],
                code: 2,
                says: &["greater than 0"],
                never: &[],
            },
            Case {
                args: &["ping", "192.168.69.1", "--interval", "inf"],
                code: 2,
                says: &["at most 60"],
                never: &[],
            },
            Case {
                args: &["ping", "192.168.69.1", "--count", "0"],
                code: 2,
                says: &["--count"],
                never: &[],
            },
            Case {
                args: &["tap", "up", "--timeout", "3"],
                code: 2,
                says: &["unexpected argument '--timeout'"],
                never: &[],
            },
        ],
        &[],
    );
}

#[test]
fn each_help_lists_its_own_options_and_an_example() {
    let _area = socklab_tests::area::enter(module_path!());
    for sub in [
        "demo", "run", "connect", "netstat", "info", "who", "ping", "tap", "bench",
    ] {
        let out = socklab(&[sub, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help failed");
        assert!(
            help.contains("Examples:"),
            "`{sub} --help`: no example:\n{help}"
        );
        assert!(
            help.contains("--netns") && help.contains("`tap` and `run` put the TAP"),
            "`{sub} --help`: --netns does not say what it does for tap and run:\n{help}"
        );
        // `tap` waits for no device: no --timeout.
        assert_eq!(
            help.contains("--timeout"),
            sub != "tap",
            "`{sub} --help` and --timeout:\n{help}"
        );
    }
}

/// A raw socket needs CAP_NET_RAW: without it (dropped from the bounding
/// set, so even root lacks it), one message, nothing sent or counted.
#[test]
fn ping_without_raw_sockets_says_so_once_and_counts_nothing() {
    let _area = socklab_tests::area::enter(module_path!());
    let out = Command::new("setpriv")
        .args(["--bounding-set=-net_raw"])
        .arg(socklab_bin())
        .args(["ping", "192.168.69.1", "--count", "3"])
        .output()
        .expect("run setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.matches("needs root").count(),
        1,
        "one message:\n{stderr}"
    );
    assert!(
        stderr.starts_with("socklab: error: ping needs a raw socket"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing counted as sent: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Waits (bounded) for a child; kills it and fails if it does not end.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

#[test]
fn against_a_device() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    let ns = dut
        .host_net()
        .netns_name()
        .expect("the TAP device lives in a namespace")
        .to_owned();
    let ip = dut.addr(0).ip().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--netns", ns.as_str()];
        all.extend_from_slice(args);
        socklab(&all)
    };

    // netstat: the pool's idle sockets on one row, with what they are.
    let out = run(&["netstat", &ip]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let lab_rows: Vec<&str> = table.lines().filter(|l| l.contains("*:6666")).collect();
    assert_eq!(
        lab_rows.len(),
        1,
        "one row for the idle lab sockets:\n{table}"
    );
    let folded: usize = lab_rows[0]
        .split("x ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `x N:` count on {:?}", lab_rows[0]));
    assert!(
        lab_rows[0].ends_with(" free slots, 16 free backlog places")
            && lab_rows[0].contains(": 64 free slots"),
        "{table}"
    );
    // The query comes in on the management port: it takes no lab slot.
    assert_eq!(folded, 64 + 16, "{table}");
    assert_eq!(
        table.matches("<- this query (management socket ").count(),
        1,
        "the query's own connection is marked:\n{table}"
    );
    assert!(
        table.contains(
            "lab (port 6666): 64 slots, 0 in use, 64 free; backlog 16 places, 0 waiting, 16 free"
        ),
        "{table}"
    );
    let out = run(&["netstat", &ip, "--all"]);
    let every = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(every.matches("*:6666").count(), folded, "{every}");
    assert!(every.contains("<- this query"), "{every}");

    // Messages for the wrong port.
    check(
        &[
            Case {
                args: &["netstat", "192.168.69.1:7", "--timeout", "1"],
                code: 1,
                says: &[
                    "port 7 is the device's echo service, not the lab",
                    "the lab service is on port 6666",
                ],
                never: &[],
            },
            Case {
                args: &["info", "192.168.69.1:19"],
                code: 1,
                says: &["port 19 is the device's chargen service, not the lab"],
                never: &[],
            },
            Case {
                args: &["connect", "192.168.69.1:6667"],
                code: 1,
                says: &[
                    "192.168.69.1:6667 refused the connection (RST): nothing listens on port 6667",
                    "serves lab 6666, echo 7, discard 9, chargen 19",
                ],
                never: &["is the device running", "forwards"],
            },
        ],
        &["--netns", &ns],
    );
    assert_eq!(
        ip, "192.168.69.1",
        "the cases above use the default address"
    );

    // ping: like ping(8).
    let out = run(&["ping", &ip, "--count", "3", "--interval", "0.05"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches(&format!("64 bytes from {ip}: icmp_seq="))
            .count(),
        3,
        "{text}"
    );
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{text}"
    );
    assert!(text.contains("rtt min/avg/max/mdev = "), "{text}");

    // A closed stdout: `socklab netstat | head -0` ends quietly, status 0.
    let mut child = Command::new(socklab_bin())
        .args(["--netns", &ns, "netstat", &ip, "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn socklab netstat");
    drop(child.stdout.take());
    let status = wait_bounded(&mut child, Duration::from_secs(10), "netstat");
    let stderr = stderr_of(&mut child);
    assert!(
        status.success(),
        "netstat into a closed pipe: {status}\n{stderr}"
    );
    assert!(
        stderr.is_empty(),
        "netstat into a closed pipe said:\n{stderr}"
    );

    // `socklab connect ... | head -1`: the first line read, then the reader
    // goes; the next line from the device ends the command quietly.
    let mut child = Command::new(socklab_bin())
        .args(["--netns", &ns, "connect", &ip])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn socklab connect");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("HELLO socklab/"), "{first:?}");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ECHO one\nECHO two\n").unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(10), "connect");
    drop(stdin);
    let stderr = stderr_of(&mut child);
    assert!(
        status.success(),
        "connect into a closed pipe: {status}\n{stderr}"
    );
    for text in NEVER {
        assert!(!stderr.contains(text), "connect said:\n{stderr}");
    }
    dut.assert_running();
}

/// `socklab run tap 2>&1 | head`: the banner read, the reader gone; the
/// device goes on, and Ctrl-C still stops it and removes its namespace, with
/// the usual status.
#[test]
fn run_with_its_output_closed_still_stops_cleanly() {
    let _area = socklab_tests::area::enter(module_path!());
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut child = Command::new(socklab_bin())
        .args(["run", "tap", "--no-forward"])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("spawn socklab run tap");
    let mut banner = String::new();
    let mut lines = BufReader::new(reader);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ns = None;
    while Instant::now() < deadline {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        banner.push_str(&line);
        if let Some(rest) = line.split("network namespace ").nth(1) {
            ns = rest.split([',', ' ']).next().map(str::to_owned);
        }
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    drop(lines);
    let ns = ns.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no namespace in the banner:\n{banner}")
    });
    // The device logs each client: those lines now go to a closed pipe.
    for _ in 0..3 {
        let out = socklab(&["--netns", &ns, "info", "192.168.69.1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let status = wait_bounded(&mut child, Duration::from_secs(20), "socklab run tap");
    assert!(status.success(), "run tap after Ctrl-C: {status}\n{banner}");
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&ns),
        "namespace {ns} left behind"
    );
}

/// `socklab connect` in a terminal (a pty from Python's `pty` module): the
/// user types `ECHO hel`, another client's `SAY` arrives, the user types
/// `lo` and Enter. Typed one key at a time, as a person types.
const PTY_SESSION: &str = r#"
import os, pty, select, signal, subprocess, sys, time
bin, ns, ip = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.execv(bin, [bin, "--netns", ns, "connect", ip])
out = b""
def read_for(secs, until=None):
    global out
    end = time.time() + secs
    while time.time() < end and not (until and until in out):
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
def typed(text):
    for ch in text:
        os.write(fd, bytes([ch]))
        read_for(0.02)
read_for(10, b"HELLO socklab/")
typed(b"ECHO hel")
read_for(0.3)
subprocess.run([bin, "--netns", ns, "connect", ip], input=b"SAY interrupting\nQUIT\n",
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
read_for(5, b"interrupting")
read_for(0.3)
typed(b"lo\r")
read_for(5, b"hello\r\n")
os.write(fd, b"\x04")
code = None
end = time.time() + 10
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
        break
    read_for(0.05)
    # The pty reads nothing once the child has closed it, so read_for may
    # return at once: wait here, or ten seconds pass as a few loops.
    time.sleep(0.02)
if code is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(3 if code is None else code)
"#;

/// The terminal's lines as a person would read them: escape sequences
/// dropped, and of each line what follows its last carriage return.
fn screen_lines(raw: &str) -> Vec<String> {
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters, then one final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() || c == '~' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text.split('\n')
        .map(|line| {
            let line = line.trim_end_matches('\r');
            line.rsplit('\r').next().unwrap_or(line).to_owned()
        })
        .collect()
}

#[test]
fn connect_prints_incoming_lines_above_the_typed_line() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start(BoardKind::Tap);
    let ns = dut.host_net().netns_name().expect("a namespace").to_owned();
    let ip = dut.addr(0).ip().to_string();
    let out = Command::new("python3")
        .args(["-c", PTY_SESSION])
        .arg(socklab_bin())
        .args([&ns, &ip])
        .output()
        .expect("run python3");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {raw:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = screen_lines(&raw);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FROM ") && l.ends_with(" interrupting")),
        "the FROM line is spliced into the typed text: {lines:#?}\n{raw:?}"
    );
    assert!(
        !raw.contains("helFROM"),
        "the FROM line is spliced into the typed text: {raw:?}"
    );
    assert!(
        lines.iter().any(|l| l == "hello"),
        "the typed line did not reach the device intact: {lines:#?}\n{raw:?}"
    );
    dut.assert_running();
}
