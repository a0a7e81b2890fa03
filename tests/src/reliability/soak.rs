//! The soak: thousands of connect/command/disconnect cycles of mixed
//! behaviour leak no socket and no memory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use socklab_app::protocol::{self, info};
use socklab_host::client::{ClientError, LabClient};

use super::deaths::{start_for_deaths, DEAD_PEER_MS, KEEP_ALIVE_MS};
use super::{
    add_address, client, connect_from, figures, in_net, info_of, num, remove_address, reset,
    tap_of, wait_all_listening, Pool, HALF_LINE, WAIT,
};
use crate::BoardKind;

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
        match rng.random_range(0..100) {
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
    let text: String = (0..rng.random_range(1..200))
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
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
            thread::sleep(Duration::from_millis(rng.random_range(5..50)));
            reset(c.stream().try_clone().unwrap());
        }
        Behaviour::LongLine => {
            let mut c = connect()?;
            let long = format!(
                "ECHO {}\n",
                "x".repeat(rng.random_range(protocol::MAX_LINE..4000))
            );
            c.send_raw(long.as_bytes()).map_err(|e| fail(&e))?;
            expect(c.read_line().map_err(|e| fail(&e))?, protocol::ERR_TOO_LONG)?;
            expect(c.echo(&text).map_err(|e| fail(&e))?, &text)?;
            c.quit().map_err(|e| fail(&e))?;
        }
        Behaviour::Garbage => {
            let mut c = connect()?;
            // No ASCII letters, so no command word can form; LFs make lines.
            let mut garbage: Vec<u8> = (0..rng.random_range(1..600))
                .map(|_| match rng.random_range(0..10) {
                    0 => b'\n',
                    1..5 => rng.random_range(0x00..0x20),
                    _ => rng.random_range(0x80..=0xff),
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
