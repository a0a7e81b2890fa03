//! Bad input to the real device binaries: a table of command lines for
//! `socklab-tap` and `socklab run tap|qemu|riscv`, each with the message
//! fragment it must print and the exit status it must end with (never a
//! panic's 101, never a device that comes up); and stopping `socklab run
//! tap|riscv` with Ctrl-C, which must end the connected clients at once.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::config::{self, TIMEOUT_OPTIONS};
use socklab_app::protocol::LAB_PORT;
use socklab_host::launch::free_port_base;
use socklab_host::netns::HostNet;
use socklab_tests::built_binary;

/// How long one bad command line may take: most exit before opening anything,
/// `run tap` after setting up and removing a namespace.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Runs `program args`, bounded by [`CASE_LIMIT`].
fn run(program: &Path, args: &[String]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = Instant::now() + CASE_LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} still runs after {CASE_LIMIT:?}",
                program.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// One bad command line: its arguments, a fragment its message must hold, its
/// exit status.
struct Case {
    args: Vec<String>,
    says: String,
    status: i32,
}

fn case(args: &[&str], says: &str, status: i32) -> Case {
    Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        says: says.to_owned(),
        status,
    }
}

/// Checks every case of `cases` against `program`, all at once (each case
/// ends by itself), and reports every failure together.
fn check_table(program: &Path, cases: Vec<Case>) {
    let handles: Vec<_> = cases
        .into_iter()
        .map(|case| {
            let program = program.to_owned();
            thread::spawn(move || {
                let out = run(&program, &case.args);
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let ok = out.status.code() == Some(case.status)
                    && text.contains(&case.says)
                    && !text.contains("panicked");
                (!ok).then(|| {
                    format!(
                        "{} {:?}: wanted exit {} and `{}`, got {}:\n{text}",
                        program.display(),
                        case.args,
                        case.status,
                        case.says,
                        out.status
                    )
                })
            })
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().expect("case thread"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// clap's status for a value it refuses.
const USAGE: i32 = 2;
/// A device or tool that refuses what it was asked to do.
const FAILURE: i32 = 1;

/// `--NAME VALUE` for every timeout with values out of its range (`--NAME=VALUE`
/// if `joined`: clap takes a separate `-1` for an option).
fn timeout_cases(
    joined: bool,
    fragment: impl Fn(&config::TimeoutOption) -> String,
    status: i32,
) -> Vec<Case> {
    let mut cases = Vec::new();
    for option in TIMEOUT_OPTIONS {
        for value in [
            "18446744073709551615".to_owned(),
            (option.max_ms + 1).to_string(),
            "0".to_owned(),
            "-1".to_owned(),
        ] {
            let flag = format!("--{}", option.name);
            cases.push(Case {
                args: if joined {
                    vec![format!("{flag}={value}")]
                } else {
                    vec![flag, value]
                },
                says: fragment(option),
                status,
            });
        }
    }
    cases
}

#[test]
fn socklab_tap_refuses_bad_options_with_the_rule() {
    let _area = socklab_tests::area::enter(module_path!());
    let tap = built_binary("socklab-tap");
    let mut cases = timeout_cases(
        true,
        |t| format!("is not a timeout from {} to {} ms", t.min_ms, t.max_ms),
        USAGE,
    );
    cases.extend([
        case(&["--ip", "224.0.0.1/24"], "is a multicast address", USAGE),
        case(
            &["--ip", "255.255.255.255/24"],
            "is the broadcast address",
            USAGE,
        ),
        case(&["--ip", "0.0.0.0/24"], "unspecified address", USAGE),
        case(&["--ip", "127.0.0.1/8"], "loopback", USAGE),
        case(&["--ip", "192.168.69.255/24"], "subnet's broadcast", USAGE),
        case(&["--ip", "192.168.69.0/24"], "subnet's network", USAGE),
        case(&["--ip", "192.168.69.1/0"], "prefix /0", USAGE),
        case(&["--ip", "192.168.69.1/33"], "prefix of /1 to /32", USAGE),
        case(&["--ip6", "ff02::1/64"], "is a multicast address", USAGE),
        case(&["--ip6", "::/64"], "unspecified address ::", USAGE),
        case(&["--ip6", "::1/128"], "loopback address ::1", USAGE),
        case(&["--ip6", "fdaa::1/0"], "prefix /0", USAGE),
        case(&["--ip6", "fdaa::1/129"], "prefix of /1 to /128", USAGE),
        case(&["--mac", "00:00:00:00:00:00"], "is all zero", USAGE),
        case(&["--mac", "ff:ff:ff:ff:ff:ff"], "broadcast", USAGE),
        case(&["--mac", "01:00:5e:00:00:01"], "multicast", USAGE),
        case(&["--gateway", "10.9.9.9"], "device's IPv4 subnet", USAGE),
        case(&["--gateway6", "ff02::2"], "must be a unicast IPv6", USAGE),
        case(
            &["--delay-ms", "18446744073709551615"],
            "not in 0..=60000",
            USAGE,
        ),
        case(
            &["--tap", "doesnotexist"],
            "TAP `doesnotexist` does not exist",
            FAILURE,
        ),
        case(
            &["--tap", "doesnotexist"],
            "socklab tap up --name doesnotexist",
            FAILURE,
        ),
        case(
            &["--tap", "much-too-long-name"],
            "not an interface name",
            FAILURE,
        ),
    ]);
    check_table(&tap, cases);
    let left = Command::new("ip")
        .args(["link", "show", "doesnotexist"])
        .output()
        .expect("run ip");
    assert!(
        !left.status.success(),
        "socklab-tap --tap doesnotexist left a TAP behind"
    );
}

#[test]
fn socklab_run_refuses_bad_device_options_before_starting_a_device() {
    let _area = socklab_tests::area::enter(module_path!());
    let socklab = built_binary("socklab");
    let mut cases = Vec::new();
    // The QEMU images' boot options go through the image's own parser first:
    // nothing boots.
    for board in ["qemu", "riscv"] {
        for mut c in timeout_cases(
            false,
            |t| format!("cannot take these boot options: option --{}: ", t.name),
            FAILURE,
        ) {
            c.args
                .splice(0..0, ["run".to_owned(), board.to_owned(), "--".to_owned()]);
            cases.push(c);
        }
        cases.push(case(
            &["run", board, "--", "--ip", "10.0.0.1/24"],
            "unknown option `--ip`: the images take",
            FAILURE,
        ));
        cases.push(case(
            &["run", board, "--", "--delay-ms", "99999999"],
            "give 0 to 60000",
            FAILURE,
        ));
    }
    // socklab-tap refuses its own options: `run tap` reports it and removes
    // the namespace it made.
    for (args, says) in [
        (&["--ip", "224.0.0.1/24"][..], "is a multicast address"),
        (&["--ip6", "ff02::1/64"][..], "is a multicast address"),
        (&["--mac", "01:00:5e:00:00:01"][..], "multicast"),
        (
            &["--keep-alive-ms", "18446744073709551615"][..],
            "is not a timeout from",
        ),
    ] {
        let mut full = vec!["run", "tap", "--no-forward", "--"];
        full.extend(args);
        cases.push(case(&full, says, FAILURE));
    }
    check_table(&socklab, cases);
}

/// Reads lines of `socklab run`'s stdout until one holds `marker`.
fn wait_for_line(lines: &mpsc::Receiver<String>, marker: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return line,
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    panic!("no line with `{marker}` within {limit:?}; saw:\n{seen}");
}

/// A connected lab client: reads its `HELLO`, then blocks in a read.
fn hello(mut stream: TcpStream) -> TcpStream {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = stream.read(&mut byte).expect("read HELLO");
        assert_eq!(n, 1, "the device closed before its HELLO");
        line.push(byte[0]);
    }
    assert!(line.starts_with(b"HELLO "), "{line:?}");
    stream
}

/// How soon after Ctrl-C a client must see its connection reset.
const RESET_LIMIT: Duration = Duration::from_secs(2);

/// A `socklab run` in the background: its stdout lines, its stderr when it ends.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: thread::JoinHandle<String>,
    /// The device's network namespace, when it has one.
    netns: Option<String>,
}

impl Running {
    /// Starts `socklab run ARGS` and waits until it says how to stop it.
    fn start(args: &[&str]) -> Running {
        Running::start_with_path(args, None)
    }

    /// [`Running::start`] with `PATH` set to `path` when given.
    fn start_with_path(args: &[&str], path: Option<&std::ffi::OsStr>) -> Running {
        let mut command = Command::new(built_binary("socklab"));
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let mut child = command
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start socklab run");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let log = thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let running = wait_for_line(&lines, " is running ", Duration::from_secs(120));
        let netns = running
            .split_whitespace()
            .skip_while(|w| *w != "namespace")
            .nth(1)
            .map(|ns| ns.trim_end_matches(',').to_owned());
        wait_for_line(&lines, "press Ctrl-C", Duration::from_secs(10));
        Running {
            child,
            lines,
            log,
            netns,
        }
    }

    /// Ctrl-C: SIGINT, then every client's blocked read must fail with `want`
    /// within [`RESET_LIMIT`], and the run must end with success; returns its
    /// log.
    fn interrupt(mut self, clients: Vec<(&'static str, TcpStream)>, want: ErrorKind) -> String {
        let stopped = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let results: Vec<_> = clients
            .into_iter()
            .map(|(name, mut client)| {
                thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    let result = client.read(&mut buf);
                    (name, result.map_err(|e| e.kind()), stopped.elapsed())
                })
            })
            .collect();
        for handle in results {
            let (name, result, after) = handle.join().expect("client");
            eprintln!("client {name}: {result:?} {after:.2?} after SIGINT");
            assert_eq!(
                result,
                Err(want),
                "the client {name} got {result:?} after {after:?}"
            );
            assert!(
                after < RESET_LIMIT,
                "the client {name} saw the end only after {after:?}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "socklab run did not stop");
            thread::sleep(Duration::from_millis(50));
        };
        drop(self.lines);
        let log = self.log.join().expect("log");
        assert!(status.success(), "socklab run ended {status}:\n{log}");
        if let Some(ns) = &self.netns {
            assert!(
                !Path::new("/var/run/netns").join(ns).exists(),
                "namespace {ns} left behind"
            );
        }
        log
    }
}

#[test]
fn stopping_socklab_run_tap_resets_every_client_at_once() {
    let _area = socklab_tests::area::enter(module_path!());
    let base = free_port_base().expect("a free port base on 127.0.0.1");
    let run = Running::start(&["tap", "--port-base", &base.to_string()]);
    let netns = run.netns.clone().expect("a private namespace");
    // One client inside the namespace, one through the forwarder on 127.0.0.1.
    let device = SocketAddr::new(config::DEFAULT_IPV4.address().into(), LAB_PORT);
    let inside = HostNet::from_option(Some(&netns))
        .connect(device, Duration::from_secs(5))
        .expect("connect inside the namespace");
    let forwarded = SocketAddr::from(([127, 0, 0, 1], base + LAB_PORT));
    let outside = TcpStream::connect_timeout(&forwarded, Duration::from_secs(5))
        .expect("connect through the forwarder");
    let log = run.interrupt(
        vec![
            ("in the namespace", hello(inside)),
            ("forwarded", hello(outside)),
        ],
        ErrorKind::ConnectionReset,
    );
    assert!(
        log.contains("resetting every connection") && log.contains("reset 2 connections"),
        "{log}"
    );
    assert!(log.contains("removed"), "{log}");
}

#[test]
fn stopping_socklab_run_qemu_ends_every_client_at_once() {
    let _area = socklab_tests::area::enter(module_path!());
    // User networking: the client gets an RST from the host's side of QEMU's
    // forwarding.
    let base = free_port_base().expect("a free port base on 127.0.0.1");
    let run = Running::start(&["riscv", "--port-base", &base.to_string()]);
    let forwarded = SocketAddr::from(([127, 0, 0, 1], base + LAB_PORT));
    let client = TcpStream::connect_timeout(&forwarded, Duration::from_secs(5))
        .expect("connect through QEMU's forwarding");
    run.interrupt(
        vec![("through user networking", hello(client))],
        ErrorKind::ConnectionReset,
    );
    // On a TAP: the client's socket in the namespace is aborted.
    let run = Running::start(&["riscv", "--net", "tap"]);
    let netns = run.netns.clone().expect("a private namespace");
    let device = SocketAddr::new(config::DEFAULT_IPV4.address().into(), LAB_PORT);
    let client = HostNet::from_option(Some(&netns))
        .connect(device, Duration::from_secs(5))
        .expect("connect inside the namespace");
    run.interrupt(
        vec![("on the TAP", hello(client))],
        ErrorKind::ConnectionAborted,
    );
}

/// `socklab run qemu` boots the image that is already built and never runs a
/// build: `cargo` and `rustup` on its `PATH` are stand-ins that leave a mark
/// and fail, so any build attempt would both fail the start and leave the mark.
#[test]
fn socklab_run_qemu_boots_the_built_image_without_building() {
    let _area = socklab_tests::area::enter(module_path!());
    let bin = tempfile::tempdir().expect("a temporary directory");
    let mark = bin.path().join("a build ran");
    for tool in ["cargo", "rustup"] {
        let script = bin.path().join(tool);
        std::fs::write(
            &script,
            format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
        )
        .expect("write a stand-in");
        let mut permissions = std::fs::metadata(&script).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&script, permissions).expect("chmod");
    }
    let mut path = std::ffi::OsString::from(bin.path());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let base = free_port_base().expect("a free port base on 127.0.0.1");
    let run = Running::start_with_path(&["qemu", "--port-base", &base.to_string()], Some(&path));
    let forwarded = SocketAddr::from(([127, 0, 0, 1], base + LAB_PORT));
    let client = TcpStream::connect_timeout(&forwarded, Duration::from_secs(5))
        .expect("connect through QEMU's forwarding");
    run.interrupt(
        vec![("through user networking", hello(client))],
        ErrorKind::ConnectionReset,
    );
    assert!(
        !mark.exists(),
        "socklab run qemu ran a build of an image that was already built"
    );
}

#[test]
fn docs_options_lists_every_timeout_with_its_default_and_range() {
    let _area = socklab_tests::area::enter(module_path!());
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/options.md");
    let doc = std::fs::read_to_string(&doc).expect("docs/options.md");
    for option in TIMEOUT_OPTIONS {
        let flag = format!("| `--{}` |", option.name);
        let row = doc
            .lines()
            .find(|line| line.starts_with(&flag))
            .unwrap_or_else(|| panic!("docs/options.md has no row for --{}", option.name));
        let want = format!(
            "| {} | {} to {} |",
            option.default_ms, option.min_ms, option.max_ms
        );
        assert!(
            row.contains(&want),
            "docs/options.md row `{row}` lacks `{want}`"
        );
    }
}
