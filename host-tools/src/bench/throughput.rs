//! Bulk throughput, one TCP stream per direction, one thread per stream end:
//! host→device through discard (9), device→host through chargen (19), both
//! ways at once through echo (7).
//!
//! The bench must not be the bottleneck: writes and reads are 256 KiB and
//! 1 MiB at a time, the kernel's buffers autotune, and checking the bytes is a
//! `memcmp` against a precomputed copy of the chargen pattern (it repeats
//! every 95 lines), by default of the first 4 KiB of every read only. Bytes the host has written count once the peer has
//! acknowledged them (written minus the socket's unacknowledged queue,
//! `SIOCOUTQ`), so the kernel's send buffer does not inflate the figure.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use socklab_app::protocol::{
    chargen_fill, CHARGEN_ALPHABET, CHARGEN_LINE_LEN, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT,
};

use super::stats::bits_per_sec;
use super::{BenchError, Limit, Options, Quiet, StepProgress, Target, Verify};

/// Bytes handed to one `write`.
pub const WRITE_CHUNK: usize = 256 * 1024;
/// Bytes asked of one `read`.
pub const READ_CHUNK: usize = 1024 * 1024;
/// Bytes checked at the start of every read with `Verify::Sample`.
const SAMPLE_CHECK: usize = 4096;
/// How often the loops look at the clock and the stop flag while blocked.
const POLL: Duration = Duration::from_millis(100);
/// How long a clean close may take after the measurement.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Longest a `--bytes` run may take before it is called stuck.
pub const MAX_BYTES_RUN: Duration = Duration::from_secs(300);

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Host writes, device's discard service reads.
    HostToDevice,
    /// Device's chargen service writes, host reads.
    DeviceToHost,
    /// Host writes to echo and reads it all back, at the same time.
    Echo,
}

impl Direction {
    /// All three, in table order.
    pub const ALL: [Direction; 3] = [
        Direction::HostToDevice,
        Direction::DeviceToHost,
        Direction::Echo,
    ];

    /// The service port.
    pub fn port(self) -> u16 {
        match self {
            Direction::HostToDevice => DISCARD_PORT,
            Direction::DeviceToHost => CHARGEN_PORT,
            Direction::Echo => ECHO_PORT,
        }
    }

    /// Stable key for JSON and figures.
    pub fn key(self) -> &'static str {
        match self {
            Direction::HostToDevice => "host_to_device",
            Direction::DeviceToHost => "device_to_host",
            Direction::Echo => "echo",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Direction::HostToDevice => "host→device (discard)",
            Direction::DeviceToHost => "device→host (chargen)",
            Direction::Echo => "both ways (echo)",
        }
    }
}

/// One point of a throughput series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the stream started.
    pub t_s: f64,
    /// Throughput over the interval that ends here, Gbit/s.
    pub gbps: f64,
}

/// One throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRun {
    /// Which way.
    pub direction: Direction,
    /// Bytes that made it (acknowledged by the peer, or read by the host;
    /// for echo: read back).
    pub bytes: u64,
    /// Bytes the host wrote and the peer acknowledged (echo: the way out).
    pub sent_bytes: u64,
    /// Measurement time, seconds.
    pub elapsed_s: f64,
    /// `bytes` over `elapsed_s`, Gbit/s.
    pub gbps: f64,
    /// Throughput over time.
    pub series: Vec<Sample>,
}

/// The chargen stream, precomputed: RFC 864's pattern repeats every 95 lines,
/// so any stretch of it up to [`WRITE_CHUNK`] bytes is a slice of this buffer.
pub struct ChargenPattern {
    bytes: Vec<u8>,
}

impl ChargenPattern {
    /// Length after which the pattern repeats (95 lines of 74 bytes).
    pub const PERIOD: usize = CHARGEN_LINE_LEN * CHARGEN_ALPHABET;

    /// The shared copy.
    pub fn get() -> &'static ChargenPattern {
        static PATTERN: OnceLock<ChargenPattern> = OnceLock::new();
        PATTERN.get_or_init(|| {
            let mut bytes = vec![0; Self::PERIOD + READ_CHUNK.max(WRITE_CHUNK)];
            chargen_fill(0, &mut bytes);
            ChargenPattern { bytes }
        })
    }

    /// The stream from position `pos`, `len` bytes (at most [`READ_CHUNK`]).
    pub fn at(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos % Self::PERIOD as u64) as usize;
        &self.bytes[start..start + len.min(self.bytes.len() - Self::PERIOD)]
    }

    /// The offset of the first byte of `data` that differs from the stream
    /// at `pos`, if any.
    pub fn mismatch(&self, pos: u64, data: &[u8]) -> Option<u64> {
        let max = self.bytes.len() - Self::PERIOD;
        let mut done = 0usize;
        while done < data.len() {
            let len = (data.len() - done).min(max);
            let want = self.at(pos + done as u64, len);
            let got = &data[done..done + len];
            if want != got {
                let i = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
                return Some(pos + (done + i) as u64);
            }
            done += len;
        }
        None
    }
}

/// Bytes written on `stream` that the peer has not acknowledged yet.
fn unacked(stream: &TcpStream) -> u64 {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int; the fd is a valid TCP socket.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc == 0 {
        queued.max(0) as u64
    } else {
        0
    }
}

fn io_error(target: &Target, what: &str, error: io::Error) -> BenchError {
    BenchError::Io {
        what: format!("{}: {what}", target.name),
        error,
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn connect(target: &Target, addr: SocketAddr, timeout: Duration) -> Result<TcpStream, BenchError> {
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| io_error(target, &format!("connecting to {addr}"), e))?;
    stream
        .set_read_timeout(Some(POLL))
        .and_then(|_| stream.set_write_timeout(Some(POLL)))
        .map_err(|e| io_error(target, "setting socket timeouts", e))?;
    Ok(stream)
}

/// Shared by the threads of one run.
struct Counters {
    /// Bytes the host has written.
    written: AtomicU64,
    /// Bytes the host has read.
    read: AtomicU64,
    /// Stop writing / reading.
    stop: AtomicBool,
    /// Set when a thread has finished on its own (`--bytes` reached, error).
    finished: AtomicBool,
}

/// Runs one throughput measurement in `direction` against `target` (the
/// caller has entered the target's network).
pub fn run(
    target: &Target,
    direction: Direction,
    opts: &Options,
    bar: &dyn StepProgress,
) -> Result<ThroughputRun, BenchError> {
    let addr = target.addr(direction.port());
    let stream = connect(target, addr, opts.timeout)?;
    let counters = Counters {
        written: AtomicU64::new(0),
        read: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        finished: AtomicBool::new(false),
    };
    let write_limit = match (direction, opts.limit) {
        (Direction::DeviceToHost, _) => None,
        (_, Limit::Bytes(n)) => Some(n),
        (_, Limit::Duration(_)) => Some(u64::MAX),
    };
    let read_limit = match (direction, opts.limit) {
        (Direction::HostToDevice, _) => None,
        (_, Limit::Bytes(n)) => Some(n),
        (_, Limit::Duration(_)) => Some(u64::MAX),
    };
    let pattern = ChargenPattern::get();
    let clone = |what| stream.try_clone().map_err(|e| io_error(target, what, e));
    let (writer_stream, reader_stream) =
        (clone("cloning the socket")?, clone("cloning the socket")?);

    let result = thread::scope(|scope| {
        let writer = write_limit.map(|limit| {
            let counters = &counters;
            let stream = &writer_stream;
            thread::Builder::new()
                .name("bench writer".into())
                .spawn_scoped(scope, move || writer(stream, limit, pattern, counters))
                .expect("spawning a thread")
        });
        let reader = read_limit.map(|limit| {
            let counters = &counters;
            let stream = &reader_stream;
            let verify = opts.verify;
            thread::Builder::new()
                .name("bench reader".into())
                .spawn_scoped(scope, move || {
                    reader(stream, limit, pattern, verify, counters)
                })
                .expect("spawning a thread")
        });
        let measured = sample(&stream, direction, opts, bar, &counters);
        counters.stop.store(true, Ordering::Relaxed);
        let written = writer.map(|w| w.join().expect("writer thread panicked"));
        let read = reader.map(|r| r.join().expect("reader thread panicked"));
        (measured, written, read)
    });
    let (measured, written, read) = result;
    let mut measured = measured?;
    if let Some(Err(e)) = written {
        return Err(io_error(target, &format!("writing to {addr}"), e));
    }
    match read {
        Some(Err(ReadError::Io(e))) => {
            return Err(io_error(target, &format!("reading from {addr}"), e))
        }
        Some(Err(ReadError::Corrupt(offset))) => {
            return Err(BenchError::Corrupt {
                target: target.name.clone(),
                service: addr,
                offset,
            })
        }
        Some(Err(ReadError::Closed(at))) => {
            return Err(BenchError::Io {
                what: format!(
                    "{}: {addr} closed the connection after {at} bytes",
                    target.name
                ),
                error: io::ErrorKind::UnexpectedEof.into(),
            })
        }
        _ => {}
    }
    finish(&stream, direction);
    measured.direction = direction;
    Ok(measured)
}

/// One throughput run in `direction` inside the target's network, without
/// reporting progress: for a caller that compares the bench with another tool
/// (the iperf3 agreement test).
pub fn measure(
    target: &Target,
    direction: Direction,
    opts: &Options,
) -> Result<ThroughputRun, BenchError> {
    target.net.run(|| run(target, direction, opts, &Quiet))?
}

/// Writes the chargen pattern until `limit` bytes or the stop flag.
fn writer(
    stream: &TcpStream,
    limit: u64,
    pattern: &ChargenPattern,
    counters: &Counters,
) -> io::Result<()> {
    let mut stream = stream;
    let mut pos = 0u64;
    while pos < limit && !counters.stop.load(Ordering::Relaxed) {
        let len = (limit - pos).min(WRITE_CHUNK as u64) as usize;
        match stream.write(pattern.at(pos, len)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n as u64;
                counters.written.store(pos, Ordering::Relaxed);
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => {
                counters.finished.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok(())
}

enum ReadError {
    Io(io::Error),
    Corrupt(u64),
    /// The peer closed after this many bytes.
    Closed(u64),
}

/// Reads (and checks) the chargen pattern until `limit` bytes or the stop flag.
fn reader(
    stream: &TcpStream,
    limit: u64,
    pattern: &ChargenPattern,
    verify: Verify,
    counters: &Counters,
) -> Result<(), ReadError> {
    let mut stream = stream;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = 0u64;
    let result = loop {
        if pos >= limit || counters.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match stream.read(&mut buf) {
            Ok(0) => break Err(ReadError::Closed(pos)),
            Ok(n) => {
                let checked = match verify {
                    Verify::None => 0,
                    Verify::Sample => n.min(SAMPLE_CHECK),
                    Verify::All => n,
                };
                if let Some(offset) = pattern.mismatch(pos, &buf[..checked]) {
                    break Err(ReadError::Corrupt(offset));
                }
                pos += n as u64;
                counters.read.store(pos, Ordering::Relaxed);
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => break Err(ReadError::Io(e)),
        }
    };
    counters.finished.store(true, Ordering::Relaxed);
    result
}

/// Watches the counters: a point of the series every `opts.sample`, the end
/// at the deadline (or when `--bytes` have made it, or a thread stopped).
fn sample(
    stream: &TcpStream,
    direction: Direction,
    opts: &Options,
    bar: &dyn StepProgress,
    counters: &Counters,
) -> Result<ThroughputRun, BenchError> {
    const TICK: Duration = Duration::from_millis(2);
    let start = Instant::now();
    let (deadline, target_bytes) = match opts.limit {
        Limit::Duration(d) => (start + d, u64::MAX),
        Limit::Bytes(n) => (start + MAX_BYTES_RUN, n),
    };
    let progress_len = match opts.limit {
        Limit::Duration(d) => d.as_millis() as u64,
        Limit::Bytes(n) => n,
    };
    bar.set_length(progress_len.max(1));
    bar.set_position(0);
    // Bytes that made it so far, and bytes sent and acknowledged.
    let measure = || {
        let written = counters.written.load(Ordering::Relaxed);
        let acked = written.saturating_sub(unacked(stream));
        match direction {
            Direction::HostToDevice => (acked, acked),
            Direction::DeviceToHost => (counters.read.load(Ordering::Relaxed), 0),
            Direction::Echo => (counters.read.load(Ordering::Relaxed), acked),
        }
    };
    let mut series = Vec::new();
    let mut last = (start, 0u64);
    let mut next_sample = start + opts.sample;
    loop {
        let now = Instant::now();
        let (bytes, sent) = measure();
        let done_by_bytes = bytes >= target_bytes;
        let done_by_time = now >= deadline;
        let ended = counters.finished.load(Ordering::Relaxed);
        if now >= next_sample || done_by_bytes || done_by_time || ended {
            let dt = now.duration_since(last.0);
            if !dt.is_zero() && (now >= next_sample || series.is_empty() || dt >= opts.sample / 4) {
                series.push(Sample {
                    t_s: now.duration_since(start).as_secs_f64(),
                    gbps: bits_per_sec(bytes - last.1, dt) / 1e9,
                });
                last = (now, bytes);
            }
            next_sample += opts.sample;
            if next_sample < now {
                next_sample = now + opts.sample;
            }
        }
        bar.set_position(match opts.limit {
            Limit::Duration(_) => now.duration_since(start).as_millis() as u64,
            Limit::Bytes(_) => bytes,
        });
        if done_by_bytes || ended || done_by_time {
            if done_by_time && matches!(opts.limit, Limit::Bytes(_)) && !done_by_bytes {
                return Err(BenchError::Stuck {
                    what: format!(
                        "{}: only {bytes} of {target_bytes} bytes in {MAX_BYTES_RUN:?}",
                        direction.label()
                    ),
                });
            }
            let elapsed = now.duration_since(start);
            let bytes = if done_by_bytes { target_bytes } else { bytes };
            return Ok(ThroughputRun {
                direction,
                bytes,
                sent_bytes: sent,
                elapsed_s: elapsed.as_secs_f64(),
                gbps: bits_per_sec(bytes, elapsed) / 1e9,
                series,
            });
        }
        let wake = next_sample.min(deadline).min(now + TICK);
        thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
}

/// Ends the stream politely where that is cheap: discard and echo get a FIN
/// and are read to their end (bounded); chargen is simply closed (a reset:
/// it would send for ever).
fn finish(stream: &TcpStream, direction: Direction) {
    if direction == Direction::DeviceToHost {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + CLOSE_WAIT;
    let mut stream = stream;
    let mut buf = vec![0u8; READ_CHUNK];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use socklab_app::protocol::chargen_byte;

    #[test]
    fn pattern_is_chargen_anywhere() {
        let p = ChargenPattern::get();
        for pos in [0u64, 1, 73, 74, 7029, 7030, 123_456_789] {
            let got = p.at(pos, 300);
            assert_eq!(got.len(), 300);
            for (i, &b) in got.iter().enumerate() {
                assert_eq!(b, chargen_byte(pos + i as u64), "pos {pos} + {i}");
            }
        }
        assert_eq!(p.at(5, 10 * READ_CHUNK).len(), READ_CHUNK);
    }

    #[test]
    fn mismatch_finds_the_first_wrong_byte() {
        let p = ChargenPattern::get();
        let pos = 1_000_003;
        let mut data = p.at(pos, 3 * 1024).to_vec();
        data.extend_from_slice(p.at(pos + data.len() as u64, 2048));
        assert_eq!(p.mismatch(pos, &data), None);
        // Longer than one slice of the buffer.
        let mut long = vec![0u8; READ_CHUNK + 100_000];
        chargen_fill(pos, &mut long);
        assert_eq!(p.mismatch(pos, &long), None);
        long[READ_CHUNK + 5] ^= 1;
        assert_eq!(p.mismatch(pos, &long), Some(pos + READ_CHUNK as u64 + 5));
        data[17] = b'\0';
        assert_eq!(p.mismatch(pos, &data), Some(pos + 17));
    }
}
