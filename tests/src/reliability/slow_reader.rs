//! The slow reader: a client that stops reading is disconnected, and the
//! fast clients lose nothing.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::protocol::info;
use socklab_host::client::{ClientError, LabClient, Message};

use super::{
    connect_from, figures, in_net, info_of, ms, num, quiet_link, tcp_state, wait_io, Latency,
    TCP_CLOSE, WAIT,
};
use crate::{BoardKind, Dut};

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
