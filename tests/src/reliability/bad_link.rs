//! The bad link: echo and a lab session through dropped, corrupted,
//! duplicated and reordered frames.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use socklab_app::protocol::{self, info, ECHO_PORT, LAB_PORT};
use socklab_host::client::{ClientError, LabClient, Socket};

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
