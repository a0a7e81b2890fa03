//! Concurrency: C lab clients connected at once, each sending `ECHO` in a
//! loop (one request in flight per client) for the run's duration; the
//! latency of every request and every error.
//!
//! All clients connect first and start together (a barrier), so every
//! request is timed while all C connections are held.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use socklab_app::protocol::MAX_RESPONSE_LINE;

use super::connect::CLIENT_STACK;
use super::stats::{per_sec, Percentiles};
use super::{BenchError, Options, StepProgress, Target};
use crate::client::LabClient;

/// One concurrency run.
#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyRun {
    /// Clients asked for.
    pub clients: usize,
    /// Clients that got their `HELLO`.
    pub connected: usize,
    /// `ECHO` requests answered correctly.
    pub requests: u64,
    /// Failed connections plus failed or wrong answers.
    pub errors: u64,
    /// Time the clients spent sending, seconds.
    pub elapsed_s: f64,
    /// `requests` per second, all clients together.
    pub requests_per_sec: f64,
    /// Latency of one request.
    pub latency: Percentiles,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// The samples, nanoseconds, sorted (not in the JSON).
    #[serde(skip)]
    pub samples_ns: Vec<u64>,
}

/// Runs one concurrency measurement (the caller has entered the target's network).
pub fn run(
    target: &Target,
    opts: &Options,
    bar: &dyn StepProgress,
) -> Result<ConcurrencyRun, BenchError> {
    let addr = target.lab_addr();
    let clients = opts.concurrency;
    let errors = AtomicU64::new(0);
    let connected = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let gate = Gate::default();
    let fail = |e: String| {
        errors.fetch_add(1, Ordering::Relaxed);
        first_error.lock().unwrap().get_or_insert(e);
    };
    bar.set_length(opts.duration.as_millis() as u64);
    bar.set_position(0);
    let (samples, elapsed) = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(clients);
        for i in 0..clients {
            let (gate, connected, fail) = (&gate, &connected, &fail);
            let spawned = thread::Builder::new()
                .name(format!("bench client {i}"))
                .stack_size(CLIENT_STACK)
                .spawn_scoped(scope, move || {
                    let client = LabClient::connect(addr, opts.timeout);
                    if client.is_ok() {
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    // Everyone starts together, connected or not.
                    let start = gate.arrive();
                    match client {
                        Ok(client) => echo_loop(client, i, start + opts.duration, opts, fail),
                        Err(e) => {
                            fail(format!("client {i}: {e}"));
                            Vec::new()
                        }
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    fail(format!("cannot start client thread {i}: {e}"));
                    break;
                }
            }
        }
        // Every client has connected or failed (each within the timeout).
        let start = gate.open_when(handles.len(), opts.timeout * 2 + Duration::from_secs(5));
        let deadline = start + opts.duration;
        while Instant::now() < deadline {
            bar.set_position(start.elapsed().as_millis() as u64);
            thread::sleep(Duration::from_millis(50));
        }
        let samples: Vec<Vec<u64>> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect();
        (samples, start.elapsed())
    });
    bar.set_position(opts.duration.as_millis() as u64);
    let mut all: Vec<u64> = samples.into_iter().flatten().collect();
    let requests = all.len() as u64;
    let latency = Percentiles::of_nanos(&mut all);
    Ok(ConcurrencyRun {
        clients,
        connected: connected.into_inner() as usize,
        requests,
        errors: errors.into_inner(),
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_sec: per_sec(requests as f64, elapsed),
        latency,
        first_error: first_error.into_inner().unwrap(),
        samples_ns: all,
    })
}

/// The start line: clients arrive and wait; the main thread opens it once
/// all have arrived (or after a bound), and everyone gets the same start.
#[derive(Default)]
struct Gate {
    arrived: AtomicUsize,
    start: Mutex<Option<Instant>>,
    opened: Condvar,
}

impl Gate {
    /// A client is ready; waits for the start.
    fn arrive(&self) -> Instant {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let mut start = self.start.lock().unwrap();
        loop {
            if let Some(start) = *start {
                return start;
            }
            start = self.opened.wait(start).unwrap();
        }
    }

    /// Waits until `n` clients have arrived, at most `bound`, then starts them.
    fn open_when(&self, n: usize, bound: Duration) -> Instant {
        let until = Instant::now() + bound;
        while self.arrived.load(Ordering::SeqCst) < n && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        let now = Instant::now();
        *self.start.lock().unwrap() = Some(now);
        self.opened.notify_all();
        now
    }
}

/// `ECHO` in a loop until `deadline`; returns the round-trip times (ns). An
/// error ends this client.
fn echo_loop(
    client: LabClient,
    id: usize,
    deadline: Instant,
    opts: &Options,
    fail: &(dyn Fn(String) + Sync),
) -> Vec<u64> {
    let mut samples = Vec::new();
    let mut stream: TcpStream = match client.stream().try_clone() {
        Ok(s) => s,
        Err(e) => {
            fail(format!("client {id}: {e}"));
            return samples;
        }
    };
    if let Err(e) = stream
        .set_read_timeout(Some(opts.timeout))
        .and_then(|_| stream.set_write_timeout(Some(opts.timeout)))
    {
        fail(format!("client {id}: {e}"));
        return samples;
    }
    let mut buf = vec![0u8; MAX_RESPONSE_LINE + 2];
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let text = format!("bench {id} {seq}");
        let request = format!("ECHO {text}\n");
        let t0 = Instant::now();
        let answer = stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|_| read_line(&mut stream, &mut buf));
        let rtt = t0.elapsed();
        match answer {
            Ok(line) if line == text.as_bytes() => samples.push(rtt.as_nanos() as u64),
            Ok(line) => {
                fail(format!(
                    "client {id}: ECHO {text:?} answered {:?}",
                    String::from_utf8_lossy(line)
                ));
                break;
            }
            Err(e) => {
                fail(format!("client {id}: ECHO {text:?}: {e}"));
                break;
            }
        }
        seq += 1;
    }
    // QUIT politely; the device closes first. Its answer is not timed.
    let _ = client.quit();
    samples
}

/// Reads one answer line (one request in flight: nothing follows it).
fn read_line<'a>(stream: &mut TcpStream, buf: &'a mut [u8]) -> Result<&'a [u8], String> {
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|&b| b == b'\n') {
            let line = &buf[..end];
            return Ok(line.strip_suffix(b"\r").unwrap_or(line));
        }
        if len == buf.len() {
            return Err("answer line too long".into());
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Err("the device closed the connection".into()),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
