//! Round-trip latency: 64-byte ping-pong on echo (7), one message in flight,
//! `TCP_NODELAY`, optionally with both ends pinned to one CPU.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use socklab_app::protocol::ECHO_PORT;

use super::pin::{self, PinnedProcess};
use super::stats::Percentiles;
use super::{BenchError, Options, StepProgress, Target};

/// Bytes per ping.
pub const MESSAGE: usize = 64;
/// Longest a latency run may take; it ends early with fewer samples.
pub const MAX_RUN: Duration = Duration::from_secs(60);

/// How the two ends were placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pinning {
    /// The CPU, if the bench thread was pinned.
    pub cpu: Option<usize>,
    /// True if the target's process was pinned to that CPU too.
    pub target_pinned: bool,
}

/// One latency run.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRun {
    /// Where the ends ran.
    pub pinning: Pinning,
    /// Bytes per message.
    pub message_bytes: usize,
    /// Round trips timed (after the warm-up).
    pub round_trips: usize,
    /// Their percentiles.
    pub percentiles: Percentiles,
    /// The samples, nanoseconds, sorted (for the CDF; not in the JSON).
    #[serde(skip)]
    pub samples_ns: Vec<u64>,
}

/// Runs one latency measurement: `opts.warmup` round trips, then
/// `opts.count` timed ones (at most [`MAX_RUN`]). The caller has entered the
/// target's network; this spawns its own thread so that pinning it leaves
/// the caller alone.
pub fn run(
    target: &Target,
    opts: &Options,
    bar: &dyn StepProgress,
) -> Result<LatencyRun, BenchError> {
    // The target's process is pinned first and unpinned when `_pinned` drops.
    let _pinned = match (opts.pin, target.pid) {
        (Some(cpu), Some(pid)) => {
            Some(
                PinnedProcess::pin(pid, cpu).map_err(|error| BenchError::Io {
                    what: format!("{}: pinning process {pid} to CPU {cpu}", target.name),
                    error,
                })?,
            )
        }
        _ => None,
    };
    let pinning = Pinning {
        cpu: opts.pin,
        target_pinned: _pinned.is_some(),
    };
    thread::scope(|scope| {
        thread::Builder::new()
            .name("bench latency".into())
            .spawn_scoped(scope, || ping_pong(target, opts, bar, pinning))
            .expect("spawning a thread")
            .join()
            .expect("latency thread panicked")
    })
}

fn ping_pong(
    target: &Target,
    opts: &Options,
    bar: &dyn StepProgress,
    pinning: Pinning,
) -> Result<LatencyRun, BenchError> {
    let io = |what: &str, error| BenchError::Io {
        what: format!("{}: {what}", target.name),
        error,
    };
    if let Some(cpu) = pinning.cpu {
        pin::pin_current_thread(cpu).map_err(|e| io(&format!("pinning to CPU {cpu}"), e))?;
    }
    let addr = target.addr(ECHO_PORT);
    let mut stream = TcpStream::connect_timeout(&addr, opts.timeout)
        .map_err(|e| io(&format!("connecting to {addr}"), e))?;
    stream
        .set_nodelay(true)
        .and_then(|_| stream.set_read_timeout(Some(opts.timeout)))
        .and_then(|_| stream.set_write_timeout(Some(opts.timeout)))
        .map_err(|e| io("setting socket options", e))?;
    let total = opts.warmup + opts.count;
    bar.set_length(total as u64);
    bar.set_position(0);
    let mut samples = Vec::with_capacity(opts.count);
    let mut out = [0u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let start = Instant::now();
    for i in 0..total {
        out[..8].copy_from_slice(&(i as u64).to_le_bytes());
        out[8..].fill(b'a' + (i % 26) as u8);
        let t0 = Instant::now();
        stream
            .write_all(&out)
            .map_err(|e| io(&format!("sending ping {i} to {addr}"), e))?;
        stream
            .read_exact(&mut back)
            .map_err(|e| io(&format!("waiting for echo {i} from {addr}"), e))?;
        let rtt = t0.elapsed();
        if back != out {
            return Err(BenchError::Corrupt {
                target: target.name.clone(),
                service: addr,
                offset: (i * MESSAGE) as u64,
            });
        }
        if i >= opts.warmup {
            samples.push(rtt.as_nanos() as u64);
        }
        if i % 256 == 0 {
            bar.set_position(i as u64);
            if start.elapsed() > MAX_RUN {
                break;
            }
        }
    }
    bar.set_position(total as u64);
    let percentiles = Percentiles::of_nanos(&mut samples);
    Ok(LatencyRun {
        pinning,
        message_bytes: MESSAGE,
        round_trips: samples.len(),
        percentiles,
        samples_ns: samples,
    })
}
