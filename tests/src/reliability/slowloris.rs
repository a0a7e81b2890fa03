//! Slowloris: clients that send half a command and go silent get
//! `BYE idle` while newcomers are served.

use std::io::{ErrorKind, Write};
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::protocol::{self, info, LAB_PORT};
use socklab_host::client::{ClientError, LabClient};

use super::{client, figures, info_of, ms, num, wait_all_listening, Pool, HALF_LINE, WAIT};
use crate::{eventually, BoardKind, Dut};

/// The idle timeout slowloris runs with (`--idle-timeout-ms`).
pub const SLOWLORIS_IDLE_MS: u64 = 2000;

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
