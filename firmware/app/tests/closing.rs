//! How connections end, on the simulated clock: a close the device starts
//! ends with FIN and ACK both ways and no reset while its slot serves the next
//! client; a slot reused after a reset handshake starts with fresh timers;
//! every timeout (the stack's and the app's) acts when due with no other
//! traffic to wake the device.

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use common::*;
use socklab_app::protocol::{self, info, LAB_PORT};
use socklab_app::smoltcp::socket::tcp::State;
use socklab_app::smoltcp::time::Instant;
use socklab_app::smoltcp::wire::{EthernetFrame, IpProtocol, Ipv4Packet, TcpPacket};
use socklab_app::{ClosingSizes, Config, Sizes, Timeouts};

/// One TCP segment seen on the link, with what the tests look at.
#[derive(Debug, Clone, Copy)]
struct Seg {
    dir: Dir,
    src_port: u16,
    dst_port: u16,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: usize,
}

/// The IPv4 TCP segment in `frame`, if it holds one.
fn seg(dir: Dir, frame: &[u8]) -> Option<Seg> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(Seg {
        dir,
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload().len(),
    })
}

fn value(info: &[(String, String)], key: &str) -> String {
    info.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("INFO has no {key}"))
        .1
        .clone()
}

fn lab_rows<'r>(rows: &'r [String], state: &str) -> Vec<&'r String> {
    rows.iter()
        .filter(|r| r.contains(&format!(":{LAB_PORT} ")) && r.contains(state))
        .collect()
}

/// QUIT: the device sends BYE and FIN, the client answers with its FIN.
/// The device acknowledges that FIN, sends no reset (also when its first ACK
/// is lost and the client retransmits its FIN), NETSTAT shows the TIME-WAIT
/// socket, and the slot listens again at once.
#[test]
fn a_close_the_device_starts_ends_in_time_wait_without_reset() {
    let mut net = Net::small();
    let (mut observer, _) = net.lab(false);
    let (mut c, slot) = net.lab(false);
    let port = c.local.port();
    net.set_capture(true);
    // The device's first ACK of the client's FIN is lost.
    let dropped = Rc::new(RefCell::new(0));
    let seen = dropped.clone();
    let client_fin_sent = Rc::new(RefCell::new(false));
    let fin_flag = client_fin_sent.clone();
    net.set_filter(move |dir, frame| {
        let Some(s) = seg(dir, frame) else {
            return true;
        };
        if dir == Dir::ToApp && s.src_port == port && s.fin {
            *fin_flag.borrow_mut() = true;
        }
        let pure_ack = dir == Dir::ToClient
            && s.dst_port == port
            && !s.fin
            && !s.syn
            && !s.rst
            && s.payload == 0;
        if pure_ack && *fin_flag.borrow() && *seen.borrow() == 0 {
            *seen.borrow_mut() += 1;
            return false;
        }
        true
    });
    assert_eq!(net.ask(&mut c, "QUIT"), protocol::BYE);
    assert!(net.run_until(1_000, |net| !net.socket(&c).may_recv()));
    net.socket(&c).close();
    // The client got the device's FIN first: it ends in CLOSED once its
    // own FIN is acknowledged (the device keeps the TIME-WAIT).
    assert!(
        net.run_until(5_000, |net| net.state(&c) == State::Closed),
        "client never got the ACK of its FIN: {}",
        net.state(&c)
    );
    assert_eq!(*dropped.borrow(), 1, "the first ACK was not dropped");

    let segs: Vec<Seg> = net
        .captured
        .iter()
        .filter_map(|(dir, f)| seg(*dir, f))
        .filter(|s| s.src_port == port || s.dst_port == port)
        .collect();
    let resets = segs.iter().filter(|s| s.rst).count();
    let client_fins = segs.iter().filter(|s| s.dir == Dir::ToApp && s.fin).count();
    let device_fins = segs
        .iter()
        .filter(|s| s.dir == Dir::ToClient && s.fin)
        .count();
    assert_eq!(resets, 0, "{segs:#?}");
    assert_eq!(device_fins, 1, "{segs:#?}");
    assert!(client_fins >= 2, "the client's FIN was not retransmitted");
    println!(
        "close: {client_fins} client FINs (one retransmitted after the lost ACK), {resets} RSTs"
    );

    // The close finishes apart from the slot: TIME-WAIT in NETSTAT, the slot
    // listening again, and the next client gets that same slot.
    let rows = net.netstat(&mut observer);
    assert_eq!(lab_rows(&rows, "TIME-WAIT").len(), 1, "{rows:#?}");
    assert_eq!(
        lab_rows(&rows, "LISTEN").len(),
        SMALL.lab.slots - 1,
        "{rows:#?}"
    );
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::CLOSING_IN_USE), "1");
    assert_eq!(value(&info, info::CONN_CLOSED), "1");
    let others: Vec<usize> = (1..SMALL.lab.slots).map(|_| net.lab(false).1).collect();
    assert!(
        others.contains(&slot),
        "slot {slot} not free at once: {others:?}"
    );

    // TIME-WAIT ends on the stack's timer, with nobody sending anything.
    net.run(11_000);
    let rows = net.netstat(&mut observer);
    assert!(lab_rows(&rows, "TIME-WAIT").is_empty(), "{rows:#?}");
}

/// A client that closes first: the device's LAST-ACK finishes on a pool
/// socket; no reset either way.
#[test]
fn a_close_the_client_starts_has_no_reset() {
    let mut net = Net::small();
    let (c, _) = net.lab(true);
    net.set_capture(true);
    net.socket(&c).close();
    assert!(net.wait_closed(&c, 2_000), "{}", net.state(&c));
    let resets = net
        .captured
        .iter()
        .filter(|(_, f)| tcp_of(f).is_some_and(|t| t.rst))
        .count();
    assert_eq!(resets, 0);
    net.run(100);
    assert_eq!(net.app.counters().closed, 1);
}

/// A port scan's half-open handshake (SYN, SYN-ACKs lost and backed off,
/// then the scanner's RST) leaves its socket listening; the next client on
/// that socket loses its first data segment and gets it again after the
/// fresh 1 s retransmission timeout, not the handshake's backed-off one.
#[test]
fn a_slot_reused_after_a_reset_handshake_retransmits_after_one_second() {
    let config = Config {
        timeouts: Timeouts {
            // Neither app timer may end the handshake first.
            handshake_ms: 120_000,
            dead_peer_ms: 120_000,
            ..Timeouts::default()
        },
        ..Config::default()
    };
    let mut net = Net::new(config, SMALL);
    let scanner = SocketAddr::new(CLIENT_V4.into(), 50_000);
    let lost = Rc::new(RefCell::new(true));
    let losing = lost.clone();
    let data_sent = Rc::new(RefCell::new(Vec::<bool>::new()));
    let data_log = data_sent.clone();
    let client_port = Rc::new(RefCell::new(0u16));
    let watched = client_port.clone();
    net.set_filter(move |dir, frame| {
        let Some(s) = seg(dir, frame) else {
            return true;
        };
        if dir == Dir::ToClient && s.dst_port == scanner.port() {
            // The SYN-ACKs to the scanner are lost until it is time to reset.
            return !*losing.borrow();
        }
        if dir == Dir::ToClient && s.dst_port == *watched.borrow() && s.payload > 0 {
            // The first data segment of the watched connection is lost.
            let mut log = data_log.borrow_mut();
            log.push(true);
            return log.len() > 1;
        }
        true
    });
    net.inject(syn_frame(scanner, lab_addr(false), 1));
    // SYN-ACKs at 0, 1, 3, 7 s: the socket's retransmission timeout is 8 s.
    net.run(7_500);
    // The next SYN-ACK (at 15 s) reaches the client's stack, which knows no
    // such connection and answers with RST: the device's socket listens again.
    *lost.borrow_mut() = false;
    net.set_capture(true);
    let reset = net.run_until(10_000, |net| {
        net.captured.iter().any(|(dir, f)| {
            *dir == Dir::ToApp && tcp_of(f).is_some_and(|t| t.rst && t.src == scanner)
        })
    });
    assert!(reset, "the scanner's stack never reset the handshake");
    net.set_capture(false);
    net.run(10);

    let (mut c, slot) = net.lab(false);
    assert_eq!(
        slot, 0,
        "the scanned socket (slot 0) should serve the client"
    );
    *client_port.borrow_mut() = c.local.port();
    data_sent.borrow_mut().clear();
    let sent_at = net.now;
    net.send_line(&c, "ECHO again");
    let mut answered_at: Option<Instant> = None;
    net.run_until(30_000, |net| {
        net.pull(&mut c);
        if c.inbox.ends_with(b"again\n") {
            answered_at = Some(net.now);
            true
        } else {
            false
        }
    });
    let answered_at = answered_at.expect("the lost reply never came again");
    let delay = (answered_at - sent_at).total_millis();
    println!("reused slot: first lost segment retransmitted after {delay} ms");
    assert!(
        data_sent.borrow().len() >= 2,
        "the reply was not lost once: {:?}",
        data_sent.borrow()
    );
    assert!(
        (900..=1_500).contains(&delay),
        "retransmitted after {delay} ms, a fresh socket takes 1000 ms"
    );
}

/// A config whose timeouts are short, to see when each one acts.
fn short_timeouts() -> Config {
    Config {
        timeouts: Timeouts {
            idle_ms: 4_000,
            dead_peer_ms: 3_000,
            keep_alive_ms: 1_000,
            closing_ms: 2_000,
            handshake_ms: 2_500,
            slow_reader_ms: 10_000,
            ..Timeouts::default()
        },
        ..Config::default()
    }
}

/// Runs until `done` or `max_ms`; returns the instant `done` first held.
fn when(net: &mut Net, max_ms: u64, mut done: impl FnMut(&mut Net) -> bool) -> Option<Instant> {
    let mut at = None;
    net.run_until(max_ms, |net| {
        if done(net) {
            at = Some(net.now);
            true
        } else {
            false
        }
    });
    at
}

/// The stack's dead-peer timeout: a client that vanishes (nothing it sends
/// arrives, and it sends nothing) frees its slot when the stack gives up on
/// it, at that very poll, with no other frame to wake the device.
#[test]
fn a_dead_peer_frees_its_slot_when_the_stack_gives_up() {
    let mut net = Net::new(short_timeouts(), SMALL);
    let (c, _) = net.lab(false);
    // The client vanishes: nothing crosses the link any more, and its
    // socket is gone, so only the device's own timers move the clock.
    net.set_capture(true);
    net.set_filter(|_, _| false);
    net.remove(c);
    let gone = net.now;
    let reset_at = when(&mut net, 60_000, |net| {
        net.frames_to_client()
            .any(|f| tcp_of(f).is_some_and(|t| t.rst))
    })
    .expect("the stack never gave up on the dead peer");
    let freed_at =
        when(&mut net, 60_000, |net| net.app.lab_in_use() == 0).expect("the slot was never freed");
    let late = (freed_at - reset_at).total_millis();
    println!(
        "dead peer: dropped by the stack {} ms after the client vanished, slot free {late} ms later",
        (reset_at - gone).total_millis()
    );
    assert_eq!(
        late, 0,
        "the slot was freed {late} ms after the stack's timeout"
    );
    // The slot listens again too (a new client is served).
    net.set_filter(|_, _| true);
    let (mut d, _) = net.lab(false);
    assert_eq!(net.ask(&mut d, "ECHO alive"), "alive");
}

/// The app's own timeouts: `BYE idle` comes at the idle deadline, and a
/// client that ignores the device's FIN is aborted at the closing deadline,
/// each on the millisecond, with no other traffic.
#[test]
fn the_apps_timeouts_act_when_due() {
    let config = short_timeouts();
    let t = config.timeouts;
    let mut net = Net::new(
        Config {
            timeouts: Timeouts {
                dead_peer_ms: 60_000,
                keep_alive_ms: 60_000,
                ..t
            },
            ..config
        },
        SMALL,
    );
    let (mut c, _) = net.lab(false);
    // Acknowledged at once, the last reply leaves nothing queued: the client
    // is silent from the moment it has its answer.
    net.socket(&c).set_ack_delay(None);
    assert_eq!(net.ask(&mut c, "ECHO last words"), "last words");
    let silent_since = net.now;
    let bye_at = when(&mut net, 20_000, |net| {
        net.pull(&mut c);
        c.inbox.ends_with(b"BYE idle\n")
    })
    .expect("no BYE idle");
    let idle_late = (bye_at - silent_since).total_millis() as i64 - t.idle_ms as i64;
    // The client never closes its side: the device aborts at the closing
    // deadline (the reset is the abort's).
    net.set_capture(true);
    let reset_at = when(&mut net, 20_000, |net| {
        net.frames_to_client()
            .any(|f| tcp_of(f).is_some_and(|t| t.rst))
    })
    .expect("the close never timed out");
    let closing_late = (reset_at - bye_at).total_millis() as i64 - t.closing_ms as i64;
    println!("idle timeout late by {idle_late} ms, closing timeout late by {closing_late} ms");
    assert_eq!(idle_late, 0);
    assert_eq!(closing_late, 0);
    assert_eq!(net.app.lab_in_use(), 0);
}

/// The closing pool's size is in INFO, and nothing is recycled before the
/// pool is full.
#[test]
fn info_shows_the_closing_pool() {
    let sizes = Sizes {
        closing: ClosingSizes {
            lab: 1,
            ..SMALL.closing
        },
        ..SMALL
    };
    let mut net = Net::new(Config::default(), sizes);
    let (mut observer, _) = net.lab(false);
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::LAB_CLOSING), "1");
    assert_eq!(
        value(&info, info::BULK_CLOSING),
        SMALL.closing.bulk.to_string()
    );
    assert_eq!(value(&info, info::TIME_WAIT_RECYCLED), "0");
}

/// A full closing pool recycles its oldest TIME-WAIT socket as soon as that
/// socket's last ACK has left, without waiting on the clock: two closes in
/// the same simulated instant through a pool of one lab socket, the second
/// takes the first's place, its slot listens again at once, and neither
/// client sees a reset.
#[test]
fn a_full_pool_recycles_a_time_wait_once_its_last_ack_has_left() {
    let sizes = Sizes {
        closing: ClosingSizes {
            lab: 1,
            ..SMALL.closing
        },
        ..SMALL
    };
    let mut net = Net::new(Config::default(), sizes);
    let (mut observer, _) = net.lab(false);
    net.set_capture(true);
    let start = net.now;
    let mut ports = Vec::new();
    for _ in 0..2 {
        let (mut c, _) = net.lab(false);
        ports.push(c.local.port());
        assert_eq!(net.ask(&mut c, "QUIT"), protocol::BYE);
        assert!(net.run_until(1_000, |net| !net.socket(&c).may_recv()));
        net.socket(&c).close();
        assert!(
            net.run_until(1_000, |net| net.state(&c) == State::Closed),
            "the client's FIN was not acknowledged: {}",
            net.state(&c)
        );
    }
    assert_eq!(net.now, start, "the closes took simulated time");
    let resets: Vec<Seg> = net
        .captured
        .iter()
        .filter_map(|(dir, f)| seg(*dir, f))
        .filter(|s| s.rst)
        .collect();
    assert!(resets.is_empty(), "{resets:#?}");
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::TIME_WAIT_RECYCLED), "1");
    // Only the second close is left in TIME-WAIT; every slot but the
    // observer's listens.
    let rows = net.netstat(&mut observer);
    let waits = lab_rows(&rows, "TIME-WAIT");
    assert_eq!(waits.len(), 1, "{rows:#?}");
    assert!(waits[0].contains(&format!(":{} ", ports[1])), "{rows:#?}");
    assert_eq!(
        lab_rows(&rows, "LISTEN").len(),
        SMALL.lab.slots - 1,
        "{rows:#?}"
    );
}

/// A client that connects again from the same port while the device still
/// holds its previous connection in TIME-WAIT gets in at once, as with
/// Linux: its SYN frees that TIME-WAIT socket and reaches a listener, with
/// no challenge ACK and no reset on the way.
#[test]
fn a_syn_for_a_time_wait_four_tuple_reaches_a_listener() {
    let mut net = Net::small();
    let (mut observer, _) = net.lab(false);
    let port = net.next_port;
    let (mut c, _) = net.lab(false);
    assert_eq!(c.local.port(), port);
    assert_eq!(net.ask(&mut c, "QUIT"), protocol::BYE);
    assert!(net.run_until(1_000, |net| !net.socket(&c).may_recv()));
    net.socket(&c).close();
    assert!(net.run_until(1_000, |net| net.state(&c) == State::Closed));
    net.remove(c);
    let rows = net.netstat(&mut observer);
    let waits = lab_rows(&rows, "TIME-WAIT");
    assert_eq!(waits.len(), 1, "{rows:#?}");
    assert!(waits[0].contains(&format!(":{port} ")), "{rows:#?}");

    net.set_capture(true);
    net.next_port = port;
    let start = net.now;
    let (mut again, _) = net.lab(false);
    assert_eq!(again.local.port(), port);
    assert_eq!(net.now, start, "the SYN was not answered at once");
    let segs: Vec<Seg> = net
        .captured
        .iter()
        .filter_map(|(dir, f)| seg(*dir, f))
        .filter(|s| s.src_port == port || s.dst_port == port)
        .collect();
    assert!(segs.iter().all(|s| !s.rst), "{segs:#?}");
    // The device's first segment is its SYN-ACK, not a challenge ACK.
    let first = segs.iter().find(|s| s.dir == Dir::ToClient);
    assert!(first.is_some_and(|s| s.syn), "{segs:#?}");
    assert_eq!(net.ask(&mut again, "ECHO again"), "again");
    let rows = net.netstat(&mut observer);
    assert!(lab_rows(&rows, "TIME-WAIT").is_empty(), "{rows:#?}");
}
