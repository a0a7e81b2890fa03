//! The bad link: echo and a lab session through dropped, corrupted,
//! duplicated and reordered frames, and the link's own counts (`INFO`'s
//! `badlink_*` keys) within the range its rates predict for the frames it saw.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use socklab_app::protocol::{self, info, ECHO_PORT, LAB_PORT};
use socklab_host::client::{ClientError, Info, LabClient, Socket};

use super::{figures, in_net, render, Pool, BULK_PORTS};
use crate::{BoardKind, Dut};

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
    let counts = in_net(&dut, || {
        let mut client = LabClient::connect(lab_addr, LINK_WAIT).expect("HELLO for the counts");
        client.set_timeout(LINK_WAIT);
        let info = client.info().expect("INFO for the counts");
        let _ = client.quit();
        info
    });
    let counted = fault_counts(&counts, bytes).unwrap_or_else(|e| panic!("{replay}: {e}"));
    figures(
        &format!("bad link ({board:?})"),
        format!(
            "{bytes} bytes through echo byte-exact in {:.1}s ({:.3} MB/s) with {replay}; \
             lab session correct; the link counted {counted}",
            echoed.as_secs_f64(),
            bytes as f64 / echoed.as_secs_f64() / 1e6
        ),
    );
    dut.assert_running();
}

/// The chance of each fault [`BAD_LINK`] asks for, from its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// `--drop-chance`.
    pub drop: f64,
    /// `--corrupt-chance`.
    pub corrupt: f64,
    /// `--duplicate-chance`.
    pub duplicate: f64,
    /// `--reorder-chance`.
    pub reorder: f64,
    /// `--delay-chance` (not given: 0).
    pub delay: f64,
}

impl Rates {
    /// The rates of the options `options` (`--drop-chance 5` is 0.05).
    pub fn of(options: &[&str]) -> Rates {
        let chance = |name: &str| {
            options
                .windows(2)
                .find(|w| w[0] == name)
                .map_or(0.0, |w| w[1].parse::<f64>().expect("a percentage") / 100.0)
        };
        Rates {
            drop: chance("--drop-chance"),
            corrupt: chance("--corrupt-chance"),
            duplicate: chance("--duplicate-chance"),
            reorder: chance("--reorder-chance"),
            delay: chance("--delay-chance"),
        }
    }
}

/// Checks that `count` events of chance `p` among `n` trials lie within five
/// standard deviations of `n·p`, plus `slack` (frames in flight while the
/// counts were read) and, below, minus `skipped` (faults drawn but not done
/// because no hold buffer was free).
pub fn within_binomial(
    what: &str,
    count: u64,
    n: u64,
    p: f64,
    slack: f64,
    skipped: u64,
) -> Result<(), String> {
    let mean = n as f64 * p;
    let spread = 5.0 * (mean * (1.0 - p)).sqrt() + slack;
    let (low, high) = (mean - spread - skipped as f64, mean + spread);
    if (low..=high).contains(&(count as f64)) {
        Ok(())
    } else {
        Err(format!(
            "{what}: {count} of {n} frames, expected {mean:.0} (chance {p}), \
             outside {:.0}..={high:.0}",
            low.max(0.0)
        ))
    }
}

/// Frames that may pass while `INFO` is asked and answered, on top of the
/// binomial spread.
const COUNT_SLACK: f64 = 3.0;

/// Checks the bad link's counts in `info` after `bytes` went through echo
/// each way: each direction saw at least the frames those bytes need, and
/// each fault count lies within the range [`BAD_LINK`]'s rates predict for
/// that many frames. Returns the counts as a figure.
pub fn fault_counts(info: &Info, bytes: usize) -> Result<String, String> {
    let rates = Rates::of(&BAD_LINK);
    let mut figure = Vec::new();
    for direction in ["rx", "tx"] {
        let get = |name: &str| {
            let key = format!("badlink_{direction}_{name}");
            info.parse::<u64>(&key)
                .ok_or_else(|| format!("INFO has no number for {key}: {:?}", info.entries))
        };
        let frames = get("frames")?;
        // At most 1500 bytes of payload per frame.
        let least = (bytes / 1500) as u64;
        if frames < least {
            return Err(format!(
                "the bad link saw {frames} {direction} frames; {bytes} bytes need at least {least}"
            ));
        }
        let dropped = get("dropped")?;
        let kept = frames - dropped.min(frames);
        let held_full = get("held_full")?;
        let checks = [
            ("dropped", dropped, frames, rates.drop, 0),
            ("corrupted", get("corrupted")?, kept, rates.corrupt, 0),
            (
                "duplicated",
                get("duplicated")?,
                kept,
                rates.duplicate,
                held_full,
            ),
            (
                "reordered",
                get("reordered")?,
                kept,
                rates.reorder,
                held_full,
            ),
            (
                "delayed",
                get("delayed")?,
                kept,
                rates.delay * (1.0 - rates.reorder),
                held_full,
            ),
        ];
        let mut parts = vec![format!("{frames} frames")];
        for (name, count, n, p, skipped) in checks {
            within_binomial(
                &format!("{direction} {name}"),
                count,
                n,
                p,
                COUNT_SLACK,
                skipped,
            )?;
            parts.push(format!("{count} {name}"));
        }
        parts.push(format!("{held_full} held_full"));
        figure.push(format!("{direction}: {}", parts.join(", ")));
    }
    Ok(figure.join("; "))
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

#[cfg(test)]
mod tests {
    use super::{within_binomial, Rates, BAD_LINK};

    #[test]
    fn rates_come_from_the_options() {
        let rates = Rates::of(&BAD_LINK);
        assert_eq!(
            rates,
            Rates {
                drop: 0.05,
                corrupt: 0.01,
                duplicate: 0.01,
                reorder: 0.02,
                delay: 0.0
            }
        );
    }

    #[test]
    fn binomial_bounds_hold_and_fail() {
        // 10 000 frames at 5 %: 500 expected, 5σ ≈ 109.
        assert!(within_binomial("d", 500, 10_000, 0.05, 3.0, 0).is_ok());
        assert!(within_binomial("d", 400, 10_000, 0.05, 3.0, 0).is_ok());
        assert!(within_binomial("d", 380, 10_000, 0.05, 3.0, 0).is_err());
        assert!(within_binomial("d", 620, 10_000, 0.05, 3.0, 0).is_err());
        assert!(within_binomial("d", 0, 10_000, 0.05, 3.0, 0).is_err());
        // Skipped faults lower only the lower bound.
        assert!(within_binomial("d", 380, 10_000, 0.05, 3.0, 30).is_ok());
        assert!(within_binomial("d", 620, 10_000, 0.05, 3.0, 30).is_err());
        // A rate of 0 allows only the slack.
        assert!(within_binomial("d", 3, 10_000, 0.0, 3.0, 0).is_ok());
        assert!(within_binomial("d", 4, 10_000, 0.0, 3.0, 0).is_err());
    }
}
