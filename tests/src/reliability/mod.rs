//! Reliability cases (issue 5): the device under abuse. A SYN flood,
//! slowloris, a slow reader, a bad link, clients that die mid-transfer, and a
//! soak of connect/command/disconnect cycles.
//!
//! Unlike a conformance case, each case starts its device itself, with the
//! options it needs: short timeouts keep the suite quick, and the case checks
//! the device against the timeout it was given. Every case prints
//! what it measured on stdout, one line starting with `figures:` (shown with
//! `cargo test -- --nocapture`).
//!
//! One file a scenario; this one holds what they share (pool checks,
//! latency figures, socket helpers, the TAP's counters).

mod bad_link;
mod deaths;
mod slow_reader;
mod slowloris;
mod soak;
mod syn_flood;

pub use bad_link::{bad_link, BAD_LINK, BAD_LINK_SEED};
pub use deaths::{
    reset_clients_free_their_sockets, silent_clients_free_their_sockets, DEAD_PEER_MS,
    KEEP_ALIVE_MS,
};
pub use slow_reader::{slow_reader, SAY_TOTAL, SLOW_READER_MS};
pub use slowloris::{slowloris, SLOWLORIS_IDLE_MS};
pub use soak::{soak, SOAK_CYCLES};
pub use syn_flood::{syn_flood, FLOOD_HANDSHAKE_MS, FLOOD_SYNS, FLOOD_TIME};

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, SockRef, Type};
use socklab_app::protocol::{self, info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};
use socklab_host::client::{Info, LabClient, Socket};
use socklab_host::netns;

use crate::{eventually, Dut};

/// How long a single read or connect may wait in these cases (on a clean link).
const WAIT: Duration = Duration::from_secs(10);
/// Half a command: no LF.
const HALF_LINE: &[u8] = b"ECHO half a li";
/// The bulk services, each with `bulk_slots` sockets.
const BULK_PORTS: [u16; 3] = [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT];

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
    let mut fds = [PollFd::new(
        stream.as_fd(),
        PollFlags::from_bits_truncate(events),
    )];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(ready) if ready > 0 => fds[0].revents().map_or(0, |seen| seen.bits()),
        _ => 0,
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
