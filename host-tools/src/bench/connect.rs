//! Connection rate: K clients in parallel, each in a loop: connect to the lab
//! service, read `HELLO`, send `QUIT`, read `BYE` and the device's close.
//!
//! The device closes first, so the host side never holds `TIME_WAIT` and its
//! ephemeral ports do not run out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::{per_sec, Percentiles};
use super::{BenchError, Options, StepProgress, Target};
use crate::client::LabClient;

/// Stack of each client thread: they only parse short lines.
pub(crate) const CLIENT_STACK: usize = 256 * 1024;
/// Pause after a failed connection, so a refusing device is not hammered.
const BACKOFF: Duration = Duration::from_millis(1);

/// One connection-rate run.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectRun {
    /// Parallel clients.
    pub clients: usize,
    /// Complete connect-HELLO-QUIT-BYE-close cycles.
    pub connections: u64,
    /// Cycles that failed.
    pub failures: u64,
    /// From the start to the end of the last cycle, seconds.
    pub elapsed_s: f64,
    /// `connections` per second.
    pub per_sec: f64,
    /// Time of one whole cycle.
    pub cycle: Percentiles,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

/// Runs one connection-rate measurement for `opts.duration` (the caller has
/// entered the target's network).
pub fn run(
    target: &Target,
    opts: &Options,
    bar: &dyn StepProgress,
) -> Result<ConnectRun, BenchError> {
    let addr = target.lab_addr();
    let connections = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let start = Instant::now();
    let deadline = start + opts.duration;
    bar.set_length(opts.duration.as_millis() as u64);
    bar.set_position(0);
    let cycles: Vec<Vec<u64>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..opts.clients)
            .map(|i| {
                let (connections, failures, first_error) = (&connections, &failures, &first_error);
                thread::Builder::new()
                    .name(format!("bench connect {i}"))
                    .stack_size(CLIENT_STACK)
                    .spawn_scoped(scope, move || {
                        let mut cycles = Vec::new();
                        while Instant::now() < deadline {
                            let t0 = Instant::now();
                            let result = LabClient::connect(addr, opts.timeout)
                                .and_then(|client| client.quit());
                            match result {
                                Ok(()) => {
                                    cycles.push(t0.elapsed().as_nanos() as u64);
                                    connections.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    failures.fetch_add(1, Ordering::Relaxed);
                                    let mut first = first_error.lock().unwrap();
                                    first.get_or_insert_with(|| e.to_string());
                                    drop(first);
                                    thread::sleep(BACKOFF);
                                }
                            }
                        }
                        cycles
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| BenchError::Io {
                what: "starting client threads".into(),
                error: e,
            })?;
        // Progress while the clients work.
        while Instant::now() < deadline {
            bar.set_position(start.elapsed().as_millis() as u64);
            thread::sleep(Duration::from_millis(50));
        }
        Ok::<_, BenchError>(
            handles
                .into_iter()
                .map(|h| h.join().expect("client thread panicked"))
                .collect(),
        )
    })?;
    let elapsed = start.elapsed();
    bar.set_position(opts.duration.as_millis() as u64);
    let mut all: Vec<u64> = cycles.into_iter().flatten().collect();
    let connections = connections.into_inner();
    Ok(ConnectRun {
        clients: opts.clients,
        connections,
        failures: failures.into_inner(),
        elapsed_s: elapsed.as_secs_f64(),
        per_sec: per_sec(connections as f64, elapsed),
        cycle: Percentiles::of_nanos(&mut all),
        first_error: first_error.into_inner().unwrap(),
    })
}
