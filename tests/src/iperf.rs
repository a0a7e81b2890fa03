//! The iperf cases: Debian's own `iperf3` and `iperf` (2.x) clients against
//! the device's iperf3 (5201) and iperf2 (5001) servers, in every mode the
//! README lists, with the busy and misbehaving clients, on every board.
//!
//! The clients run in the device's network namespace (TAP boards) or on the
//! host against QEMU's forwarded ports (user networking); every run is
//! bounded by `timeout`. The summary lines each client printed go to stdout
//! (`--nocapture` shows them).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use socklab_app::protocol::{info, iperf3 as msg, IPERF2_PORT, IPERF3_PORT};
use socklab_host::client::LabClient;

use crate::{eventually, BoardKind, Dut};

/// How long a misbehaving iperf3 client may hold a test: the device's
/// `iperf3_timeout_ms` (5 s), the closing that follows it (5 s), and margin.
pub const RECOVERY: Duration = Duration::from_secs(15);

/// A command for `program` aimed at the device: inside its namespace if it
/// has one, bounded by `timeout` (killed 5 s after that if need be).
fn tool(dut: &Dut, limit: Duration, program: &str, args: &[String]) -> Command {
    let mut command = match dut.host_net().netns_name() {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "timeout"]);
            c
        }
        None => Command::new("timeout"),
    };
    command
        .args(["-k", "5", &limit.as_secs().to_string(), program])
        .args(args)
        .stdin(Stdio::null());
    command
}

/// `-c HOST -p PORT` for the device's `port`, over IPv4.
fn target(dut: &Dut, port: u16) -> Vec<String> {
    let addr = dut.addr(port);
    vec![
        "-c".into(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
    ]
}

fn words(args: &str) -> Vec<String> {
    args.split_whitespace().map(String::from).collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `iperf3 -c DEVICE <args>` and returns its output.
pub fn iperf3(dut: &Dut, args: &str, limit: Duration) -> Output {
    let mut all = target(dut, IPERF3_PORT);
    all.extend(words(args));
    run(dut, "iperf3", &all, limit)
}

/// Runs `iperf -c DEVICE <args>` and returns its output.
pub fn iperf2(dut: &Dut, args: &str, limit: Duration) -> Output {
    let mut all = target(dut, IPERF2_PORT);
    all.extend(words(args));
    run(dut, "iperf", &all, limit)
}

fn run(dut: &Dut, program: &str, args: &[String], limit: Duration) -> Output {
    tool(dut, limit, program, args)
        .output()
        .unwrap_or_else(|e| panic!("run {program} (scripts/setup installs it): {e}"))
}

/// Runs iperf3 with `args`, asserts a clean finish, prints and returns its
/// summary lines (`sender` / `receiver`).
pub fn iperf3_ok(dut: &Dut, args: &str) -> Vec<String> {
    let output = iperf3(dut, args, Duration::from_secs(60));
    let all = text(&output);
    assert!(
        output.status.success() && all.contains("iperf Done."),
        "iperf3 {args}: {}\n{all}",
        output.status
    );
    let summary: Vec<String> = all
        .lines()
        .filter(|l| l.ends_with("sender") || l.ends_with("receiver"))
        .map(|l| l.trim_end().to_owned())
        .collect();
    assert!(
        summary.iter().any(|l| l.ends_with("receiver")),
        "iperf3 {args}: no summary\n{all}"
    );
    // With several streams the totals must move; one stream alone may not on
    // mps2-an385, whose LAN9118 drops what overflows its receive FIFO (the
    // README says so): a stream that lost its first segments can sit out a
    // 2 s test in retransmission back-off.
    let sums: Vec<&String> = summary.iter().filter(|l| l.contains("[SUM]")).collect();
    let checked: Vec<&String> = if sums.is_empty() {
        summary.iter().collect()
    } else {
        sums
    };
    for line in checked {
        assert!(
            !line.contains(" 0.00 Bytes"),
            "iperf3 {args}: nothing moved: {line}\n{all}"
        );
    }
    println!("{:?} iperf3 -c DEVICE {args}", dut.board());
    for line in &summary {
        println!("  {line}");
    }
    summary
}

fn info_value(lab: &mut LabClient, key: &str) -> u64 {
    let info = lab.info().expect("INFO answered");
    info.parse(key)
        .unwrap_or_else(|| panic!("INFO has no numeric `{key}`: {:?}", info.entries))
}

/// Waits until every socket on `port` listens again (there are `expected`);
/// panics with the socket table if that takes longer than `limit`.
pub fn assert_all_listening(dut: &Dut, port: u16, expected: usize, limit: Duration) {
    let mut lab = dut.lab_client().expect("lab client gets HELLO");
    let mut last = Vec::new();
    let done = eventually(limit, || {
        last = lab.netstat().expect("NETSTAT answered");
        let listening = last.iter().filter(|r| r.is_listening_on(port)).count();
        let on_port = last.iter().filter(|r| r.local.port() == Some(port)).count();
        (listening == expected && on_port == expected).then_some(())
    });
    assert!(
        done.is_some(),
        "not every socket on {port} listens again after {limit:?}: {last:#?}"
    );
}

/// Sizes of the device's iperf servers from `INFO`: (iperf3 sockets, iperf3
/// max streams, iperf2 sockets).
pub fn iperf_sizes(dut: &Dut) -> (usize, usize, usize) {
    let mut lab = dut.lab_client().expect("lab client gets HELLO");
    (
        info_value(&mut lab, info::IPERF3_SOCKETS) as usize,
        info_value(&mut lab, info::IPERF3_MAX_STREAMS) as usize,
        info_value(&mut lab, info::IPERF2_SOCKETS) as usize,
    )
}

/// Every TCP mode of the stock iperf3 client completes with its normal
/// summary: `-c`, `-R`, `--bidir`, `-P 4`, `-n`, `-k` with `-l`, `-O`, `-w`,
/// `--json`, and `-6` where the device has its own IPv6 address.
pub fn iperf3_modes(dut: &Dut) {
    let (sockets, max_streams, _) = iperf_sizes(dut);
    assert!(
        max_streams >= 4,
        "the board must take -P 4 (has {max_streams})"
    );
    iperf3_ok(dut, "-t 2");
    iperf3_ok(dut, "-t 2 -R");
    let bidir = iperf3_ok(dut, "-t 2 --bidir");
    assert!(
        bidir.iter().any(|l| l.contains("[TX-C]")) && bidir.iter().any(|l| l.contains("[RX-C]"))
    );
    let p4 = iperf3_ok(dut, "-t 2 -P 4");
    assert!(p4.iter().any(|l| l.starts_with("[SUM]")), "{p4:#?}");
    iperf3_ok(dut, "-t 2 -P 4 -R");
    iperf3_ok(dut, "-n 4M");
    iperf3_ok(dut, "-R -n 4M -l 1K");
    iperf3_ok(dut, "-k 200 -l 16K");
    iperf3_ok(dut, "-t 2 -O 1");
    iperf3_ok(dut, "-t 2 -w 64K");

    // --json: the device's own count comes back as the receiver's bytes.
    let output = iperf3(dut, "-n 2M --json", Duration::from_secs(60));
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("iperf3 --json prints JSON");
    let sent = json["end"]["sum_sent"]["bytes"].as_u64().expect("sum_sent");
    let received = json["end"]["sum_received"]["bytes"]
        .as_u64()
        .expect("sum_received");
    assert!(sent >= 2 << 20, "{sent}");
    assert!(
        received > 0 && received <= sent,
        "the device counted {received} of {sent} bytes"
    );
    assert_eq!(json["end"]["cpu_utilization_percent"]["remote_total"], 0.0);

    if let Some(v6) = dut.addr6(IPERF3_PORT) {
        let output = run(
            dut,
            "iperf3",
            &words(&format!("-6 -c {} -p {} -t 1", v6.ip(), v6.port())),
            Duration::from_secs(30),
        );
        assert!(
            output.status.success() && text(&output).contains("iperf Done."),
            "{}",
            text(&output)
        );
    }
    assert_all_listening(dut, IPERF3_PORT, sockets, RECOVERY);
}

/// Starts an iperf3 client in the background.
fn spawn_iperf3(dut: &Dut, args: &str) -> Child {
    let mut all = target(dut, IPERF3_PORT);
    all.extend(words(args));
    tool(dut, Duration::from_secs(60), "iperf3", &all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iperf3")
}

/// SIGKILLs the children of `pid` (the iperf3 under `timeout`).
fn kill_children(pid: u32) {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("the client's children");
    for child in children.split_whitespace() {
        let child: i32 = child.parse().expect("a pid");
        // A pid this test started (through `timeout`); gone already is fine.
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
}

/// Reads exactly `n` bytes (or what came before EOF or the timeout).
fn read_some(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match stream.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out.truncate(got);
    out
}

/// A control connection of our own: cookie sent, `PARAM_EXCHANGE` read.
fn raw_control(dut: &Dut, cookie: &[u8; msg::COOKIE_LEN]) -> TcpStream {
    let mut stream = dut.connect(IPERF3_PORT).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(cookie).unwrap();
    assert_eq!(read_some(&mut stream, 1), [msg::PARAM_EXCHANGE]);
    stream
}

fn cookie(c: u8) -> [u8; msg::COOKIE_LEN] {
    let mut cookie = [c; msg::COOKIE_LEN];
    cookie[msg::COOKIE_LEN - 1] = 0;
    cookie
}

/// The server error iperf3 prints: `SERVER_ERROR`, iperf3's error, errno.
fn server_error(ie: u32, errno: u32) -> Vec<u8> {
    let mut out = vec![msg::SERVER_ERROR];
    out.extend(ie.to_be_bytes());
    out.extend(errno.to_be_bytes());
    out
}

/// One test at a time, and clients that misbehave: a second client is told
/// the server is busy; UDP, too many streams, an oversized or malformed
/// parameter object get iperf3's own error messages; a wrong cookie during
/// stream setup is turned away; a stalled client and a killed one end their
/// test within the timeouts; afterwards every socket listens and a normal
/// test runs.
pub fn iperf3_busy_and_bad_clients(dut: &Dut) {
    let (sockets, max_streams, _) = iperf_sizes(dut);

    // Busy: a test runs, a second client is turned away with iperf3's words.
    let first = spawn_iperf3(dut, "-t 4");
    std::thread::sleep(Duration::from_millis(1500));
    let second = iperf3(dut, "-t 1", Duration::from_secs(30));
    let said = text(&second);
    assert!(!second.status.success(), "{said}");
    assert!(said.contains("the server is busy running a test"), "{said}");
    println!("{:?} second client: {}", dut.board(), said.trim());
    let first = first.wait_with_output().expect("first iperf3");
    assert!(first.status.success(), "{}", text(&first));

    // UDP is refused with iperf3's own message.
    let udp = iperf3(dut, "-u -t 1", Duration::from_secs(30));
    let said = text(&udp);
    assert!(!udp.status.success(), "{said}");
    assert!(said.contains("not implemented yet"), "{said}");
    println!(
        "{:?} iperf3 -u: {}",
        dut.board(),
        said.lines().last().unwrap_or("")
    );

    // More streams than sockets.
    let many = iperf3(
        dut,
        &format!("-t 1 -P {}", max_streams + 1),
        Duration::from_secs(30),
    );
    let said = text(&many);
    assert!(!many.status.success(), "{said}");
    assert!(said.contains("unable to start stream listener"), "{said}");

    // An oversized parameter object, then a malformed one.
    let mut control = raw_control(dut, &cookie(b'a'));
    control.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert_eq!(
        read_some(&mut control, 9),
        server_error(msg::IE_RECV_PARAMS, msg::EMSGSIZE)
    );
    assert!(
        read_some(&mut control, 1).is_empty(),
        "closed after the error"
    );
    let mut control = raw_control(dut, &cookie(b'b'));
    let junk = b"{\"tcp\":true,\"parallel\":";
    control
        .write_all(&(junk.len() as u32).to_be_bytes())
        .unwrap();
    control.write_all(junk).unwrap();
    assert_eq!(
        read_some(&mut control, 9),
        server_error(msg::IE_RECV_PARAMS, msg::EINVAL)
    );

    // Binary garbage instead of a cookie and parameters.
    let mut garbage = dut.connect(IPERF3_PORT).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let noise: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _ = garbage.write_all(&noise);
    let answer = read_some(&mut garbage, 64);
    assert!(
        answer.first() == Some(&msg::PARAM_EXCHANGE) && answer.get(1) == Some(&msg::SERVER_ERROR),
        "{answer:?}"
    );

    // A wrong cookie while the test waits for its streams.
    let mut control = raw_control(dut, &cookie(b'c'));
    let params = br#"{"tcp":true,"parallel":1,"time":1,"omit":0,"len":131072}"#;
    control
        .write_all(&(params.len() as u32).to_be_bytes())
        .unwrap();
    control.write_all(params).unwrap();
    assert_eq!(read_some(&mut control, 1), [msg::CREATE_STREAMS]);
    let mut intruder = dut.connect(IPERF3_PORT).unwrap();
    intruder
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    intruder.write_all(&cookie(b'd')).unwrap();
    assert_eq!(
        read_some(&mut intruder, 2),
        [msg::ACCESS_DENIED],
        "busy, then closed"
    );

    // That control connection now stalls: the device gives up on it.
    let started = Instant::now();
    let rest = read_some(&mut control, 1);
    let waited = started.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        waited < Duration::from_secs(10),
        "a stalled test held the server {waited:?}"
    );
    println!("{:?} stalled test ended after {waited:?}", dut.board());

    // Half a cookie, then silence.
    let mut half = dut.connect(IPERF3_PORT).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    half.write_all(&cookie(b'e')[..10]).unwrap();
    let started = Instant::now();
    assert!(read_some(&mut half, 1).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A client killed mid-test (SIGKILL: no goodbye on the control connection).
    let mut victim = spawn_iperf3(dut, "-t 20 -P 2");
    std::thread::sleep(Duration::from_millis(2000));
    kill_children(victim.id());
    let _ = victim.wait();

    assert_all_listening(dut, IPERF3_PORT, sockets, RECOVERY);
    iperf3_ok(dut, "-t 1");
    let mut lab = dut.lab_client().expect("lab client");
    assert!(info_value(&mut lab, info::IPERF3_BUSY) >= 2);
    assert!(info_value(&mut lab, info::IPERF3_FAILED) >= 5);
}

/// 50 iperf3 tests back to back, each complete; then every socket listens.
pub fn fifty_iperf3_tests_back_to_back(dut: &Dut, bytes: &str) {
    let (sockets, _, _) = iperf_sizes(dut);
    let started = Instant::now();
    for i in 0..50 {
        let output = iperf3(dut, &format!("-n {bytes}"), Duration::from_secs(30));
        assert!(
            output.status.success() && text(&output).contains("iperf Done."),
            "test {i}: {}",
            text(&output)
        );
    }
    println!(
        "{:?}: 50 iperf3 tests of {bytes} in {:?}",
        dut.board(),
        started.elapsed()
    );
    assert_all_listening(dut, IPERF3_PORT, sockets, RECOVERY);
    let mut lab = dut.lab_client().expect("lab client");
    assert!(info_value(&mut lab, info::IPERF3_TESTS) >= 50);
}

/// The iperf 2 client's modes: its final report appears, with the bytes it
/// sent; `-r` and `-d` (connect back) are refused and the client says so.
pub fn iperf2_modes(dut: &Dut) {
    let (_, _, sockets) = iperf_sizes(dut);
    for args in ["-t 2", "-n 4M", "-t 2 -P 2", "-t 2 -l 1K"] {
        let output = iperf2(dut, args, Duration::from_secs(60));
        let all = text(&output);
        assert!(output.status.success(), "iperf {args}: {all}");
        let report: Vec<&str> = all
            .lines()
            .filter(|l| l.contains(" sec ") && l.contains("Bytes"))
            .collect();
        assert!(!report.is_empty(), "iperf {args}: no report\n{all}");
        println!("{:?} iperf -c DEVICE {args}", dut.board());
        for line in report {
            assert!(!line.contains(" 0.00 Bytes"), "{line}");
            println!("  {line}");
        }
    }
    for args in ["-t 1 -r", "-t 1 -d"] {
        let output = iperf2(dut, args, Duration::from_secs(60));
        let all = text(&output);
        if dut.behind_nat() {
            // QEMU's user networking accepted the connection itself and just
            // closes it when the device resets: the client ends, that is all.
            assert!(
                !matches!(output.status.code(), Some(124 | 137)),
                "iperf {args} hung: {all}"
            );
        } else {
            assert!(
                all.contains("expected reverse connect did not occur"),
                "iperf {args}: {all}"
            );
        }
        println!(
            "{:?} iperf {args}: {}",
            dut.board(),
            all.lines().last().unwrap_or("")
        );
    }
    assert_all_listening(dut, IPERF2_PORT, sockets, RECOVERY);
}

/// The device on one CPU (the last this process may use), the bench and
/// iperf3 on one CPU too (the same one with `share`, else another), all at
/// nice -20, so that neither where the scheduler puts them nor the machine's
/// other work decides the figures; the device's threads get their CPUs back
/// on drop.
struct Quiet {
    /// The clients' CPU.
    cpu: usize,
    _device: socklab_host::bench::pin::PinnedProcess,
}

/// The niceness the measured processes run at.
const QUIET_NICE: &str = "-20";

impl Quiet {
    fn new(dut: &Dut, share: bool) -> Quiet {
        use socklab_host::bench::pin;
        let cpus = pin::allowed_cpus().expect("read the CPU affinity");
        let device_cpu = *cpus.last().expect("a CPU");
        let cpu = if share { device_cpu } else { cpus[0] };
        let pid = dut.pid();
        let device = pin::PinnedProcess::pin(pid, device_cpu)
            .unwrap_or_else(|e| panic!("pin the device (pid {pid}) to CPU {device_cpu}: {e}"));
        let tids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("the device's threads")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        renice(&tids);
        Quiet {
            cpu,
            _device: device,
        }
    }

    /// Moves the calling thread to the CPU and the niceness.
    fn enter_current_thread(&self) {
        socklab_host::bench::pin::pin_current_thread(self.cpu).expect("pin this thread");
        let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let tid = me
            .file_name()
            .and_then(|t| t.to_str())
            .expect("a thread id")
            .to_owned();
        renice(&[tid]);
    }

    /// The command prefix that runs a program the same way.
    fn wrap(&self) -> String {
        format!("nice -n {QUIET_NICE} taskset -c {}", self.cpu)
    }
}

/// Sets threads `tids` to nice [`QUIET_NICE`] (`renice`, from util-linux).
fn renice(tids: &[String]) {
    let output = Command::new("renice")
        .args(["-n", QUIET_NICE, "-p"])
        .args(tids)
        .output()
        .expect("run renice");
    assert!(output.status.success(), "renice: {}", text(&output));
}

/// One iperf3 run with `args` (`-t S`, maybe `-R`): the receiver's
/// throughput, Gbit/s, the figure iperf3 prints on its `receiver` line (for
/// `-c`, the device's own count over its own time; for `-R`, the client's).
fn iperf3_gbps(dut: &Dut, quiet: &Quiet, args: &str) -> f64 {
    let mut all = words(&quiet.wrap());
    all.push("iperf3".into());
    all.extend(target(dut, IPERF3_PORT));
    all.extend(words(&format!("{args} --json")));
    let output = run(dut, &all[0], &all[1..], Duration::from_secs(60));
    assert!(output.status.success(), "iperf3 {args}: {}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("iperf3 {args} --json: {e}: {}", text(&output)));
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 {args}: no end.sum_received in {json}"))
        / 1e9
}

/// Most of `values`.
fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// `socklab bench` (its throughput measurement: host→device through
/// discard, device→host through chargen) and Debian's `iperf3` client (`-t
/// S`, `-R -t S`) measure the same device in `rounds` alternating rounds of
/// `seconds` each, and the best run of each agrees within 15 % in each
/// direction.
///
/// Under heavy load (load average 14–17) iperf3 `-R` read 0.73 of the bench
/// on mps2-an385: its one thread waits for a CPU more than the bench's reader
/// thread does (the README has the figures).
///
/// Both tools run under the same conditions: the device's threads, the
/// bench's and iperf3 all on one CPU at nice -20 ([`Quiet`]). Unpinned, the
/// scheduler decides the figure: linux-tap moved 18–23 Gbit/s device→host
/// when the device and its client shared a CPU and 1.5–2.5 Gbit/s when they
/// sat on two (every frame then wakes the other vCPU), and which of the two
/// a run got changed from run to run and within one; at nice 0 the other
/// work of a shared machine took the rest. The best run, not the median: a
/// run is only ever slowed down by others, and alternating the tools (the
/// order flips every round) lets a quiet moment reach both.
pub fn bench_and_iperf3_agree(dut: &Dut, rounds: usize, seconds: u64) {
    use socklab_host::bench::throughput::{self, Direction};
    use socklab_host::bench::{Limit, Options, Target};

    let target = Target::from_device(&**dut, Duration::from_secs(5)).expect("INFO answered");
    // linux-tap and its client share a CPU: on two, every frame wakes the
    // other vCPU and the device moves a tenth of what it moves on one. A
    // QEMU board's emulator needs a CPU of its own, or it runs only while
    // the client waits.
    let quiet = Quiet::new(dut, dut.board() == BoardKind::Tap);
    let opts = Options {
        limit: Limit::Duration(Duration::from_secs(seconds)),
        ..Options::default()
    };
    let bench = |direction| {
        // This thread and the ones the bench starts (they inherit both).
        quiet.enter_current_thread();
        throughput::measure(&target, direction, &opts)
            .unwrap_or_else(|e| panic!("socklab bench {direction:?}: {e}"))
            .gbps
    };
    let directions = [
        (
            "host→device",
            Direction::HostToDevice,
            format!("-t {seconds}"),
        ),
        (
            "device→host",
            Direction::DeviceToHost,
            format!("-R -t {seconds}"),
        ),
    ];
    let mut figures = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for round in 0..rounds {
        for ((what, direction, args), (benched, iperfed)) in directions.iter().zip(&mut figures) {
            let (b, i) = if round % 2 == 0 {
                let b = bench(*direction);
                (b, iperf3_gbps(dut, &quiet, args))
            } else {
                let i = iperf3_gbps(dut, &quiet, args);
                (bench(*direction), i)
            };
            println!(
                "{:?} round {round} {what}: socklab bench {b:.3} Gbit/s, iperf3 {args} {i:.3} Gbit/s",
                dut.board()
            );
            benched.push(b);
            iperfed.push(i);
        }
    }
    let mut failures = Vec::new();
    for ((what, _, args), (benched, iperfed)) in directions.iter().zip(&figures) {
        let (b, i) = (best(benched), best(iperfed));
        let ratio = i / b;
        println!(
            "{:?} {what}, best of {rounds}: socklab bench {b:.3} Gbit/s, iperf3 {args} {i:.3} Gbit/s, iperf3/bench {ratio:.2}",
            dut.board()
        );
        if !(0.85..=1.15).contains(&ratio) {
            failures.push(format!(
                "{what}: iperf3 {args} ({i:.3} Gbit/s) and socklab bench ({b:.3} Gbit/s) differ by more than 15 % (ratio {ratio:.2})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
