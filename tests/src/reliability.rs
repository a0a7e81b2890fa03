//! Reliability cases (issue 5): the device under abuse. A SYN flood,
//! slowloris, a slow reader, a bad link, clients that die mid-transfer, and a
//! soak of connect/command/disconnect cycles.
//!
//! Unlike a conformance case, each case starts its device itself, with the
//! options it needs: short timeouts keep the suite quick, and the case checks
//! the device against the timeout it was given. Every case prints
//! what it measured on stdout, one line starting with `figures:` (shown with
//! `cargo test -- --nocapture`).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use socket2::{Domain, Protocol, SockRef, Type};
use socklab_app::config::HOST_IPV4;
use socklab_app::protocol::{self, info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};
use socklab_host::client::{ClientError, Info, LabClient, Message, Socket};
use socklab_host::netns;

use crate::flood::{self, Spoof};
use crate::{eventually, BoardKind, Dut};

/// How long a single read or connect may wait in these cases (on a clean link).
const WAIT: Duration = Duration::from_secs(10);
/// The bulk services, each with `bulk_slots` sockets.
const BULK_PORTS: [u16; 3] = [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT];

// ---------------------------------------------------------------------------
// Helpers

/// Runs `f` on a thread inside the device's host-side network (its
/// namespace); threads `f` spawns are there too.
fn in_net<T: Send>(dut: &Dut, f: impl FnOnce() -> T + Send) -> T {
    dut.host_net()
        .run(f)
        .expect("enter the device's network namespace")
}

fn client(dut: &Dut) -> LabClient {
    dut.lab_client().expect("lab client gets HELLO")
}

fn info_of(client: &mut LabClient) -> Info {
    client.info().expect("INFO answered")
}

fn num(info: &Info, key: &str) -> u64 {
    info.parse(key)
        .unwrap_or_else(|| panic!("INFO has no numeric `{key}`: {:?}", info.entries))
}

/// The device's sockets, from `INFO`.
#[derive(Debug, Clone, Copy)]
struct Pool {
    slots: usize,
    backlog: usize,
    bulk_slots: usize,
}

impl Pool {
    fn of(info: &Info) -> Pool {
        Pool {
            slots: num(info, info::LAB_SLOTS) as usize,
            backlog: num(info, info::LAB_BACKLOG) as usize,
            bulk_slots: num(info, info::BULK_SLOTS) as usize,
        }
    }

    /// Lab sockets: slots and backlog, all on port 6666.
    fn lab_sockets(&self) -> usize {
        self.slots + self.backlog
    }
}

/// True when `busy` lab sockets are ESTABLISHED, every other lab socket
/// listens, and so does every bulk socket.
fn all_listening(rows: &[Socket], pool: &Pool, busy: usize) -> bool {
    let on = |port: u16| {
        rows.iter()
            .filter(move |r| r.proto == protocol::TCP && r.local.port() == Some(port))
    };
    let lab = on(LAB_PORT).count();
    let lab_listening = on(LAB_PORT).filter(|r| r.state == "LISTEN").count();
    let lab_busy = on(LAB_PORT).filter(|r| r.state == "ESTABLISHED").count();
    let bulk_ok = BULK_PORTS
        .iter()
        .all(|&p| on(p).count() == pool.bulk_slots && on(p).all(|r| r.state == "LISTEN"));
    lab == pool.lab_sockets()
        && lab_listening == pool.lab_sockets() - busy
        && lab_busy == busy
        && bulk_ok
}

fn render(rows: &[Socket]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "  tcp {} {} {} {} {}",
                r.local, r.remote, r.state, r.recv_q, r.send_q
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls `NETSTAT` until every socket listens again but the `busy` lab
/// clients (the observer among them); returns when that was first seen.
fn wait_all_listening(
    observer: &mut LabClient,
    pool: &Pool,
    busy: usize,
    limit: Duration,
) -> Instant {
    let mut last = Vec::new();
    let seen = eventually(limit, || {
        let rows = observer.netstat().expect("NETSTAT answered");
        let done = all_listening(&rows, pool, busy);
        last = rows;
        done.then(Instant::now)
    });
    seen.unwrap_or_else(|| {
        panic!(
            "after {limit:?}, not every socket listens again ({busy} lab client(s) expected); \
             NETSTAT:\n{}",
            render(&last)
        )
    })
}

/// Latency percentiles of a sample.
#[derive(Debug, Clone, Copy)]
struct Latency {
    count: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut sample: Vec<Duration>) -> Latency {
        assert!(!sample.is_empty(), "no latency sample");
        sample.sort();
        let at =
            |q: f64| sample[((q * sample.len() as f64).ceil() as usize).clamp(1, sample.len()) - 1];
        Latency {
            count: sample.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: *sample.last().unwrap(),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.3}ms p99={:.3}ms max={:.3}ms",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn figures(case: &str, text: impl std::fmt::Display) {
    println!("figures: {case}: {text}");
}

/// A TCP connection to `addr` from this thread's network, optionally bound to
/// `from` and with a small receive buffer.
fn connect_from(
    addr: SocketAddr,
    from: Option<IpAddr>,
    recv_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let socket =
        socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(ip) = from {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.connect_timeout(&addr.into(), WAIT)?;
    Ok(socket.into())
}

/// Closes `stream` with RST (SO_LINGER 0).
fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}

/// Waits up to `timeout` for `events` (or an error or hang-up) on `stream`;
/// returns the events seen.
fn wait_io(stream: &TcpStream, events: i16, timeout: Duration) -> i16 {
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, for the duration of the call.
    let rc = unsafe { libc::poll(&mut fd, 1, millis) };
    if rc <= 0 {
        0
    } else {
        fd.revents
    }
}

/// The kernel's TCP state of `stream` (`TCP_INFO`'s `tcpi_state`).
fn tcp_state(stream: &TcpStream) -> u8 {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    unsafe {
        let mut ti: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        );
        if rc != 0 {
            return u8::MAX;
        }
        ti.tcpi_state
    }
}

/// `tcpi_state` of a closed connection.
const TCP_CLOSE: u8 = 7;

/// The host side of the device's TAP, and the namespace it lives in.
fn tap_of(dut: &Dut) -> (String, String) {
    let tap = dut.tap_name().expect("the board has a TAP").to_owned();
    let ns = dut
        .host_net()
        .netns_name()
        .expect("the device runs in a namespace")
        .to_owned();
    (ns, tap)
}

/// Frames the host side of a TAP handed to the device, and dropped because
/// the device did not take them fast enough.
#[derive(Debug, Clone, Copy)]
struct TapStats {
    tx_packets: u64,
    tx_dropped: u64,
}

fn tap_stats(ns: &str, tap: &str) -> TapStats {
    let out = netns::ip(["-n", ns, "-s", "link", "show", "dev", tap]).expect("ip -s link show");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("TX:"))
        .unwrap_or_else(|| panic!("no TX statistics in:\n{out}"));
    let heads: Vec<&str> = lines[at].split_whitespace().skip(1).collect();
    let values: Vec<u64> = lines[at + 1]
        .split_whitespace()
        .map(|v| v.parse().expect("a counter"))
        .collect();
    let get = |name: &str| {
        heads
            .iter()
            .position(|h| *h == name)
            .and_then(|i| values.get(i).copied())
            .unwrap_or_else(|| panic!("no TX {name} in:\n{out}"))
    };
    TapStats {
        tx_packets: get("packets"),
        tx_dropped: get("dropped"),
    }
}

/// Makes the device's link quiet: turns IPv6 off on the host side of its
/// TAP, so the namespace's kernel sends no multicast reports or router
/// solicitations. Those arrive now and then and wake the device, which hides
/// a device that forgets to poll again when it has work left; on a quiet
/// link such a stall lasts until the next timer (a keep-alive, seconds).
fn quiet_link(dut: &Dut) {
    let (_, tap) = tap_of(dut);
    let path = format!("/proc/sys/net/ipv6/conf/{tap}/disable_ipv6");
    // /proc/sys/net shows the namespace of the thread that opens it.
    in_net(dut, || std::fs::write(&path, "1")).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

/// Adds `addr`/32 to the host side of the device's TAP (a second client
/// address that can be taken away).
fn add_address(ns: &str, tap: &str, addr: Ipv4Addr) {
    netns::ip(["-n", ns, "addr", "add", &format!("{addr}/32"), "dev", tap])
        .expect("add an address");
}

/// Removes `addr`/32 from the TAP: connections from it go silent (packets to
/// it are dropped without a word, and it can send nothing).
fn remove_address(ns: &str, tap: &str, addr: Ipv4Addr) {
    netns::ip(["-n", ns, "addr", "del", &format!("{addr}/32"), "dev", tap])
        .expect("remove an address");
}

// ---------------------------------------------------------------------------
// SYN flood

/// The handshake timeout the flood runs with (`--handshake-timeout-ms`).
pub const FLOOD_HANDSHAKE_MS: u64 = 1000;
/// At least this many SYNs...
pub const FLOOD_SYNS: u64 = 20_000;
/// ...for at least this long, as fast as the kernel takes them.
pub const FLOOD_TIME: Duration = Duration::from_secs(3);
const FLOOD_SEED: u64 = 0x5359_4e46_4c4f_4f44;

/// A raw-socket flood of SYNs to the lab port from spoofed hosts of the
/// TAP's /24 that do not exist (nobody answers the SYN-ACKs) while one
/// established client keeps doing `ECHO`: every `ECHO` is answered; after the
/// flood every lab socket listens again within the handshake timeout; no
/// spoofed handshake is counted as accepted, and every pinned socket as a
/// handshake timeout.
pub fn syn_flood(board: BoardKind) {
    let timeout = FLOOD_HANDSHAKE_MS.to_string();
    let dut = Dut::start_with(board, &["--handshake-timeout-ms", &timeout]);
    let (ns, tap) = tap_of(&dut);
    let mut echo = client(&dut);
    let before = info_of(&mut echo);
    assert_eq!(num(&before, info::HANDSHAKE_TIMEOUT_MS), FLOOD_HANDSHAKE_MS);
    let pool = Pool::of(&before);
    let SocketAddr::V4(device) = dut.lab_addr() else {
        panic!("the lab address is IPv4")
    };
    let spoof = Spoof {
        net: *device.ip(),
        exclude: vec![device.ip().octets()[3], HOST_IPV4.octets()[3]],
    };
    let tap_before = tap_stats(&ns, &tap);
    // An ECHO whose segment the full TAP queue drops waits for the kernel's
    // retransmission: answered late, not lost.
    echo.set_timeout(3 * WAIT);
    let done = AtomicBool::new(false);
    let (flooded, flood_end, pings) = in_net(&dut, || {
        thread::scope(|s| {
            let pinger = s.spawn(|| {
                let mut rtts = Vec::new();
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let text = format!("ping {n}");
                    let t = Instant::now();
                    match echo.echo(&text) {
                        Ok(answer) if answer == text => rtts.push(t.elapsed()),
                        Ok(answer) => return Err(format!("ECHO {n} answered {answer:?}")),
                        Err(e) => return Err(format!("ECHO {n} during the flood: {e}")),
                    }
                    n += 1;
                }
                Ok(rtts)
            });
            let flooded = flood::flood(device, &spoof, FLOOD_SEED, FLOOD_SYNS, FLOOD_TIME);
            let end = Instant::now();
            done.store(true, Ordering::Relaxed);
            (flooded, end, pinger.join().expect("the ECHO thread"))
        })
    });
    let flooded = flooded.expect("flood from a raw socket (needs root)");
    let rtts = pings.unwrap_or_else(|e| panic!("{e}"));
    assert!(flooded.sent >= FLOOD_SYNS, "{flooded:?}");

    let recovered = wait_all_listening(
        &mut echo,
        &pool,
        1,
        Duration::from_millis(FLOOD_HANDSHAKE_MS) + WAIT,
    );
    let recovery = recovered.saturating_duration_since(flood_end);
    let tap_after = tap_stats(&ns, &tap);
    let after = info_of(&mut echo);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    let dropped = tap_after.tx_dropped - tap_before.tx_dropped;
    let delivered = flooded.sent.saturating_sub(dropped);
    let pings = Latency::of(rtts);
    let timed_out = delta(info::CONN_TIMED_OUT);
    let refused = delta(info::CONN_REFUSED);
    let free = pool.lab_sockets() as u64 - 1;
    figures(
        "syn flood",
        format!(
            "{} SYNs sent in {:.2}s ({:.0}/s), {} dropped at the TAP, {} delivered ({:.0}/s absorbed); \
             the TAP handed the device {} frames, frames_rx +{}; ECHO during the flood {pings}; every lab socket LISTEN {:.0}ms after \
             the last SYN (handshake timeout {FLOOD_HANDSHAKE_MS}ms); conn_timed_out +{timed_out}, \
             conn_refused +{refused}, conn_accepted +{}",
            flooded.sent,
            flooded.elapsed.as_secs_f64(),
            flooded.rate(),
            dropped,
            delivered,
            delivered as f64 / flooded.elapsed.as_secs_f64(),
            tap_after.tx_packets - tap_before.tx_packets,
            delta(info::FRAMES_RX),
            ms(recovery),
            delta(info::CONN_ACCEPTED),
        ),
    );
    assert!(
        recovery <= Duration::from_millis(FLOOD_HANDSHAKE_MS + 500),
        "the lab sockets listened again only {recovery:?} after the flood \
         (handshake timeout {FLOOD_HANDSHAKE_MS} ms)"
    );
    assert_eq!(
        delta(info::CONN_ACCEPTED),
        0,
        "no spoofed handshake can complete"
    );
    // Every free lab socket was pinned at least once, and each at most once per
    // handshake timeout.
    let rounds = (flooded.elapsed.as_millis() as u64).div_ceil(FLOOD_HANDSHAKE_MS) + 2;
    assert!(
        (free..=free * rounds).contains(&timed_out),
        "conn_timed_out +{timed_out}: expected {free}..={} handshake timeouts",
        free * rounds
    );
    // A refusal counts an RST sent; the spoofed hosts never answer ARP, so few
    // or none can be sent. Never more than the SYNs that were not taken.
    assert!(
        refused + timed_out <= delivered,
        "conn_refused +{refused} and conn_timed_out +{timed_out} exceed the {delivered} SYNs delivered"
    );
    assert!(
        delta(info::FRAMES_RX) >= delivered,
        "the device counted {} frames, the TAP delivered {delivered} SYNs",
        delta(info::FRAMES_RX)
    );
    assert_eq!(echo.echo("after the flood").unwrap(), "after the flood");
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    dut.assert_running();
}

// ---------------------------------------------------------------------------
// Slowloris

/// The idle timeout slowloris runs with (`--idle-timeout-ms`).
pub const SLOWLORIS_IDLE_MS: u64 = 2000;
/// Half a command: no LF.
const HALF_LINE: &[u8] = b"ECHO half a li";

/// Waits for `BYE idle` on a silent client, then for the device's close;
/// returns how long after `since` the `BYE idle` came.
fn bye_idle_then_close(
    c: &mut LabClient,
    since: Instant,
    idle: Duration,
) -> Result<Duration, String> {
    let peer = c.greeting().peer;
    c.set_timeout(idle + WAIT);
    let line = c.read_line().map_err(|e| format!("{peer}: {e}"))?;
    let after = since.elapsed();
    if line != protocol::BYE_IDLE {
        return Err(format!("{peer}: expected BYE idle, got {line:?}"));
    }
    match c.read_line() {
        Err(ClientError::Closed { reason: None, .. }) => Ok(after),
        other => Err(format!(
            "{peer}: expected the close after BYE idle: {other:?}"
        )),
    }
}

/// The whole pool and the whole backlog taken by clients that send half a
/// line and stall: the next client is refused; once the idle timeout fires
/// every stalled client gets `BYE idle` and is closed (the waiting ones after
/// they got a slot and sat idle in it), and new clients are served.
pub fn slowloris(board: BoardKind) {
    let timeout = SLOWLORIS_IDLE_MS.to_string();
    let dut = Dut::start_with(board, &["--idle-timeout-ms", &timeout]);
    let idle = Duration::from_millis(SLOWLORIS_IDLE_MS);
    let mut first = client(&dut);
    let before = info_of(&mut first);
    assert_eq!(num(&before, info::IDLE_TIMEOUT_MS), SLOWLORIS_IDLE_MS);
    let pool = Pool::of(&before);

    // Served stallers: the whole pool (`first` stalls last: it watches the backlog fill).
    let mut served = Vec::new();
    for _ in 1..pool.slots {
        let mut c = client(&dut);
        c.send_raw(HALF_LINE).expect("send half a line");
        served.push((c, Instant::now()));
    }
    let mut waiting = Vec::new();
    for n in 1..=pool.backlog as u64 {
        let mut stream = dut.connect(LAB_PORT).expect("accepted into the backlog");
        let queued = eventually(WAIT, || {
            (num(&info_of(&mut first), info::LAB_QUEUED) == n).then_some(())
        });
        assert!(queued.is_some(), "waiting client {n} is not queued");
        stream.write_all(HALF_LINE).expect("send half a line");
        waiting.push((stream, Instant::now()));
    }
    first.send_raw(HALF_LINE).expect("send half a line");
    served.push((first, Instant::now()));
    let full_at = Instant::now();
    let earliest = served[0].1;
    assert!(
        full_at - earliest < idle / 2,
        "filling the pool took {:?}: too slow for a {idle:?} idle timeout",
        full_at - earliest
    );
    let refused = dut
        .connect(LAB_PORT)
        .expect_err("pool and backlog are full: refused");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    let (served_at, stalled) = thread::scope(|s| {
        let served_threads: Vec<_> = served
            .into_iter()
            .map(|(mut c, stalled_at)| {
                s.spawn(move || bye_idle_then_close(&mut c, stalled_at, idle))
            })
            .collect();
        let waiting_threads: Vec<_> = waiting
            .into_iter()
            .map(|(stream, _)| {
                s.spawn(move || -> Result<Duration, String> {
                    let mut c = LabClient::from_stream(stream, 2 * idle + WAIT)
                        .map_err(|e| format!("waiting client: no HELLO: {e}"))?;
                    bye_idle_then_close(&mut c, Instant::now(), idle)
                })
            })
            .collect();
        // A newcomer retries (each try refused at once) until it is served.
        let deadline = full_at + idle + WAIT;
        let mut newcomer = loop {
            match dut.lab_client() {
                Ok(c) => break c,
                Err(e) if e.is_refused() && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("the newcomer was not served: {e}"),
            }
        };
        let served_at = Instant::now();
        // Served: it gets answers (and leaves before it idles too).
        assert_eq!(newcomer.echo("served at last").unwrap(), "served at last");
        newcomer.quit().expect("the newcomer leaves");
        let join = |t: thread::ScopedJoinHandle<'_, Result<Duration, String>>| {
            t.join()
                .expect("staller thread")
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let served: Vec<Duration> = served_threads.into_iter().map(join).collect();
        let waited: Vec<Duration> = waiting_threads.into_iter().map(join).collect();
        (served_at, (served, waited))
    });
    let (served_byes, waiting_byes) = stalled;
    let slack = Duration::from_millis(50);
    for (i, after) in served_byes.iter().enumerate() {
        assert!(
            *after + slack >= idle && *after <= idle + Duration::from_secs(1),
            "served staller {i} got BYE idle {after:?} after stalling (idle timeout {idle:?})"
        );
    }
    for (i, after) in waiting_byes.iter().enumerate() {
        assert!(
            *after + slack >= idle && *after <= idle + Duration::from_secs(1),
            "waiting staller {i} got BYE idle {after:?} after its HELLO (idle timeout {idle:?})"
        );
    }
    let wait = served_at - earliest;
    assert!(
        wait + slack >= idle && served_at <= full_at + idle + Duration::from_millis(1500),
        "the newcomer was served {wait:?} after the first client stalled (idle timeout {idle:?})"
    );
    let mut observer = client(&dut);
    wait_all_listening(&mut observer, &pool, 1, WAIT);
    let after = info_of(&mut observer);
    let stallers = (pool.slots + pool.backlog) as u64;
    assert_eq!(
        num(&after, info::CONN_TIMED_OUT) - num(&before, info::CONN_TIMED_OUT),
        stallers,
        "every staller timed out once"
    );
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    assert_eq!(num(&after, info::LAB_QUEUED), 0);
    let latest = served_byes.iter().chain(&waiting_byes).max().unwrap();
    figures(
        "slowloris",
        format!(
            "{} stalled clients ({} served, {} waiting) all got BYE idle, at most {:.0}ms after \
             their last byte or HELLO (idle timeout {SLOWLORIS_IDLE_MS}ms); a newcomer was served \
             {:.0}ms after the first stall",
            stallers,
            pool.slots,
            pool.backlog,
            ms(*latest),
            ms(wait)
        ),
    );
    observer.quit().unwrap();
    dut.assert_running();
}

// ---------------------------------------------------------------------------
// Slow reader

/// The slow-reader timeout the case runs with (`--slow-reader-timeout-ms`).
pub const SLOW_READER_MS: u64 = 1000;
/// SAY text sent by the talkers together.
pub const SAY_TOTAL: usize = 10 << 20;
const TALKERS: usize = 4;
const LISTENERS: usize = 2;
/// Bytes of text per SAY (the line is `SAY ` and the text).
const SAY_TEXT: usize = 250;

/// Talker `talker`'s SAY number `seq`: its own name and number, padded.
fn say_text(talker: usize, seq: usize) -> String {
    let mut text = format!("t{talker} {seq:07} ");
    let fill = (b'a' + ((talker * 7 + seq) % 26) as u8) as char;
    while text.len() < SAY_TEXT {
        text.push(fill);
    }
    text
}

/// Checks that FROM lines arrive whole, in order per talker, none missing.
struct Inbox {
    talkers: Vec<SocketAddr>,
    me: Option<usize>,
    next: Vec<usize>,
}

impl Inbox {
    fn new(talkers: Vec<SocketAddr>, me: Option<usize>) -> Inbox {
        let next = vec![0; talkers.len()];
        Inbox { talkers, me, next }
    }

    fn take(&mut self, message: &Message) -> Result<(), String> {
        let talker = self
            .talkers
            .iter()
            .position(|a| *a == message.sender)
            .ok_or_else(|| format!("FROM an unknown sender {}", message.sender))?;
        if Some(talker) == self.me {
            return Err("a talker heard its own SAY".into());
        }
        let want = say_text(talker, self.next[talker]);
        if message.text != want {
            let shown = |t: &str| t.chars().take(14).collect::<String>();
            return Err(format!(
                "from talker {talker}: expected {:?}..., got {:?}... ({} bytes)",
                shown(&want),
                shown(&message.text),
                message.text.len()
            ));
        }
        self.next[talker] += 1;
        Ok(())
    }

    fn complete(&self, each: usize) -> bool {
        (0..self.talkers.len()).all(|t| Some(t) == self.me || self.next[t] == each)
    }

    fn received(&self) -> usize {
        self.next.iter().sum()
    }
}

/// One client never reads while others `SAY` 10 MiB in all: the slow one is
/// disconnected (RST) once its output has waited the slow-reader timeout,
/// with a log line; what it received is an unbroken prefix of what was said;
/// the others' `SAY`s are never held up much longer than that timeout, and
/// every `FROM` line reaches every fast client, in order per sender.
pub fn slow_reader(board: BoardKind) {
    let timeout = SLOW_READER_MS.to_string();
    let dut = Dut::start_with(board, &["--slow-reader-timeout-ms", &timeout]);
    quiet_link(&dut);
    let slow_timeout = Duration::from_millis(SLOW_READER_MS);
    let says_each = SAY_TOTAL.div_ceil(SAY_TEXT * TALKERS);
    let addr = dut.lab_addr();
    let result = in_net(&dut, || {
        // A small receive buffer closes the slow reader's window after a few KiB.
        let stream = connect_from(addr, None, Some(4096)).expect("slow reader connects");
        let mut slow = LabClient::from_stream(stream, WAIT).expect("slow reader gets HELLO");
        let connect = || LabClient::connect(addr, WAIT).expect("lab client gets HELLO");
        let mut talkers: Vec<LabClient> = (0..TALKERS).map(|_| connect()).collect();
        let listeners: Vec<LabClient> = (0..LISTENERS).map(|_| connect()).collect();
        let before = info_of(&mut talkers[0]);
        assert_eq!(num(&before, info::SLOW_READER_TIMEOUT_MS), SLOW_READER_MS);
        let names: Vec<SocketAddr> = talkers.iter().map(|t| t.greeting().peer).collect();
        let started = Instant::now();
        let (talked, heard, disconnected) = thread::scope(|s| {
            let slow_stream = slow.stream();
            // The kernel reports the device's RST as an error/hang-up: wait for it.
            let watcher = s.spawn(move || {
                let deadline = started + 3 * WAIT;
                while Instant::now() < deadline {
                    wait_io(slow_stream, 0, Duration::from_millis(100));
                    if tcp_state(slow_stream) == TCP_CLOSE {
                        return Some(started.elapsed());
                    }
                }
                None
            });
            let talking: Vec<_> = talkers
                .into_iter()
                .enumerate()
                .map(|(i, mut t)| {
                    let names = names.clone();
                    s.spawn(move || -> Result<(LabClient, Vec<Duration>), String> {
                        let mut inbox = Inbox::new(names, Some(i));
                        let mut latencies = Vec::with_capacity(says_each);
                        for seq in 0..says_each {
                            let text = say_text(i, seq);
                            let t0 = Instant::now();
                            t.say(&text)
                                .map_err(|e| format!("talker {i}, SAY {seq}: {e}"))?;
                            latencies.push(t0.elapsed());
                            for m in t.take_messages() {
                                inbox.take(&m).map_err(|e| format!("talker {i}: {e}"))?;
                            }
                        }
                        while !inbox.complete(says_each) {
                            let m = t.next_message(WAIT).map_err(|e| {
                                format!("talker {i} after {} FROM lines: {e}", inbox.received())
                            })?;
                            inbox.take(&m).map_err(|e| format!("talker {i}: {e}"))?;
                        }
                        Ok((t, latencies))
                    })
                })
                .collect();
            let listening: Vec<_> = listeners
                .into_iter()
                .enumerate()
                .map(|(i, mut l)| {
                    let names = names.clone();
                    s.spawn(move || -> Result<LabClient, String> {
                        let mut inbox = Inbox::new(names, None);
                        while !inbox.complete(says_each) {
                            let m = l.next_message(WAIT).map_err(|e| {
                                format!("listener {i} after {} FROM lines: {e}", inbox.received())
                            })?;
                            inbox.take(&m).map_err(|e| format!("listener {i}: {e}"))?;
                        }
                        Ok(l)
                    })
                })
                .collect();
            let talked: Result<Vec<_>, String> = talking
                .into_iter()
                .map(|t| t.join().expect("talker"))
                .collect();
            let heard: Result<Vec<_>, String> = listening
                .into_iter()
                .map(|l| l.join().expect("listener"))
                .collect();
            (talked, heard, watcher.join().expect("watcher"))
        });
        let elapsed = started.elapsed();
        let talked = talked.unwrap_or_else(|e| panic!("{e}"));
        let _listeners = heard.unwrap_or_else(|e| panic!("{e}"));
        let (mut talkers, latencies): (Vec<LabClient>, Vec<Vec<Duration>>) =
            talked.into_iter().unzip();
        let after = info_of(&mut talkers[0]);
        // What the slow reader got before the RST: an unbroken prefix per sender.
        let slow_peer = slow.greeting().peer;
        let mut inbox = Inbox::new(names, None);
        let end = loop {
            match slow.read_line() {
                Ok(line) => {
                    let m = Message::parse(&line)
                        .unwrap_or_else(|e| panic!("slow reader got {line:?}: {e}"));
                    inbox
                        .take(&m)
                        .unwrap_or_else(|e| panic!("slow reader: {e}"));
                }
                Err(e) => break e,
            }
        };
        (
            before,
            after,
            latencies.concat(),
            disconnected,
            elapsed,
            slow_peer,
            inbox.received(),
            end,
        )
    });
    let (before, after, latencies, disconnected, elapsed, slow_peer, slow_lines, end) = result;
    assert!(
        matches!(end, ClientError::Reset { .. } | ClientError::Closed { .. }),
        "the slow reader's connection should end in a reset, got: {end}"
    );
    let disconnected = disconnected.expect("the slow reader is disconnected");
    let log = dut.log();
    // The address as the device logs it: plain.
    let line = format!("{slow_peer} left its output unread for {SLOW_READER_MS} ms: disconnected");
    assert!(log.contains(&line), "no log line {line:?} in:\n{log}");
    let says = Latency::of(latencies);
    let said = says_each * TALKERS * SAY_TEXT;
    figures(
        "slow reader",
        format!(
            "{TALKERS} talkers said {said} bytes ({} SAYs) to {} fast clients in {:.2}s ({:.2} MB/s of \
             SAY text); per-SAY {says}; the slow reader got {slow_lines} FROM lines, then was \
             reset {:.0}ms after the first SAY (slow-reader timeout {SLOW_READER_MS}ms)",
            says_each * TALKERS,
            TALKERS - 1 + LISTENERS,
            elapsed.as_secs_f64(),
            said as f64 / elapsed.as_secs_f64() / 1e6,
            ms(disconnected)
        ),
    );
    assert!(said >= SAY_TOTAL);
    assert!(
        says.max <= slow_timeout + Duration::from_secs(1),
        "a talker's SAY took {:?} (slow-reader timeout {slow_timeout:?})",
        says.max
    );
    assert!(
        disconnected >= slow_timeout && disconnected <= slow_timeout + Duration::from_secs(1),
        "the slow reader was disconnected {disconnected:?} after the first SAY \
         (slow-reader timeout {slow_timeout:?})"
    );
    assert_eq!(
        num(&after, info::CONN_TIMED_OUT) - num(&before, info::CONN_TIMED_OUT),
        1,
        "only the slow reader timed out"
    );
    assert_eq!(num(&after, info::LAB_IN_USE) as usize, TALKERS + LISTENERS);
    dut.assert_running();
}

// ---------------------------------------------------------------------------
// Bad link

/// The bad link's faults: 5 % drop, 1 % corrupt, 1 % duplicate, 2 % reorder.
pub const BAD_LINK: [&str; 10] = [
    "--drop-chance",
    "5",
    "--corrupt-chance",
    "1",
    "--duplicate-chance",
    "1",
    "--reorder-chance",
    "2",
    // smoltcp 0.14 drops a segment outside a zero receive window before it
    // reads the segment's ACK, and does not count it as a sign of life: echo
    // under this much loss can sit at a zero window while its peer is alive,
    // and the default 30 s dead-peer timeout would reset it. Ten minutes
    // keeps a live, stalled peer connected (a dead one still goes).
    "--dead-peer-ms",
    "600000",
];
/// The bad link's seed (and the echoed data's): replay a failure with it.
pub const BAD_LINK_SEED: u64 = 6666;
/// How long one read or connect may wait on the bad link (several
/// retransmission timeouts in a row, each at least 1 s on smoltcp).
const LINK_WAIT: Duration = Duration::from_secs(60);

/// Through the bad link: `bytes` random bytes through echo come back
/// byte-exact, and meanwhile a lab session gets every command right.
/// `window`: at most this many bytes sent and not yet echoed back (`None`:
/// no limit). Below the device's receive buffer it keeps the connection away
/// from a zero receive window, where smoltcp 0.14 drops the peer's data
/// segments before reading their ACKs and the transfer can stall for minutes.
pub fn bad_link(board: BoardKind, bytes: usize, window: Option<usize>) {
    let seed = BAD_LINK_SEED.to_string();
    let mut options = BAD_LINK.to_vec();
    options.extend(["--seed", &seed]);
    let dut = Dut::start_with(board, &options);
    let replay = format!("{board:?} with {}", options.join(" "));
    let mut data = vec![0u8; bytes];
    StdRng::seed_from_u64(BAD_LINK_SEED).fill_bytes(&mut data);
    let echo_addr = dut.addr(ECHO_PORT);
    let lab_addr = dut.lab_addr();
    let board_name = dut.board_name();
    let real = dut.has_real_addresses();
    let (echoed, session) = in_net(&dut, || {
        thread::scope(|s| {
            let echo = s.spawn(|| echo_through(echo_addr, &data, window));
            let session = s.spawn(|| lab_session(lab_addr, board_name, real));
            (
                echo.join().expect("echo thread"),
                session.join().expect("lab session thread"),
            )
        })
    });
    let echoed = echoed.unwrap_or_else(|e| panic!("{replay}: echo: {e}"));
    session.unwrap_or_else(|e| panic!("{replay}: lab session: {e}"));
    figures(
        &format!("bad link ({board:?})"),
        format!(
            "{bytes} bytes through echo byte-exact in {:.1}s ({:.3} MB/s) with {replay}; \
             lab session correct",
            echoed.as_secs_f64(),
            bytes as f64 / echoed.as_secs_f64() / 1e6
        ),
    );
    dut.assert_running();
}

/// Writes `data` to echo while reading it back and comparing; returns how
/// long the round trip of all of it took.
/// Writes `data` in pieces, never more than `window` bytes ahead of what
/// came back (`echoed`); gives up after [`LINK_WAIT`] without progress.
fn write_windowed(
    mut stream: &TcpStream,
    data: &[u8],
    window: usize,
    echoed: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    let piece = (window / 4).max(1);
    let mut sent = 0;
    while sent < data.len() {
        let waiting_since = Instant::now();
        while sent - echoed.load(std::sync::atomic::Ordering::Relaxed) + piece > window {
            if waiting_since.elapsed() > LINK_WAIT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "nothing came back for the whole link wait",
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
        let end = (sent + piece).min(data.len());
        stream.write_all(&data[sent..end])?;
        sent = end;
    }
    Ok(())
}

fn echo_through(addr: SocketAddr, data: &[u8], window: Option<usize>) -> Result<Duration, String> {
    let stream =
        TcpStream::connect_timeout(&addr, LINK_WAIT).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(LINK_WAIT)).unwrap();
    stream.set_write_timeout(Some(LINK_WAIT)).unwrap();
    let started = Instant::now();
    let echoed = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        let writer = s.spawn(|| {
            let written = match window {
                None => (&stream).write_all(data),
                Some(window) => write_windowed(&stream, data, window, &echoed),
            };
            // The reader must not wait for bytes that were never sent.
            if written.is_err() {
                let _ = stream.shutdown(Shutdown::Read);
            }
            written
        });
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let mut failed = None;
        while got < data.len() {
            let n = match (&stream).read(&mut buf) {
                Ok(0) => {
                    failed = Some("the connection ended".to_owned());
                    break;
                }
                Ok(n) => n,
                Err(e) => {
                    failed = Some(format!("read: {e}"));
                    break;
                }
            };
            if buf[..n] != data[got..got + n] {
                let at = (0..n).find(|&i| buf[i] != data[got + i]).unwrap();
                return Err(format!("echoed byte {} differs", got + at));
            }
            got += n;
            echoed.store(got, std::sync::atomic::Ordering::Relaxed);
        }
        if failed.is_some() {
            // Whichever side saw the error first took it from the socket.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let written = writer.join().expect("echo writer");
        match (failed, written) {
            (None, Ok(())) => Ok(started.elapsed()),
            (read, write) => Err(format!(
                "{:.1}s in, after {got} of {} bytes came back: {}{}",
                started.elapsed().as_secs_f64(),
                data.len(),
                read.unwrap_or_else(|| "read all".into()),
                write
                    .err()
                    .map(|e| format!("; write: {e}"))
                    .unwrap_or_default()
            )),
        }
    })
}

/// A lab session with two clients, every command checked.
fn lab_session(addr: SocketAddr, board: &str, real_addresses: bool) -> Result<(), String> {
    let connect = || -> Result<LabClient, String> {
        let mut c = LabClient::connect(addr, LINK_WAIT).map_err(|e| format!("HELLO: {e}"))?;
        c.set_timeout(LINK_WAIT);
        Ok(c)
    };
    let mut a = connect()?;
    let mut b = connect()?;
    let e = |what: &str| {
        let what = what.to_owned();
        move |err: ClientError| format!("{what}: {err}")
    };
    if real_addresses && a.greeting().local != addr {
        return Err(format!("HELLO names {} as the device", a.greeting().local));
    }
    for i in 0..50 {
        let text = format!("line {i} over a bad link {}", "~".repeat(i * 4));
        let answer = a.echo(&text).map_err(e("ECHO"))?;
        if answer != text {
            return Err(format!("ECHO {text:?} answered {answer:?}"));
        }
    }
    let say = |from: &mut LabClient, to: &mut LabClient, text: &str| -> Result<(), String> {
        from.say(text).map_err(e("SAY"))?;
        let message = to.next_message(LINK_WAIT).map_err(e("FROM"))?;
        if message.sender != from.greeting().peer || message.text != text {
            return Err(format!("SAY {text:?} arrived as {message:?}"));
        }
        Ok(())
    };
    say(&mut a, &mut b, "hello from a")?;
    say(&mut b, &mut a, "and from b")?;
    let mut who: Vec<(usize, SocketAddr)> = a
        .who()
        .map_err(e("WHO"))?
        .iter()
        .map(|r| (r.slot, r.peer))
        .collect();
    who.sort();
    let mut want = vec![
        (a.greeting().slot, a.greeting().peer),
        (b.greeting().slot, b.greeting().peer),
    ];
    want.sort();
    if who != want {
        return Err(format!("WHO listed {who:?}, expected {want:?}"));
    }
    let info = a.info().map_err(e("INFO"))?;
    let pool = Pool::of(&info);
    if info.get(info::BOARD) != Some(board) || info.parse::<u64>(info::LAB_IN_USE) != Some(2) {
        return Err(format!("INFO: {:?}", info.entries));
    }
    let rows = a.netstat().map_err(e("NETSTAT"))?;
    let lab: Vec<&Socket> = rows
        .iter()
        .filter(|r| r.local.port() == Some(LAB_PORT))
        .collect();
    let established = lab.iter().filter(|r| r.state == "ESTABLISHED").count();
    let listening = lab.iter().filter(|r| r.state == "LISTEN").count();
    let bulk_rows = rows
        .iter()
        .filter(|r| r.proto == protocol::TCP)
        .filter(|r| r.local.port().is_some_and(|p| BULK_PORTS.contains(&p)));
    if lab.len() != pool.lab_sockets()
        || established != 2
        || listening != pool.lab_sockets() - 2
        || bulk_rows.count() != 3 * pool.bulk_slots
    {
        return Err(format!("NETSTAT:\n{}", render(&rows)));
    }
    b.quit().map_err(e("QUIT"))?;
    a.quit().map_err(e("QUIT"))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Abrupt deaths

/// The keep-alive interval the death cases run with (`--keep-alive-ms`).
pub const KEEP_ALIVE_MS: u64 = 500;
/// The dead-peer time the death cases run with (`--dead-peer-ms`).
pub const DEAD_PEER_MS: u64 = 2000;
/// Lab clients killed in each death case.
const LAB_VICTIMS: usize = 3;
/// The address the silent victims connect from; taken away to silence them.
const VANISHING: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 50);

fn death_options() -> [String; 4] {
    [
        "--keep-alive-ms".into(),
        KEEP_ALIVE_MS.to_string(),
        "--dead-peer-ms".into(),
        DEAD_PEER_MS.to_string(),
    ]
}

fn start_for_deaths(board: BoardKind) -> Dut {
    let options = death_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    Dut::start_with(board, &options)
}

/// Clients caught in the middle of a transfer on every service.
struct Victims {
    /// Lab clients with replies piling up and half a command sent.
    lab: Vec<LabClient>,
    /// An echo client with bytes in flight both ways.
    echo: TcpStream,
    /// A chargen client that read some and stopped.
    chargen: TcpStream,
    /// A discard client that wrote some and stopped.
    discard: TcpStream,
}

impl Victims {
    fn count(&self) -> usize {
        self.lab.len() + 3
    }

    fn streams(self) -> Vec<TcpStream> {
        let mut all: Vec<TcpStream> = self
            .lab
            .iter()
            .map(|c| c.stream().try_clone().expect("clone a stream"))
            .collect();
        drop(self.lab);
        all.extend([self.echo, self.chargen, self.discard]);
        all
    }
}

/// Opens the victims (from `from`, if given) and gets each mid-transfer.
/// Runs inside the device's network.
fn victims(ports: &HashMap<u16, SocketAddr>, from: Option<IpAddr>) -> Victims {
    let connect = |port: u16| {
        connect_from(ports[&port], from, None)
            .unwrap_or_else(|e| panic!("victim connects to port {port}: {e}"))
    };
    let lab = (0..LAB_VICTIMS)
        .map(|_| {
            let mut c = LabClient::from_stream(connect(LAB_PORT), WAIT).expect("victim's HELLO");
            // The kernel takes the whole burst; the device reads it only as
            // it answers.
            let mut burst = "NETSTAT\n".repeat(200).into_bytes();
            burst.extend_from_slice(HALF_LINE);
            c.send_raw(&burst).expect("send NETSTATs");
            // Wait until the answers flow.
            c.read_line().expect("NETSTAT answers arrive");
            c
        })
        .collect();
    // Echo: keep writing and reading until 64 KiB came back and more is in flight.
    let echo = connect(ECHO_PORT);
    echo.set_nonblocking(true).unwrap();
    let chunk = vec![0x5au8; 16 * 1024];
    let mut buf = vec![0u8; 16 * 1024];
    let (mut sent, mut back) = (0usize, 0usize);
    let deadline = Instant::now() + WAIT;
    while back < 64 * 1024 || sent <= back {
        assert!(
            Instant::now() < deadline,
            "echo stalled: {sent} sent, {back} back"
        );
        wait_io(&echo, libc::POLLIN | libc::POLLOUT, WAIT);
        match (&echo).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("echo write: {e}"),
        }
        match (&echo).read(&mut buf) {
            Ok(0) => panic!("echo closed"),
            Ok(n) => back += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("echo read: {e}"),
        }
    }
    echo.set_nonblocking(false).unwrap();
    let mut chargen = connect(CHARGEN_PORT);
    chargen.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = vec![0u8; 64 * 1024];
    chargen.read_exact(&mut got).expect("chargen sends");
    let mut discard = connect(DISCARD_PORT);
    discard.set_write_timeout(Some(WAIT)).unwrap();
    discard
        .write_all(&vec![0xA5u8; 256 * 1024])
        .expect("discard takes data");
    Victims {
        lab,
        echo,
        chargen,
        discard,
    }
}

/// Asserts the victims hold their sockets: ESTABLISHED, as many as expected
/// on each service.
fn assert_victims_hold_sockets(observer: &mut LabClient, from: Option<IpAddr>) {
    let rows = observer.netstat().expect("NETSTAT answered");
    let held = |port: u16| {
        rows.iter()
            .filter(|r| r.local.port() == Some(port) && r.state == "ESTABLISHED")
            .filter(|r| match (&r.remote, from) {
                (protocol::SockName::Addr(a), Some(ip)) => a.ip() == ip,
                _ => true,
            })
            .count()
    };
    let expected_lab = LAB_VICTIMS + usize::from(from.is_none());
    assert!(
        held(LAB_PORT) == expected_lab && BULK_PORTS.iter().all(|&p| held(p) == 1),
        "the victims do not hold their sockets; NETSTAT:\n{}",
        render(&rows)
    );
}

/// Clients killed with RST (SO_LINGER 0) in the middle of transfers, on the
/// lab and on every bulk service, free their sockets at once.
pub fn reset_clients_free_their_sockets(board: BoardKind) {
    let dut = start_for_deaths(board);
    let mut observer = client(&dut);
    let pool = Pool::of(&info_of(&mut observer));
    let ports = service_addrs(&dut);
    let victims = in_net(&dut, || victims(&ports, None));
    assert_victims_hold_sockets(&mut observer, None);
    let before = info_of(&mut observer);
    let count = victims.count() as u64;
    let killed_at = Instant::now();
    for stream in victims.streams() {
        reset(stream);
    }
    let freed =
        wait_all_listening(&mut observer, &pool, 1, WAIT).saturating_duration_since(killed_at);
    let after = info_of(&mut observer);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    figures(
        &format!("reset mid-transfer ({board:?})"),
        format!(
            "{count} clients (lab, echo, chargen, discard) reset mid-transfer: every socket \
             LISTEN again {:.0}ms later; conn_reset +{}",
            ms(freed),
            delta(info::CONN_RESET)
        ),
    );
    assert!(
        freed <= Duration::from_secs(2),
        "freed only after {freed:?}"
    );
    assert_eq!(
        delta(info::CONN_RESET),
        count,
        "each victim counted as reset"
    );
    assert_eq!(delta(info::CONN_TIMED_OUT), 0);
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    dut.assert_running();
}

/// Where the host reaches each service of the device.
fn service_addrs(dut: &Dut) -> HashMap<u16, SocketAddr> {
    [LAB_PORT, ECHO_PORT, CHARGEN_PORT, DISCARD_PORT]
        .into_iter()
        .map(|p| (p, dut.addr(p)))
        .collect()
}

/// Clients that vanish in the middle of transfers (their address is taken
/// away: nothing more comes from them, nothing reaches them, no FIN, no RST)
/// free their sockets once the dead-peer time has passed without an answer
/// to the device's keep-alives and retransmissions.
pub fn silent_clients_free_their_sockets(board: BoardKind) {
    let dut = start_for_deaths(board);
    let (ns, tap) = tap_of(&dut);
    let mut observer = client(&dut);
    let pool = Pool::of(&info_of(&mut observer));
    add_address(&ns, &tap, VANISHING);
    let from = Some(IpAddr::V4(VANISHING));
    let ports = service_addrs(&dut);
    let victims = in_net(&dut, || victims(&ports, from));
    assert_victims_hold_sockets(&mut observer, from);
    let before = info_of(&mut observer);
    let count = victims.count() as u64;
    remove_address(&ns, &tap, VANISHING);
    let vanished_at = Instant::now();
    let limit = Duration::from_millis(DEAD_PEER_MS + KEEP_ALIVE_MS) + WAIT;
    let freed =
        wait_all_listening(&mut observer, &pool, 1, limit).saturating_duration_since(vanished_at);
    let after = info_of(&mut observer);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    figures(
        &format!("silent mid-transfer ({board:?})"),
        format!(
            "{count} clients (lab, echo, chargen, discard) vanished mid-transfer: every socket \
             LISTEN again {:.0}ms later (keep-alive {KEEP_ALIVE_MS}ms, dead peer {DEAD_PEER_MS}ms); \
             conn_reset +{}, conn_timed_out +{}",
            ms(freed),
            delta(info::CONN_RESET),
            delta(info::CONN_TIMED_OUT)
        ),
    );
    assert!(
        freed <= Duration::from_millis(DEAD_PEER_MS + KEEP_ALIVE_MS + 1500),
        "freed only after {freed:?}"
    );
    assert_eq!(
        delta(info::CONN_RESET) + delta(info::CONN_TIMED_OUT),
        count,
        "each victim's end counted once"
    );
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    // The vanished clients' sockets go with the namespace; close them first.
    drop(victims);
    dut.assert_running();
}

// ---------------------------------------------------------------------------
// Soak

/// Connect/command/disconnect cycles measured by the soak.
pub const SOAK_CYCLES: usize = 20_000;
/// Cycles run first, so that every buffer the mix uses has been touched
/// before the device's memory is measured.
const SOAK_WARMUP: usize = 1_000;
/// Client threads.
const SOAK_THREADS: usize = 8;
/// Lab clients that vanish silently halfway through the soak.
const SOAK_VANISHERS: usize = 8;
/// Where the vanishing clients connect from.
const SOAK_VANISHING: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 51);
const SOAK_SEED: u64 = 0x50a4_50a4;
/// How much the device's resident memory may grow over the soak.
const SOAK_RSS_SLACK_KIB: u64 = 256;

/// How a soak client behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Behaviour {
    /// ECHO, QUIT, BYE, the device closes.
    Quit,
    /// ECHO, then RST.
    Reset,
    /// ECHO, then close (FIN) without QUIT.
    CloseWithoutQuit,
    /// Half a command, a pause, then RST.
    StallThenReset,
    /// A line over the limit (ERR line too long), ECHO, QUIT.
    LongLine,
    /// Bytes that are no command, lines and all, then ECHO and QUIT.
    Garbage,
    /// Connect and RST before the HELLO is read.
    ResetBeforeHello,
    /// ECHO, shut down the sending side, read the answer and the close.
    HalfClose,
}

impl Behaviour {
    fn pick(rng: &mut StdRng) -> Behaviour {
        match rng.gen_range(0..100) {
            0..35 => Behaviour::Quit,
            35..50 => Behaviour::Reset,
            50..60 => Behaviour::CloseWithoutQuit,
            60..65 => Behaviour::StallThenReset,
            65..75 => Behaviour::LongLine,
            75..85 => Behaviour::Garbage,
            85..95 => Behaviour::ResetBeforeHello,
            _ => Behaviour::HalfClose,
        }
    }
}

/// One soak cycle; returns what the client did.
fn soak_cycle(addr: SocketAddr, index: usize) -> Result<Behaviour, String> {
    let mut rng =
        StdRng::seed_from_u64(SOAK_SEED ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let behaviour = Behaviour::pick(&mut rng);
    let fail = |e: &dyn std::fmt::Display| format!("cycle {index} ({behaviour:?}): {e}");
    let connect = || LabClient::connect(addr, WAIT).map_err(|e| fail(&e));
    let expect = |got: String, want: &str| {
        if got == want {
            Ok(())
        } else {
            Err(fail(&format!("expected {want:?}, got {got:?}")))
        }
    };
    let text: String = (0..rng.gen_range(1..200))
        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
        .collect();
    match behaviour {
        Behaviour::Quit => {
            let mut c = connect()?;
            expect(c.echo(&text).map_err(|e| fail(&e))?, &text)?;
            c.quit().map_err(|e| fail(&e))?;
        }
        Behaviour::Reset => {
            let mut c = connect()?;
            expect(c.echo(&text).map_err(|e| fail(&e))?, &text)?;
            reset(c.stream().try_clone().unwrap());
        }
        Behaviour::CloseWithoutQuit => {
            let mut c = connect()?;
            expect(c.echo(&text).map_err(|e| fail(&e))?, &text)?;
            drop(c);
        }
        Behaviour::StallThenReset => {
            let mut c = connect()?;
            c.send_raw(HALF_LINE).map_err(|e| fail(&e))?;
            thread::sleep(Duration::from_millis(rng.gen_range(5..50)));
            reset(c.stream().try_clone().unwrap());
        }
        Behaviour::LongLine => {
            let mut c = connect()?;
            let long = format!(
                "ECHO {}\n",
                "x".repeat(rng.gen_range(protocol::MAX_LINE..4000))
            );
            c.send_raw(long.as_bytes()).map_err(|e| fail(&e))?;
            expect(c.read_line().map_err(|e| fail(&e))?, protocol::ERR_TOO_LONG)?;
            expect(c.echo(&text).map_err(|e| fail(&e))?, &text)?;
            c.quit().map_err(|e| fail(&e))?;
        }
        Behaviour::Garbage => {
            let mut c = connect()?;
            // No ASCII letters, so no command word can form; LFs make lines.
            let mut garbage: Vec<u8> = (0..rng.gen_range(1..600))
                .map(|_| match rng.gen_range(0..10) {
                    0 => b'\n',
                    1..5 => rng.gen_range(0x00..0x20),
                    _ => rng.gen_range(0x80..=0xff),
                })
                .collect();
            garbage.extend_from_slice(format!("\nECHO {text}\n").as_bytes());
            c.send_raw(&garbage).map_err(|e| fail(&e))?;
            loop {
                let line = c.read_line().map_err(|e| fail(&e))?;
                if line == text {
                    break;
                }
                if line != protocol::ERR_UNKNOWN && line != protocol::ERR_TOO_LONG {
                    return Err(fail(&format!("garbage answered {line:?}")));
                }
            }
            c.quit().map_err(|e| fail(&e))?;
        }
        Behaviour::ResetBeforeHello => {
            let stream = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| fail(&e))?;
            reset(stream);
        }
        Behaviour::HalfClose => {
            let mut c = connect()?;
            c.send_line(&format!("ECHO {text}")).map_err(|e| fail(&e))?;
            c.stream().shutdown(Shutdown::Write).map_err(|e| fail(&e))?;
            expect(c.read_line().map_err(|e| fail(&e))?, &text)?;
            match c.read_line() {
                Err(ClientError::Closed { reason: None, .. }) => {}
                other => return Err(fail(&format!("expected the close, got {other:?}"))),
            }
        }
    }
    Ok(behaviour)
}

/// Runs the cycles `range` on `threads` threads (call it inside the device's
/// network); `at` runs before the cycle of that index. Returns how many
/// cycles of each behaviour ran.
fn soak_cycles(
    addr: SocketAddr,
    range: Range<usize>,
    threads: usize,
    at: &(dyn Fn(usize) + Sync),
) -> Result<HashMap<Behaviour, usize>, String> {
    let next = AtomicUsize::new(range.start);
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let counts: Mutex<HashMap<Behaviour, usize>> = Mutex::new(HashMap::new());
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine: HashMap<Behaviour, usize> = HashMap::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= range.end || failed.lock().unwrap().is_some() {
                        break;
                    }
                    at(index);
                    match soak_cycle(addr, index) {
                        Ok(b) => *mine.entry(b).or_default() += 1,
                        Err(e) => {
                            failed.lock().unwrap().get_or_insert(e);
                            break;
                        }
                    }
                }
                let mut all = counts.lock().unwrap();
                for (b, n) in mine {
                    *all.entry(b).or_default() += n;
                }
            });
        }
    });
    match failed.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(counts.into_inner().unwrap()),
    }
}

/// The device process's resident memory, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// 20,000 connect/command/disconnect cycles of mixed behaviour on several
/// threads, with lab clients that vanish silently halfway: afterwards every
/// socket listens again (none leaked), the connection counters add up, and
/// the device's resident memory is flat.
///
/// The identity checked, from `lab.rs` and `bulk.rs`: every accepted
/// connection ends exactly once, as closed, reset or timed out, or is still
/// open (`lab_in_use`, `lab_queued`); `conn_timed_out` also counts
/// handshakes that never completed, and none happen here (nothing sends a
/// SYN without completing it); the backlog policy is `wait` (under `busy` a
/// busy connection is counted as busy and as closed).
pub fn soak(board: BoardKind) {
    let dut = start_for_deaths(board);
    let (ns, tap) = tap_of(&dut);
    let mut observer = client(&dut);
    let pool = Pool::of(&info_of(&mut observer));
    let addr = dut.lab_addr();
    let nothing = |_: usize| {};
    // Warm-up: the whole pool at once (every slot's buffers), then the mix.
    in_net(&dut, || {
        let mut all: Vec<LabClient> = (1..pool.slots)
            .map(|_| LabClient::connect(addr, WAIT).expect("HELLO"))
            .collect();
        let long = "w".repeat(protocol::MAX_LINE - 5);
        for c in &mut all {
            assert_eq!(c.echo(&long).unwrap(), long);
            c.send_raw(b"NETSTAT\n").unwrap();
        }
        for c in all {
            reset(c.stream().try_clone().unwrap());
        }
        soak_cycles(addr, 0..SOAK_WARMUP, SOAK_THREADS, &nothing).unwrap_or_else(|e| panic!("{e}"));
    });
    wait_all_listening(&mut observer, &pool, 1, WAIT);
    let rss_before = vm_rss_kib(dut.pid());

    add_address(&ns, &tap, SOAK_VANISHING);
    let vanishers: Vec<LabClient> = in_net(&dut, || {
        (0..SOAK_VANISHERS)
            .map(|i| {
                let stream = connect_from(addr, Some(IpAddr::V4(SOAK_VANISHING)), None)
                    .expect("vanisher connects");
                let mut c = LabClient::from_stream(stream, WAIT).expect("vanisher's HELLO");
                assert_eq!(
                    c.echo(&format!("vanisher {i}")).unwrap(),
                    format!("vanisher {i}")
                );
                c.send_raw(HALF_LINE).unwrap();
                c
            })
            .collect()
    });
    let measured = SOAK_WARMUP..SOAK_WARMUP + SOAK_CYCLES;
    let halfway = SOAK_WARMUP + SOAK_CYCLES / 2;
    let vanish = |index: usize| {
        if index == halfway {
            remove_address(&ns, &tap, SOAK_VANISHING);
        }
    };
    let started = Instant::now();
    let counts = in_net(&dut, || soak_cycles(addr, measured, SOAK_THREADS, &vanish))
        .unwrap_or_else(|e| panic!("{e}"));
    let soaked = started.elapsed();
    let limit = Duration::from_millis(DEAD_PEER_MS + KEEP_ALIVE_MS) + WAIT;
    wait_all_listening(&mut observer, &pool, 1, limit);
    let settled = started.elapsed();
    let rss_after = vm_rss_kib(dut.pid());
    let after = info_of(&mut observer);
    let get = |key: &str| num(&after, key);
    let (accepted, closed, reset_, timed_out, in_use, queued) = (
        get(info::CONN_ACCEPTED),
        get(info::CONN_CLOSED),
        get(info::CONN_RESET),
        get(info::CONN_TIMED_OUT),
        get(info::LAB_IN_USE),
        get(info::LAB_QUEUED),
    );
    let mut mix: Vec<_> = counts.into_iter().collect();
    mix.sort();
    figures(
        "soak",
        format!(
            "{SOAK_CYCLES} cycles on {SOAK_THREADS} threads in {:.1}s ({:.0}/s; every socket \
             LISTEN {:.1}s after the start), plus {SOAK_VANISHERS} clients vanished halfway; \
             mix {mix:?}; leaked slots 0; VmRSS {rss_before} KiB before, {rss_after} KiB after; \
             conn_accepted={accepted} conn_closed={closed} conn_reset={reset_} \
             conn_timed_out={timed_out} lab_in_use={in_use} lab_queued={queued}",
            soaked.as_secs_f64(),
            SOAK_CYCLES as f64 / soaked.as_secs_f64(),
            settled.as_secs_f64(),
        ),
    );
    assert_eq!(in_use, 1, "only the observer is served");
    assert_eq!(queued, 0, "nobody waits");
    assert_eq!(
        accepted,
        closed + reset_ + timed_out + in_use + queued,
        "accepted = closed + reset + timed_out + in use + queued"
    );
    assert!(
        rss_after <= rss_before + SOAK_RSS_SLACK_KIB,
        "the device's VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(vanishers);
    dut.assert_running();
}
