//! The lab cases: clients that send, read or not, close, reset or vanish
//! on varied pools, backlog policies and timeouts.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use socklab_app::protocol::{self, MAX_RESPONSE_LINE};
use socklab_app::{BacklogPolicy, Config, LabSizes, Sizes, Timeouts};

use super::{fuzz_config, PooledNet, DRAIN_MS, FUZZ_SIZES};
use crate::common::{lab_addr, syn_frame, tcp_of, Conn, Net, CLIENT_BUFFER, CLIENT_V4, CLIENT_V6};

/// How a lab client leaves at the end of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Stays connected, silent (reading or not, as it was).
    Linger,
    /// Closes its side (FIN) and goes on as it was.
    Close,
    /// Resets.
    Abort,
    /// Disappears: nothing it sends or is sent crosses the link any more.
    Vanish,
}

/// A lab client of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabClient {
    /// Connects over IPv6.
    pub v6: bool,
    /// Its receive buffer (its window), bytes.
    pub rx_buffer: usize,
    /// Nagle's algorithm on its socket.
    pub nagle: bool,
    /// Reads what it receives (at first; [`LabAct::Reading`] changes it).
    pub reading: bool,
    /// How it leaves.
    pub end: End,
}

/// One thing a lab client does. Client indexes wrap around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabAct {
    /// Queues as much of `bytes` as its transmit buffer takes.
    Send { client: usize, bytes: Vec<u8> },
    /// Lets time pass.
    Wait { ms: u16 },
    /// Starts or stops reading.
    Reading { client: usize, on: bool },
    /// Closes its side (FIN).
    Close { client: usize },
    /// Resets its connection.
    Abort { client: usize },
    /// Disappears from the link.
    Vanish { client: usize },
    /// A SYN from a new port that never completes its handshake (the
    /// device's answers are lost): one packet of a SYN flood.
    HalfOpen { v6: bool },
}

/// A lab case: the pool, the policy, the clients (connecting together
/// at the start) and what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabCase {
    /// The device's pool ([`FUZZ_SIZES`] or a variation of its lab part).
    pub sizes: Sizes,
    /// The device's backlog policy.
    pub policy: BacklogPolicy,
    /// The device's timeouts ([`FUZZ_TIMEOUTS`] or a variation: each at
    /// most a few seconds, so that [`DRAIN_MS`] outlasts any chain).
    pub timeouts: Timeouts,
    /// The clients, at least one.
    pub clients: Vec<LabClient>,
    /// What they do, in order.
    pub acts: Vec<LabAct>,
}

/// A client of a running lab case.
struct Running {
    conn: Conn,
    reading: bool,
    /// Lines received so far (the first must be `HELLO` or `ERR busy`).
    lines: usize,
}

/// Checks the lines a client received: each at most
/// [`MAX_RESPONSE_LINE`] bytes, the first a `HELLO` or `ERR busy`.
fn check_output(client: &mut Running) {
    while let Some(line) = client.conn.take_raw_line() {
        assert!(
            line.len() <= MAX_RESPONSE_LINE,
            "{}: a {}-byte line",
            client.conn.local,
            line.len()
        );
        if client.lines == 0 {
            assert!(
                line.starts_with(b"HELLO ") || line == protocol::ERR_BUSY.as_bytes(),
                "{}: first line {:?}",
                client.conn.local,
                String::from_utf8_lossy(&line)
            );
        }
        client.lines += 1;
    }
    assert!(
        client.conn.inbox.len() <= MAX_RESPONSE_LINE,
        "{}: {} bytes without a LF",
        client.conn.local,
        client.conn.inbox.len()
    );
}

/// Runs the net for `ms`, the reading clients reading as it goes.
fn pump(net: &mut Net, clients: &mut [Running], ms: u64) {
    net.run_until(ms, |net| {
        for client in clients.iter_mut().filter(|c| c.reading) {
            net.pull(&mut client.conn);
            check_output(client);
        }
        false
    });
}

/// Runs a lab case: the clients connect, act, leave as their [`End`]
/// says; then the clock passes every timeout, every connection's end
/// must be counted and the pool must be whole.
pub fn run_lab(case: &LabCase) {
    assert!(!case.clients.is_empty(), "a lab case needs a client");
    let config = Config {
        timeouts: case.timeouts,
        ..fuzz_config(case.policy)
    };
    let mut net = PooledNet::new(config, case.sizes);
    let vanished: Rc<RefCell<Vec<SocketAddr>>> = Rc::default();
    let gone = Rc::clone(&vanished);
    net.set_filter(move |_, frame| {
        let gone = gone.borrow();
        !tcp_of(frame).is_some_and(|t| gone.contains(&t.src) || gone.contains(&t.dst))
    });
    let mut clients: Vec<Running> = case
        .clients
        .iter()
        .map(|spec| {
            let conn = net.open_with(lab_addr(spec.v6), spec.rx_buffer, CLIENT_BUFFER);
            net.socket(&conn).set_nagle_enabled(spec.nagle);
            Running {
                conn,
                reading: spec.reading,
                lines: 0,
            }
        })
        .collect();
    pump(&mut net, &mut clients, 0);

    let n = clients.len();
    let mut half_open = 0u16;
    for act in &case.acts {
        match act {
            LabAct::Send { client, bytes } => {
                let socket = net.socket(&clients[client % n].conn);
                if socket.may_send() {
                    let _ = socket.send_slice(bytes);
                }
            }
            LabAct::Wait { ms } => pump(&mut net, &mut clients, u64::from(*ms)),
            LabAct::Reading { client, on } => clients[client % n].reading = *on,
            LabAct::Close { client } => net.socket(&clients[client % n].conn).close(),
            LabAct::Abort { client } => net.socket(&clients[client % n].conn).abort(),
            LabAct::Vanish { client } => {
                vanished.borrow_mut().push(clients[client % n].conn.local);
            }
            LabAct::HalfOpen { v6 } => {
                let ip: IpAddr = if *v6 {
                    CLIENT_V6.into()
                } else {
                    CLIENT_V4.into()
                };
                half_open += 1;
                let src = SocketAddr::new(ip, 50_000 + half_open);
                vanished.borrow_mut().push(src);
                net.inject(syn_frame(src, lab_addr(*v6), i32::from(half_open)));
            }
        }
        pump(&mut net, &mut clients, 0);
    }

    for (client, spec) in clients.iter().zip(&case.clients) {
        match spec.end {
            End::Linger => {}
            End::Close => net.socket(&client.conn).close(),
            End::Abort => net.socket(&client.conn).abort(),
            End::Vanish => vanished.borrow_mut().push(client.conn.local),
        }
    }
    pump(&mut net, &mut clients, DRAIN_MS);
    net.assert_no_end_uncounted();
    // A handshake the stack times out before the app does is counted as
    // a reset (tests/fuzz.rs: an ignored test shows it).
    if case.timeouts.dead_peer_ms > case.timeouts.handshake_ms {
        net.assert_no_end_counted_twice();
    }
    net.assert_pool_whole();
}

/// Timeouts from three choices (any numbers; each digit in base 4 picks
/// one timeout's value): idle and slow reader from the first, handshake
/// and closing from the second, keep-alive and dead peer from the third.
/// Every one is at most 4 s.
pub fn lab_timeouts(choices: [usize; 3]) -> Timeouts {
    const SHORT: [u64; 4] = [200, 700, 1_500, 4_000];
    let pick = |choice: usize, digit: u32| SHORT[(choice / 4usize.pow(digit)) % 4];
    Timeouts {
        idle_ms: pick(choices[0], 0),
        slow_reader_ms: pick(choices[0], 1),
        handshake_ms: pick(choices[1], 0),
        closing_ms: pick(choices[1], 1),
        keep_alive_ms: pick(choices[2], 0),
        dead_peer_ms: pick(choices[2], 1),
        http_request_ms: pick(choices[1], 0),
        http_idle_ms: pick(choices[0], 0),
    }
}

/// [`FUZZ_SIZES`] with `slots` (0 to 3: 1, 2, 2, 3) lab slots,
/// `backlog` (0 to 3: 0, 1, 1, 2) backlog places, and receive and
/// transmit buffers of choice `rx` and `tx` (0 to 3, from the smallest
/// allowed up).
pub fn lab_sizes(slots: usize, backlog: usize, rx: usize, tx: usize) -> Sizes {
    Sizes {
        lab: LabSizes {
            slots: [1, 2, 2, 3][slots % 4],
            backlog: [0, 1, 1, 2][backlog % 4],
            rx: [64, 128, 128, 1024][rx % 4],
            tx: [MAX_RESPONSE_LINE + 1, 512, 512, 4096][tx % 4],
        },
        ..FUZZ_SIZES
    }
}
