//! The application end to end, in process: the lab protocol, the pool, the
//! timeouts, the bulk services and ping, over an in-memory Ethernet link with
//! a smoltcp client on the other end and a simulated clock.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{
    device, device_v4, device_v6, echo_reply_of, lab_addr, ping_frame, syn_frame, tcp_of, Conn,
    Dir, Net, CLIENT_V4, CLIENT_V6, SMALL,
};
use socklab_app::protocol::{
    self, info, Hello, NetstatRow, SockName, WhoRow, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT,
    LAB_PORT,
};
use socklab_app::services;
use socklab_app::smoltcp::socket::tcp::State;
use socklab_app::{
    config, BoardRam, BoardStatus, BootReason, ClosingSizes, Config, LabSizes, Sizes, StackMeter,
    Timeouts, RAM,
};

/// A config with `timeouts` and the defaults otherwise.
fn with_timeouts(timeouts: Timeouts) -> Config {
    Config {
        timeouts,
        ..Config::default()
    }
}

/// `NETSTAT` rows parsed.
fn parse_rows(rows: &[String]) -> Vec<NetstatRow<'_>> {
    rows.iter()
        .map(|row| NetstatRow::parse(row).unwrap_or_else(|e| panic!("`{row}`: {e}")))
        .collect()
}

/// The listening row of `port`, exactly as the README's protocol table writes it.
fn listen_row(port: u16) -> String {
    format!("tcp *:{port} *:* LISTEN 0 0")
}

/// The value of `key` in an `INFO` answer.
fn value<'i>(info: &'i [(String, String)], key: &str) -> &'i str {
    info.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("INFO has no `{key}`"))
}

/// Quits a lab client the polite way: `QUIT`, `BYE`, the device's FIN, our close.
fn quit(net: &mut Net, mut conn: Conn) {
    assert_eq!(net.ask(&mut conn, "QUIT"), protocol::BYE);
    assert!(
        net.run_until(1_000, |net| !net.socket(&conn).may_recv()),
        "no FIN after BYE"
    );
    net.socket(&conn).close();
    assert!(net.wait_closed(&conn, 1_000), "{}", net.state(&conn));
    net.remove(conn);
}

/// Counts the rows of `rows` on `port` in `state`.
fn count(rows: &[NetstatRow<'_>], port: u16, state: &str) -> usize {
    rows.iter()
        .filter(|r| r.local.port() == Some(port) && r.state == state)
        .count()
}

// ---------------------------------------------------------------------------
// The lab protocol, row by row

#[test]
fn hello_names_slot_peer_and_local() {
    let mut net = Net::small();
    let mut first = net.connect(lab_addr(false));
    let line = net.line(&mut first);
    assert_eq!(
        line,
        format!(
            "HELLO socklab/{} slot=0 peer=192.168.69.100:40000 local=192.168.69.1:6666",
            protocol::VERSION
        )
    );
    let hello = Hello::parse(&line).unwrap();
    assert_eq!(hello.version, protocol::VERSION);
    assert_eq!(hello.slot, 0);
    assert_eq!(hello.peer, first.local);
    assert_eq!(hello.local, "192.168.69.1:6666".parse().unwrap());

    let (_second, slot) = net.lab(false);
    assert_eq!(slot, 1);
    assert_eq!(net.app.lab_in_use(), 2);
}

#[test]
fn echo_answers_the_text_verbatim() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    assert_eq!(net.ask(&mut c, "ECHO hello world"), "hello world");
    assert_eq!(net.ask(&mut c, "ECHO  two  spaces "), " two  spaces ");
    assert_eq!(net.ask(&mut c, "ECHO"), "");
    assert_eq!(net.ask(&mut c, "ECHO "), "");
    assert_eq!(net.ask(&mut c, "ECHO SAY WHO QUIT"), "SAY WHO QUIT");
    // Bytes that are not UTF-8 come back as they were.
    net.send(&c, b"ECHO \xff\x00\xfebin\n");
    let mut raw = None;
    net.run_until(1_000, |net| {
        net.pull(&mut c);
        raw = c.take_raw_line();
        raw.is_some()
    });
    assert_eq!(raw.as_deref(), Some(&b"\xff\x00\xfebin"[..]));
    net.quiet(&mut c, 100);
}

#[test]
fn say_answers_ok_and_reaches_every_other_client() {
    let mut net = Net::small();
    let (mut a, _) = net.lab(false);
    let (mut b, _) = net.lab(false);
    let (mut c, _) = net.lab(true);

    assert_eq!(net.ask(&mut a, "SAY hello all"), protocol::OK);
    for other in [&mut b, &mut c] {
        let line = net.line(other);
        assert_eq!(line, format!("FROM {} hello all", a.local));
        let from = protocol::From::parse(&line).unwrap();
        assert_eq!(from.sender, a.local);
        assert_eq!(from.text, "hello all");
    }
    // The sender hears only its OK.
    net.quiet(&mut a, 200);

    assert_eq!(net.ask(&mut c, "SAY  from v6 "), protocol::OK);
    assert_eq!(net.line(&mut a), format!("FROM {}  from v6 ", c.local));
    assert_eq!(net.line(&mut b), format!("FROM {}  from v6 ", c.local));
    net.quiet(&mut c, 200);

    // Alone, a SAY is still answered.
    quit(&mut net, a);
    quit(&mut net, c);
    assert_eq!(net.ask(&mut b, "SAY anyone?"), protocol::OK);
    net.quiet(&mut b, 200);
}

#[test]
fn who_lists_every_connected_client() {
    let mut net = Net::small();
    let (mut a, slot_a) = net.lab(false);
    let (b, slot_b) = net.lab(true);
    let (c, slot_c) = net.lab(false);

    let rows = net.ask_multi(&mut a, "WHO");
    assert_eq!(
        rows,
        vec![
            format!("{slot_a} {}", a.local),
            format!("{slot_b} {}", b.local),
            format!("{slot_c} {}", c.local),
        ]
    );
    let parsed: Vec<WhoRow> = rows.iter().map(|r| WhoRow::parse(r).unwrap()).collect();
    assert_eq!(parsed[1].peer, b.local);

    quit(&mut net, b);
    let rows = net.ask_multi(&mut a, "WHO");
    assert_eq!(
        rows,
        vec![
            format!("{slot_a} {}", a.local),
            format!("{slot_c} {}", c.local)
        ]
    );
}

#[test]
fn netstat_lists_every_socket_listening_ones_too() {
    let mut net = Net::small();
    let (mut a, _) = net.lab(false);
    let (b, _) = net.lab(true);
    let echo = net.connect(device(false, ECHO_PORT));
    // Every delayed ACK is in: nothing is left unacknowledged.
    net.run(100);

    let rows = net.netstat(&mut a);
    let parsed = parse_rows(&rows);
    assert_eq!(rows.len(), SMALL.service_sockets(), "{rows:#?}");

    // Every idle lab slot and every idle bulk socket listens, as the README's protocol table writes it.
    let listening = |port| rows.iter().filter(|r| **r == listen_row(port)).count();
    assert_eq!(listening(LAB_PORT), SMALL.lab.slots - 2);
    assert_eq!(listening(ECHO_PORT), SMALL.bulk.slots - 1);
    if cfg!(feature = "discard-chargen") {
        assert_eq!(listening(DISCARD_PORT), SMALL.bulk.slots);
        assert_eq!(listening(CHARGEN_PORT), SMALL.bulk.slots);
    }

    // The connections, with both ends.
    for conn in [&a, &b, &echo] {
        let row = parsed
            .iter()
            .find(|r| r.remote == SockName::Addr(conn.local))
            .unwrap_or_else(|| panic!("no row for {}: {rows:#?}", conn.local));
        assert_eq!(row.local, SockName::Addr(conn.remote));
        assert_eq!(row.state, "ESTABLISHED");
    }
    // The idle ones have nothing queued.
    let b_row = parsed
        .iter()
        .find(|r| r.remote == SockName::Addr(b.local))
        .unwrap();
    assert_eq!((b_row.rx_queued, b_row.tx_queued), (0, 0));
    assert_eq!(
        parsed
            .iter()
            .filter(|r| r.proto == protocol::TCP && r.state != "LISTEN")
            .count(),
        3,
        "{rows:#?}"
    );
}

/// Every `INFO` key of the service table has a value of its own: no key is
/// left to the `none` fallback (ipv4 is static, offload, the board's status
/// and its RAM pools given here).
#[test]
fn every_info_key_has_its_own_value_in_table_order() {
    fn stack_used() -> usize {
        1234
    }
    let config = Config {
        offload: "on",
        status: BoardStatus {
            boot_reason: Some(BootReason::Watchdog),
            boot_count: Some(3),
            stack_reserved: Some(65536),
            stack_used: Some(StackMeter(stack_used)),
            watchdog_ms: Some(2000),
        },
        ..Config::default()
    };
    let board = BoardRam {
        nic: 1,
        dma: 2,
        bad_link: 3,
        handler_stack: 4,
        stack: 65536,
    };
    let ram = SMALL.ram().with_board(board);
    RAM.record(&ram);
    let mut net = Net::new(config, SMALL);
    let (mut a, _) = net.lab(false);
    let info = net.info(&mut a);
    assert_eq!(info.len(), services::INFO_KEYS.len());
    for ((key, value), expected) in info.iter().zip(services::INFO_KEYS) {
        assert_eq!(key, expected);
        assert!(!value.is_empty() && value != info::NONE, "{key}={value}");
    }
    for (key, expected) in [
        (info::BOOT_REASON, "watchdog"),
        (info::BOOT_COUNT, "3"),
        (info::STACK_USED, "1234"),
        (info::STACK_RESERVED, "65536"),
        (info::WATCHDOG_MS, "2000"),
        (info::RAM_LAB, &ram.lab.to_string()),
        (info::RAM_NIC, "1"),
        (info::RAM_DMA, "2"),
        (info::RAM_BAD_LINK, "3"),
        (info::RAM_HANDLER_STACK, "4"),
        (info::RAM_STACK, "65536"),
        (info::RAM_TOTAL, &(SMALL.total_bytes() + 65546).to_string()),
    ] {
        assert_eq!(value(&info, key), expected, "{key}");
    }
}

/// Lines `INFO` answers before `END`: one per key of the protocol's table.
const INFO_KEYS: usize = services::INFO_KEYS.len();

#[test]
fn info_reports_every_key_then_end() {
    let mut net = Net::small();
    let (mut a, _) = net.lab(false);
    let (_b, _) = net.lab(true);
    let info = net.info(&mut a);
    let keys: Vec<&str> = info.iter().map(|(k, _)| k.as_str()).collect();
    // In the protocol table's order, every key once.
    assert_eq!(keys, services::INFO_KEYS);
    let v = |key| value(&info, key);
    assert_eq!(v(info::BOARD), "unknown");
    assert_eq!(v(info::VERSION), protocol::VERSION);
    assert_eq!(v(info::MAC), "02:00:00:00:00:01");
    assert_eq!(v(info::IPV4), "192.168.69.1/24");
    assert_eq!(v(info::IPV6), "fdaa::1/64");
    assert_eq!(v(info::IPV4_SOURCE), "static");
    assert_eq!(v(info::MTU), "1500");
    assert_eq!(v(info::OFFLOAD), "none");
    assert_eq!(v(info::MGMT_SOCKETS), services::MGMT_SOCKETS.to_string());
    // The small pool has no iperf servers.
    if cfg!(feature = "iperf3") {
        assert_eq!(v(info::IPERF3_SOCKETS), "0");
    }
    if cfg!(feature = "iperf2") {
        assert_eq!(v(info::IPERF2_SOCKETS), "0");
    }
    let uptime: i64 = v(info::UPTIME_MS).parse().unwrap();
    assert!(
        uptime > 0 && uptime <= net.now.total_millis() - 1_000,
        "{uptime}"
    );
    assert_eq!(v(info::LAB_SLOTS), "4");
    assert_eq!(v(info::LAB_IN_USE), "2");
    assert_eq!(v(info::LAB_RX_BUFFER), "1024");
    assert_eq!(v(info::LAB_TX_BUFFER), "2048");
    assert_eq!(v(info::BULK_SLOTS), "2");
    assert_eq!(v(info::BULK_RX_BUFFER), "4096");
    assert_eq!(v(info::BULK_TX_BUFFER), "4096");
    assert_eq!(v(info::BUFFER_BYTES), SMALL.buffer_bytes().to_string());
    assert_eq!(v(info::IDLE_TIMEOUT_MS), "120000");
    assert_eq!(v(info::SLOW_READER_TIMEOUT_MS), "10000");
    assert_eq!(v(info::HANDSHAKE_TIMEOUT_MS), "5000");
    let frames_rx: u64 = v(info::FRAMES_RX).parse().unwrap();
    let frames_tx: u64 = v(info::FRAMES_TX).parse().unwrap();
    assert!(frames_rx > 0 && frames_rx <= net.app.counters().frames_rx);
    assert!(frames_tx > 0 && frames_tx <= net.app.counters().frames_tx);
    assert_eq!(v(info::CONN_ACCEPTED), "2");
    assert_eq!(v(info::CONN_REFUSED), "0");
    assert_eq!(v(info::CONN_TIMED_OUT), "0");
    assert_eq!(v(info::CONN_RESET), "0");
    assert_eq!(v(info::CONN_CLOSED), "0");
    assert_eq!(v(info::LINES_TOO_LONG), "0");
    assert_eq!(v(info::LAB_BACKLOG), "0");
    assert_eq!(v(info::LAB_QUEUED), "0");
    assert_eq!(v(info::BACKLOG_POLICY), "wait");
    assert_eq!(v(info::CONN_BUSY), "0");
    assert_eq!(v(info::CLOSING_TIMEOUT_MS), "5000");
}

/// `sockets` is documented as "Total TCP sockets of the device": the rows
/// `NETSTAT` lists. The app reports `Sizes::sockets()`, which also counts the
/// DHCP socket slot (and counts it even when DHCP is off).
#[test]
fn info_sockets_is_the_number_of_tcp_sockets() {
    let mut net = Net::small();
    let (mut a, _) = net.lab(false);
    let rows = net.netstat(&mut a).len();
    let info = net.info(&mut a);
    assert_eq!(value(&info, info::SOCKETS), rows.to_string());
}

#[test]
fn quit_says_bye_then_the_device_closes() {
    let mut net = Net::small();
    let (mut observer, _) = net.lab(false);
    let (mut a, slot) = net.lab(false);
    assert_eq!(net.ask(&mut a, "QUIT"), "BYE");
    // The device's FIN follows the BYE; nothing else does.
    assert!(net.run_until(1_000, |net| !net.socket(&a).may_recv()));
    assert_eq!(net.state(&a), State::CloseWait);
    // A closing client's further lines are not answered.
    net.send_line(&a, "ECHO too late");
    net.quiet(&mut a, 200);
    net.socket(&a).close();
    assert!(net.wait_closed(&a, 1_000));
    assert_eq!(net.app.lab_in_use(), 1);

    let rows = net.netstat(&mut observer);
    assert_eq!(rows[slot], listen_row(LAB_PORT), "{rows:#?}");
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::CONN_CLOSED), "1");
    assert_eq!(value(&info, info::CONN_RESET), "0");
}

#[test]
fn empty_lines_get_no_answer() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    net.send(&c, b"\n\r\n\n\r\n");
    net.quiet(&mut c, 200);
    assert_eq!(net.ask(&mut c, "ECHO after"), "after");
    net.send(&c, b"\nECHO between\n\n");
    assert_eq!(net.line(&mut c), "between");
    net.quiet(&mut c, 200);
}

#[test]
fn anything_else_is_an_unknown_command() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    for line in [
        "FOO",
        "WHO extra",
        "INFO please",
        "QUIT now",
        "ECHOX hi",
        "SAYhi",
        " ECHO leading space",
        "\u{e9}cho",
        "\t",
    ] {
        assert_eq!(net.ask(&mut c, line), protocol::ERR_UNKNOWN, "{line:?}");
    }
    assert_eq!(net.ask(&mut c, "ECHO still here"), "still here");
}

#[test]
fn overlong_line_is_refused_and_the_connection_stays_usable() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);

    let long = format!("ECHO {}", "A".repeat(995));
    assert_eq!(long.len(), 1000);
    assert_eq!(net.ask(&mut c, &long), protocol::ERR_TOO_LONG);
    assert_eq!(net.ask(&mut c, "ECHO still answering"), "still answering");

    // Longer than the device's receive buffer, in pieces, with pauses.
    let huge = "B".repeat(5_000);
    for piece in huge.as_bytes().chunks(700) {
        net.send(&c, piece);
        net.run(30);
    }
    net.send(&c, b"\r\n");
    assert_eq!(net.line(&mut c), protocol::ERR_TOO_LONG);
    assert_eq!(net.ask(&mut c, "ECHO once"), "once");
    net.quiet(&mut c, 200);

    let info = net.info(&mut c);
    assert_eq!(value(&info, info::LINES_TOO_LONG), "2");
}

#[test]
fn the_line_limit_is_256_bytes_before_the_terminator() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    let text = "x".repeat(protocol::MAX_LINE - "ECHO ".len());
    let at_limit = format!("ECHO {text}");
    assert_eq!(at_limit.len(), 256);

    assert_eq!(net.ask(&mut c, &format!("{at_limit}\r")), text);
    assert_eq!(net.ask(&mut c, &at_limit), text);
    assert_eq!(
        net.ask(&mut c, &format!("{at_limit}y")),
        protocol::ERR_TOO_LONG
    );
    assert_eq!(
        net.ask(&mut c, &format!("{at_limit}y\r")),
        protocol::ERR_TOO_LONG
    );
    assert_eq!(net.ask(&mut c, "ECHO ok"), "ok");
    net.quiet(&mut c, 100);
}

#[test]
fn command_words_are_case_insensitive_and_crlf_is_accepted() {
    let mut net = Net::small();
    let (mut a, slot_a) = net.lab(false);
    let (mut b, _) = net.lab(false);
    assert_eq!(net.ask(&mut a, "echo lower"), "lower");
    assert_eq!(net.ask(&mut a, "eChO Mixed Case\r"), "Mixed Case");
    assert_eq!(
        net.ask_multi(&mut a, "who\r"),
        vec![
            format!("{slot_a} {}", a.local),
            format!("{} {}", slot_a + 1, b.local)
        ]
    );
    assert_eq!(
        net.ask_multi(&mut a, "NetStat").len(),
        SMALL.service_sockets()
    );
    assert_eq!(net.ask_multi(&mut a, "iNfO\r").len(), INFO_KEYS);
    assert_eq!(net.ask(&mut a, "say quiet please\r"), protocol::OK);
    assert_eq!(net.line(&mut b), format!("FROM {} quiet please", a.local));
    assert_eq!(net.ask(&mut a, "Quit\r"), protocol::BYE);
    assert!(net.run_until(1_000, |net| !net.socket(&a).may_recv()));
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut net = Net::small();
    let (mut c, slot) = net.lab(false);
    net.send(&c, b"ECHO one\r\nWHO\nNETSTAT\nINFO\nBOGUS\n\nECHO two\n");
    assert_eq!(net.line(&mut c), "one");
    assert_eq!(
        net.lines_to_end(&mut c),
        vec![format!("{slot} {}", c.local)]
    );
    let rows = net.lines_to_end(&mut c);
    assert_eq!(rows.len(), SMALL.service_sockets());
    parse_rows(&rows);
    assert_eq!(net.lines_to_end(&mut c).len(), INFO_KEYS);
    assert_eq!(net.line(&mut c), protocol::ERR_UNKNOWN);
    assert_eq!(net.line(&mut c), "two");
    net.quiet(&mut c, 100);
}

#[test]
fn binary_garbage_is_answered_and_the_connection_survives() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    // A fixed xorshift stream: every run sends the same bytes.
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // About one LF in 85 bytes, so that lines of many lengths occur.
            if x >> 24 < 3 {
                b'\n'
            } else {
                x as u8
            }
        })
        .collect();
    let mut sent = 0;
    let mut lines = Vec::new();
    let done = net.run_until(30_000, |net| {
        let socket = net.socket(&c);
        if sent < garbage.len() && socket.can_send() {
            sent += socket.send_slice(&garbage[sent..]).unwrap();
        }
        net.pull(&mut c);
        while let Some(line) = c.take_raw_line() {
            lines.push(line);
        }
        sent == garbage.len()
    });
    assert!(done, "only {sent} bytes taken");
    net.send(&c, b"\nECHO alive\n");
    let found = net.run_until(5_000, |net| {
        net.pull(&mut c);
        while let Some(line) = c.take_raw_line() {
            if line == b"alive" {
                return true;
            }
            lines.push(line);
        }
        false
    });
    assert!(found, "no answer after the garbage");
    let errors = [protocol::ERR_UNKNOWN, protocol::ERR_TOO_LONG];
    assert!(
        lines
            .iter()
            .all(|l| errors.iter().any(|e| l == e.as_bytes())),
        "unexpected answers to garbage"
    );
    assert!(lines.len() > 100, "{}", lines.len());
}

#[test]
fn a_half_close_after_a_command_is_answered_then_closed() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    net.send(&c, b"ECHO last words\nWHO\n");
    net.socket(&c).close();
    assert_eq!(net.line(&mut c), "last words");
    assert_eq!(net.lines_to_end(&mut c).len(), 1);
    assert!(net.wait_closed(&c, 2_000), "{}", net.state(&c));
    // The client's last ACK may be delayed: give it time to arrive.
    net.run(100);
    assert_eq!(net.app.lab_in_use(), 0);
    assert_eq!(net.app.counters().closed, 1);
}

// ---------------------------------------------------------------------------
// IPv6

#[test]
fn ipv6_session() {
    let mut net = Net::small();
    let (mut v6, slot) = net.lab(true);
    assert_eq!(v6.local, SocketAddr::new(CLIENT_V6.into(), 40_000));
    assert_eq!(v6.remote.to_string(), "[fdaa::1]:6666");
    assert_eq!(net.ask(&mut v6, "ECHO over v6"), "over v6");

    let (mut v4, _) = net.lab(false);
    assert_eq!(
        net.ask_multi(&mut v4, "WHO")[0],
        format!("{slot} [fdaa::100]:40000")
    );
    assert_eq!(net.ask(&mut v6, "SAY hi from six"), protocol::OK);
    assert_eq!(net.line(&mut v4), "FROM [fdaa::100]:40000 hi from six");

    let rows = net.netstat(&mut v6);
    assert!(
        rows.contains(&"tcp [fdaa::1]:6666 [fdaa::100]:40000 ESTABLISHED 0 0".to_owned()),
        "{rows:#?}"
    );
    quit(&mut net, v6);
    assert_eq!(net.app.lab_in_use(), 1);
}

// ---------------------------------------------------------------------------
// The pool

#[test]
fn the_pool_serves_every_slot_and_refuses_the_next_client() {
    let mut net = Net::small();
    net.set_capture(true);
    // All at once: SYNs cross the link together.
    let mut conns: Vec<Conn> = (0..SMALL.lab.slots)
        .map(|i| net.open(lab_addr(i % 2 == 1)))
        .collect();
    let mut slots: Vec<usize> = conns
        .iter_mut()
        .map(|c| {
            net.established(c);
            net.hello(c)
        })
        .collect();
    slots.sort();
    assert_eq!(slots, (0..SMALL.lab.slots).collect::<Vec<_>>());
    assert_eq!(net.app.lab_in_use(), SMALL.lab.slots);

    let extra = net.open(lab_addr(false));
    assert!(net.wait_closed(&extra, 2_000));
    assert_eq!(net.state(&extra), State::Closed);
    let rst = net
        .frames_to_client()
        .filter_map(tcp_of)
        .find(|t| t.dst == extra.local)
        .expect("an answer to the extra SYN");
    assert!(rst.rst && !rst.syn, "{rst:?}");
    assert_eq!(rst.src, lab_addr(false));
    assert_eq!(net.app.counters().refused, 1);

    // Everyone is still served.
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(net.ask(c, &format!("ECHO {i}")), i.to_string());
    }
    let info = net.info(&mut conns[0]);
    assert_eq!(value(&info, info::CONN_REFUSED), "1");
    assert_eq!(value(&info, info::LAB_IN_USE), "4");

    // A slot set free is taken by the next client.
    let leaving = conns.remove(2);
    let freed = slots_of(&mut net, &mut conns, &leaving);
    quit(&mut net, leaving);
    let (_next, slot) = net.lab(false);
    assert_eq!(slot, freed);
}

/// The slot of `target`, from `WHO` asked on `conns[0]`.
fn slots_of(net: &mut Net, conns: &mut [Conn], target: &Conn) -> usize {
    net.ask_multi(&mut conns[0], "WHO")
        .iter()
        .map(|r| WhoRow::parse(r).unwrap())
        .find(|r| r.peer == target.local)
        .expect("target in WHO")
        .slot
}

#[test]
fn slots_are_reused_after_many_sessions() {
    let cycles = 60;
    // The cycles take no simulated time, so each QUIT's TIME-WAIT (the
    // device closed first) is still running at the end: the closing pool
    // holds them all while the slots serve the next clients.
    let mut net = Net::new(
        Config::default(),
        Sizes {
            closing: ClosingSizes {
                lab: cycles / 3,
                ..SMALL.closing
            },
            ..SMALL
        },
    );
    for i in 0..cycles {
        let (mut c, _) = net.lab(i % 2 == 1);
        assert_eq!(net.ask(&mut c, &format!("ECHO {i}")), i.to_string());
        match i % 3 {
            // QUIT: the device closes first.
            0 => quit(&mut net, c),
            // The client closes first.
            1 => {
                net.socket(&c).close();
                assert!(net.wait_closed(&c, 2_000), "{}", net.state(&c));
                net.remove(c);
            }
            // The client resets.
            _ => {
                net.socket(&c).abort();
                net.settle();
                net.remove(c);
            }
        }
        assert_eq!(net.app.lab_in_use(), 0, "after cycle {i}");
    }

    let (mut observer, _) = net.lab(false);
    let rows = net.netstat(&mut observer);
    let parsed = parse_rows(&rows);
    assert_eq!(
        count(&parsed, LAB_PORT, "LISTEN"),
        SMALL.lab.slots - 1,
        "{rows:#?}"
    );
    assert_eq!(count(&parsed, LAB_PORT, "ESTABLISHED"), 1, "{rows:#?}");
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::LAB_IN_USE), "1");
    assert_eq!(value(&info, info::CONN_ACCEPTED), (cycles + 1).to_string());
    assert_eq!(value(&info, info::CONN_CLOSED), "40");
    assert_eq!(value(&info, info::CONN_RESET), "20");
    quit(&mut net, observer);

    // The whole pool is there again.
    let conns: Vec<(Conn, usize)> = (0..SMALL.lab.slots).map(|_| net.lab(false)).collect();
    assert_eq!(conns.len(), SMALL.lab.slots);
    assert_eq!(net.app.lab_in_use(), SMALL.lab.slots);
}

#[test]
fn a_client_reset_frees_its_slot() {
    let mut net = Net::small();
    let (mut observer, _) = net.lab(false);
    let (c, slot) = net.lab(true);
    net.socket(&c).abort();
    net.settle();
    assert_eq!(net.app.lab_in_use(), 1);
    let rows = net.netstat(&mut observer);
    assert_eq!(rows[slot], listen_row(LAB_PORT), "{rows:#?}");
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::CONN_RESET), "1");
    assert_eq!(value(&info, info::CONN_CLOSED), "0");
}

// ---------------------------------------------------------------------------
// Timeouts

#[test]
fn the_handshake_timeout_frees_a_slot_pinned_by_a_lone_syn() {
    let mut net = Net::small();
    // The first client also teaches each side the other's MAC.
    let (mut observer, _) = net.lab(false);
    let pinned = SocketAddr::new(CLIENT_V4.into(), 50_000);
    // The SYN-ACKs to the hand-made SYN are lost (the client's stack would reset them).
    net.set_filter(move |dir, frame| {
        !(dir == Dir::ToClient && tcp_of(frame).is_some_and(|t| t.dst == pinned))
    });
    let t0 = net.now;
    net.inject(syn_frame(pinned, lab_addr(false), 1_000));
    net.settle();
    let half_open = format!("tcp 192.168.69.1:6666 {pinned} SYN-RECEIVED 0 0");
    assert!(net.netstat(&mut observer).contains(&half_open));

    // With the pinned slot, two more clients fill the pool: the next is refused.
    let _b = net.lab(false);
    let _c = net.lab(false);
    let refused = net.open(lab_addr(false));
    assert!(net.wait_closed(&refused, 1_000));
    assert_eq!(net.app.counters().refused, 1);

    // Still pinned just before the timeout...
    let handshake = config::HANDSHAKE_TIMEOUT_MS as i64;
    net.run((handshake - 300 - (net.now - t0).total_millis() as i64) as u64);
    assert!(net.netstat(&mut observer).contains(&half_open));
    // ...and free after it.
    net.run(400);
    let rows = net.netstat(&mut observer);
    assert!(
        !rows.iter().any(|r| r.contains("SYN-RECEIVED")),
        "{rows:#?}"
    );
    assert_eq!(
        count(&parse_rows(&rows), LAB_PORT, "LISTEN"),
        1,
        "{rows:#?}"
    );
    let (_d, _) = net.lab(false);
    assert_eq!(net.app.lab_in_use(), 4);
    let info = net.info(&mut observer);
    assert_eq!(value(&info, info::CONN_TIMED_OUT), "1");
}

#[test]
fn an_idle_client_gets_bye_idle() {
    let idle_ms = 1_000;
    let mut net = Net::new(
        with_timeouts(Timeouts {
            idle_ms,
            ..Timeouts::default()
        }),
        SMALL,
    );
    let (mut a, _) = net.lab(false);
    // Input restarts the idle clock.
    net.run(idle_ms * 8 / 10);
    let sent_at = net.now;
    assert_eq!(net.ask(&mut a, "ECHO awake"), "awake");
    let answered_at = net.now;
    net.quiet(&mut a, idle_ms * 8 / 10);

    assert_eq!(net.line(&mut a), "BYE idle");
    let after_input = (net.now - sent_at).total_millis();
    let after_answer = (net.now - answered_at).total_millis();
    assert!(after_input >= idle_ms, "BYE idle after {after_input} ms");
    assert!(
        after_answer <= idle_ms + 100,
        "BYE idle after {after_answer} ms"
    );
    // Then the device closes, and the slot is free once the client closes too.
    assert!(net.run_until(1_000, |net| !net.socket(&a).may_recv()));
    net.socket(&a).close();
    assert!(net.wait_closed(&a, 1_000));
    assert_eq!(net.app.lab_in_use(), 0);
    assert_eq!(net.app.counters().timed_out, 1);
}

/// The idle clock counts input only: a client still draining a long reply,
/// slowly but steadily (never blocked long enough for the slow-reader
/// timeout), gets `BYE idle` in the middle of it, and the reply never ends.
#[test]
fn the_idle_timeout_does_not_cut_a_reply_being_read() {
    let sizes = Sizes {
        lab: LabSizes {
            slots: 64,
            tx: 512,
            ..SMALL.lab
        },
        ..SMALL
    };
    let config = with_timeouts(Timeouts {
        idle_ms: 1_000,
        ..Timeouts::default()
    });
    let mut net = Net::new(config, sizes);
    let mut reader = net.open_with(lab_addr(true), 128, 4096);
    net.established(&reader);
    net.hello(&mut reader);
    net.send_line(&reader, "NETSTAT");
    // 20 bytes every 300 ms: about 70 rows take some 30 s to read.
    let mut lines = Vec::new();
    for _ in 0..1_000 {
        net.run(300);
        let mut chunk = [0u8; 20];
        let n = net.socket(&reader).recv_slice(&mut chunk).unwrap_or(0);
        reader.inbox.extend_from_slice(&chunk[..n]);
        while let Some(line) = reader.take_line() {
            lines.push(line);
        }
        if lines
            .last()
            .is_some_and(|l| l == protocol::END || l == "BYE idle")
        {
            break;
        }
    }
    // The whole reply, END included, arrives before any `BYE idle` (which
    // may follow the END in the same read once the client has it all).
    let end = lines.iter().position(|l| l == protocol::END);
    assert_eq!(end, Some(sizes.service_sockets()), "{lines:?}");
}

/// A client that never closes its side after the device's `BYE` keeps its
/// socket in FIN-WAIT-2 forever (its stack answers the keep-alives): the slot
/// never listens again, while `lab_in_use` already says it is free.
#[test]
fn a_client_that_never_closes_after_bye_does_not_pin_its_slot() {
    let mut net = Net::small();
    let mut stubborn = Vec::new();
    for _ in 0..SMALL.lab.slots {
        let (mut c, _) = net.lab(false);
        assert_eq!(net.ask(&mut c, "QUIT"), protocol::BYE);
        // The client reads the BYE and the FIN but never closes.
        stubborn.push(c);
    }
    assert_eq!(net.app.lab_in_use(), 0);
    // Ten minutes later, far past every timeout the device has.
    net.run(600_000);
    let mut late = net.open(lab_addr(false));
    assert!(
        net.run_until(2_000, |net| net.state(&late) != State::SynSent),
        "no answer"
    );
    assert_eq!(
        net.state(&late),
        State::Established,
        "every slot is still held by a client that got BYE ten minutes ago"
    );
    net.hello(&mut late);
}

#[test]
fn a_slow_reader_is_disconnected_and_no_line_is_lost() {
    let slow_reader_ms = 1_000;
    let mut net = Net::new(
        with_timeouts(Timeouts {
            slow_reader_ms,
            ..Timeouts::default()
        }),
        SMALL,
    );
    let (mut talker, _) = net.lab(false);
    let (mut fast, _) = net.lab(true);
    // The slow reader reads its HELLO, then never again; its window is small.
    let mut slow = net.open_with(lab_addr(false), 256, 4096);
    net.established(&slow);
    net.hello(&mut slow);

    let texts: Vec<String> = (0..60)
        .map(|i| format!("message {i:03} {}", "z".repeat(90)))
        .collect();
    let batch: String = texts.iter().map(|t| format!("SAY {t}\n")).collect();
    let started = net.now;
    net.send(&talker, batch.as_bytes());

    let (mut oks, mut froms) = (0, Vec::new());
    let done = net.run_until(10 * slow_reader_ms, |net| {
        while let Some(line) = net.try_line(&mut talker) {
            assert_eq!(line, protocol::OK);
            oks += 1;
        }
        while let Some(line) = net.try_line(&mut fast) {
            froms.push(line);
        }
        oks == texts.len() && froms.len() == texts.len()
    });
    assert!(done, "{oks} OK, {} FROM", froms.len());
    let expected: Vec<String> = texts
        .iter()
        .map(|t| format!("FROM {} {t}", talker.local))
        .collect();
    assert_eq!(froms, expected);

    // The slow reader was cut off, and not before its timeout.
    assert!(net.wait_closed(&slow, 1_000), "{}", net.state(&slow));
    assert!((net.now - started).total_millis() >= slow_reader_ms);
    assert_eq!(net.app.counters().timed_out, 1);
    assert_eq!(net.app.lab_in_use(), 2);
    net.quiet(&mut fast, 200);
    net.quiet(&mut talker, 200);
    assert_eq!(net.ask(&mut talker, "ECHO still here"), "still here");
}

/// The slow-reader timeout also covers a multi-line reply that the client
/// leaves unread: `blocked_since` is only set when a `SAY` cannot be
/// delivered or a command cannot be read, not while `flush_reply` waits for
/// room, so a client that asks for a `NETSTAT` much bigger than the buffers
/// and never reads holds its slot until the stack gives up (about 60 s here,
/// counted as `conn_reset`, with no slow-reader log line).
#[test]
fn a_reader_that_leaves_a_long_reply_unread_is_disconnected() {
    let slow_reader_ms = 1_000;
    let sizes = Sizes {
        lab: LabSizes {
            slots: 64,
            tx: 512,
            ..SMALL.lab
        },
        ..SMALL
    };
    let config = with_timeouts(Timeouts {
        slow_reader_ms,
        ..Timeouts::default()
    });
    let mut net = Net::new(config, sizes);
    let mut reader = net.open_with(lab_addr(false), 128, 4096);
    net.established(&reader);
    net.hello(&mut reader);
    net.send_line(&reader, "NETSTAT");
    // Never read again.
    assert!(
        net.wait_closed(&reader, 3 * slow_reader_ms),
        "still {} after {} ms",
        net.state(&reader),
        3 * slow_reader_ms
    );
    assert_eq!(net.app.counters().timed_out, 1);
}

/// The protocol: output that does not fit is never lost; a slow reader may be
/// disconnected after a documented timeout. A `SAY` that a slow reader cannot
/// take yet holds its sender's next `SAY` (one sender's lines reach everybody
/// in order), so the talker waits at most the slow-reader timeout: then the
/// slow reader is dropped and the talker's commands are answered.
#[test]
fn a_slow_reader_holds_a_talker_at_most_the_slow_reader_timeout() {
    let config = Config {
        timeouts: Timeouts {
            slow_reader_ms: 1_000,
            ..Timeouts::default()
        },
        ..Config::default()
    };
    let mut net = Net::new(config, SMALL);
    let (mut talker, _) = net.lab(false);
    let mut slow = net.open_with(lab_addr(false), 256, 4096);
    net.established(&slow);
    net.hello(&mut slow);
    // Enough to fill the slow reader's window and the device's transmit buffer.
    let batch: String = (0..40)
        .map(|i| format!("SAY message {i:03} {}\n", "z".repeat(90)))
        .collect();
    net.send(&talker, batch.as_bytes());
    net.send_line(&talker, "ECHO are you there");
    let started = net.now;
    let mut oks = 0;
    let answered = net.run_until(3_000, |net| {
        while let Some(line) = net.try_line(&mut talker) {
            if line == protocol::OK {
                oks += 1;
            } else {
                return line == "are you there";
            }
        }
        false
    });
    assert!(
        answered,
        "the talker's ECHO is answered once the slow reader is dropped"
    );
    assert_eq!(oks, 40, "every SAY answered OK, in order, before the ECHO");
    let waited = (net.now - started).total_millis();
    assert!(waited <= 1_000 + 200, "the talker waited {waited} ms");
}

#[test]
fn netstat_larger_than_the_transmit_buffer_arrives_complete() {
    let sizes = Sizes {
        lab: LabSizes {
            slots: 16,
            tx: 512,
            ..SMALL.lab
        },
        ..SMALL
    };
    let mut net = Net::new(Config::default(), sizes);
    let mut others: Vec<Conn> = (0..7).map(|_| net.lab(true).0).collect();
    // The reader's own window is small too, so the reply waits on both buffers.
    let mut reader = net.open_with(lab_addr(true), 200, 4096);
    net.established(&reader);
    net.hello(&mut reader);

    let rows = net.netstat(&mut reader);
    let bytes: usize = rows.iter().map(|r| r.len() + 1).sum::<usize>() + "END\n".len();
    assert!(bytes > sizes.lab.tx, "only {bytes} bytes");
    assert_eq!(rows.len(), sizes.service_sockets());
    let parsed = parse_rows(&rows);
    assert_eq!(count(&parsed, LAB_PORT, "LISTEN"), 8);
    assert_eq!(count(&parsed, LAB_PORT, "ESTABLISHED"), 8);
    others.push(reader);
    for conn in &others {
        assert_eq!(
            parsed
                .iter()
                .filter(|r| r.remote == SockName::Addr(conn.local))
                .count(),
            1,
            "{}",
            conn.local
        );
    }
    let mut reader = others.pop().unwrap();
    assert_eq!(net.info(&mut reader).len(), INFO_KEYS);
    assert_eq!(net.ask_multi(&mut reader, "WHO").len(), 8);
    assert_eq!(net.ask(&mut others[0], "ECHO fine"), "fine");
}

// ---------------------------------------------------------------------------
// Bulk services

/// A fixed byte pattern that is not periodic in a TCP-segment size.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn echo_returns_every_byte_in_order_then_closes() {
    let mut net = Net::small();
    let mut c = net.connect(device(false, ECHO_PORT));
    let data = pattern(200_000);
    let mut sent = 0;
    let done = net.run_until(60_000, |net| {
        let socket = net.socket(&c);
        if sent < data.len() && socket.can_send() {
            sent += socket.send_slice(&data[sent..]).unwrap();
        }
        net.pull(&mut c);
        c.inbox.len() >= data.len()
    });
    assert!(done, "{} of {} bytes back", c.inbox.len(), data.len());
    assert!(c.inbox == data, "echoed bytes differ");

    net.socket(&c).close();
    assert!(net.wait_closed(&c, 2_000), "{}", net.state(&c));
    assert_eq!(net.app.counters().accepted, 1);
    assert_eq!(net.app.counters().closed, 1);
}

#[test]
fn echo_over_ipv6_with_a_half_close() {
    let mut net = Net::small();
    let mut c = net.connect(device(true, ECHO_PORT));
    let data = pattern(30_000);
    net.send(&c, &data);
    net.socket(&c).close();
    let done = net.run_until(10_000, |net| {
        net.pull(&mut c);
        !net.socket(&c).may_recv()
    });
    assert!(done, "no FIN after {} bytes", c.inbox.len());
    assert!(c.inbox == data, "echoed {} bytes", c.inbox.len());
}

#[test]
#[cfg(feature = "discard-chargen")]
fn discard_swallows_everything() {
    let mut net = Net::small();
    let mut c = net.connect(device(false, DISCARD_PORT));
    net.send(&c, &pattern(100_000));
    assert!(net.run_until(10_000, |net| net.socket(&c).send_queue() == 0));
    assert_eq!(net.pull(&mut c), 0);
    net.socket(&c).close();
    assert!(net.wait_closed(&c, 2_000), "{}", net.state(&c));
    assert_eq!(net.pull(&mut c), 0);
}

#[test]
#[cfg(feature = "discard-chargen")]
fn chargen_sends_the_rfc_864_pattern() {
    let mut net = Net::small();
    let mut c = net.connect(device(false, CHARGEN_PORT));
    let want = 30_000;
    assert!(net.run_until(10_000, |net| net.pull(&mut c) > 0 && c.inbox.len() >= want));
    let bad = c
        .inbox
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != protocol::chargen_byte(i as u64));
    assert_eq!(bad, None, "first byte off the pattern");
    assert_eq!(
        &c.inbox[..74],
        b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"
    );
    assert_eq!(&c.inbox[74..80], b"!\"#$%&");

    // Closing stops the stream; what was already queued still follows the pattern.
    net.socket(&c).close();
    let closed = net.run_until(5_000, |net| {
        net.pull(&mut c);
        matches!(net.state(&c), State::TimeWait | State::Closed)
    });
    assert!(closed, "{}", net.state(&c));
    assert!(c
        .inbox
        .iter()
        .enumerate()
        .all(|(i, &b)| b == protocol::chargen_byte(i as u64)));
    assert_eq!(net.app.counters().closed, 1);

    // A second connection starts the pattern over.
    let mut again = net.connect(device(true, CHARGEN_PORT));
    assert!(net.run_until(1_000, |net| net.pull(&mut again) > 0
        && again.inbox.len() >= 74));
    assert_eq!(&again.inbox[..74], &c.inbox[..74]);
}

#[test]
fn the_bulk_pool_refuses_the_client_past_its_size() {
    let mut net = Net::small();
    let _held: Vec<Conn> = (0..SMALL.bulk.slots)
        .map(|_| net.connect(device(false, ECHO_PORT)))
        .collect();
    let extra = net.open(device(false, ECHO_PORT));
    assert!(net.wait_closed(&extra, 1_000));
    assert_eq!(net.state(&extra), State::Closed);
    assert_eq!(net.app.counters().refused, 1);
}

// ---------------------------------------------------------------------------
// Refusal and ping

#[test]
fn a_closed_port_is_refused_with_rst() {
    let mut net = Net::small();
    net.set_capture(true);
    for (i, v6) in [false, true].into_iter().enumerate() {
        let c = net.open(device(v6, 8080));
        assert!(net.wait_closed(&c, 2_000));
        assert_eq!(net.state(&c), State::Closed);
        let answers: Vec<_> = net
            .frames_to_client()
            .filter_map(tcp_of)
            .filter(|t| t.dst == c.local)
            .collect();
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert!(answers[0].rst && answers[0].ack && !answers[0].syn);
        assert_eq!(answers[0].src, device(v6, 8080));
        assert_eq!(net.app.counters().refused, i as u64 + 1);
    }
    assert_eq!(net.app.counters().accepted, 0);
}

/// Pings the device from the client's address of one family and returns the replies seen.
fn ping(v6: bool) -> Vec<(IpAddr, IpAddr, u16, u16, Vec<u8>)> {
    let mut net = Net::small();
    // A connection first, so the device has learnt the client's MAC (it learns
    // neighbours from ARP requests and neighbour solicitations only).
    let _c = net.connect(device(v6, ECHO_PORT));
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (CLIENT_V6.into(), device_v6().into())
    } else {
        (CLIENT_V4.into(), device_v4().into())
    };
    net.set_capture(true);
    net.inject(ping_frame(src, dst, 0x50c1, 7, b"socklab ping payload"));
    net.settle();
    net.frames_to_client().filter_map(echo_reply_of).collect()
}

#[test]
fn ping_is_answered_over_ipv4() {
    assert_eq!(
        ping(false),
        vec![(
            device_v4().into(),
            CLIENT_V4.into(),
            0x50c1,
            7,
            b"socklab ping payload".to_vec()
        )]
    );
}

#[test]
fn ping_is_answered_over_ipv6() {
    assert_eq!(
        ping(true),
        vec![(
            device_v6().into(),
            CLIENT_V6.into(),
            0x50c1,
            7,
            b"socklab ping payload".to_vec()
        )]
    );
}

#[test]
fn malformed_frames_do_not_disturb_the_device() {
    let mut net = Net::small();
    let (mut c, _) = net.lab(false);
    let good = syn_frame(
        SocketAddr::new(CLIENT_V4.into(), 51_000),
        lab_addr(false),
        7,
    );
    let mut bad_checksum = good.clone();
    *bad_checksum.last_mut().unwrap() ^= 0xff;
    let frames = vec![
        vec![],
        vec![0xff; 10],
        good[..20].to_vec(),
        good[..good.len() - 4].to_vec(),
        bad_checksum,
        {
            let mut f = good.clone();
            f[14] = 0x4f; // IPv4 header length past the packet
            f
        },
        vec![0u8; 1514],
    ];
    for frame in frames {
        net.inject(frame);
        net.settle();
    }
    assert_eq!(net.ask(&mut c, "ECHO unharmed"), "unharmed");
    let rows = net.netstat(&mut c);
    assert!(
        !rows.iter().any(|r| r.contains("SYN-RECEIVED")),
        "{rows:#?}"
    );
}

// ---------------------------------------------------------------------------
// The listen backlog

/// The small pool with two backlog places.
const WITH_BACKLOG: Sizes = Sizes {
    lab: LabSizes {
        backlog: 2,
        ..SMALL.lab
    },
    ..SMALL
};

/// Fills every slot; returns the clients, in slot order.
fn fill_pool(net: &mut Net) -> Vec<Conn> {
    let mut conns: Vec<(usize, Conn)> = (0..SMALL.lab.slots)
        .map(|_| {
            let (conn, slot) = net.lab(false);
            (slot, conn)
        })
        .collect();
    conns.sort_by_key(|(slot, _)| *slot);
    conns.into_iter().map(|(_, c)| c).collect()
}

#[test]
fn clients_beyond_the_pool_wait_in_order_and_are_served_as_slots_free() {
    let mut net = Net::new(Config::default(), WITH_BACKLOG);
    let mut served = fill_pool(&mut net);
    // Two more: accepted by TCP, no HELLO yet, listed by WHO in arrival order.
    let mut first = net.connect(lab_addr(false));
    net.run(50);
    let mut second = net.connect(lab_addr(true));
    net.quiet(&mut first, 200);
    net.quiet(&mut second, 200);
    assert_eq!(net.app.lab_queued(), 2);
    let who = net.ask_multi(&mut served[0], "WHO");
    assert_eq!(who.len(), SMALL.lab.slots + 2, "{who:?}");
    assert_eq!(who[SMALL.lab.slots], format!("wait 1 {}", first.local));
    assert_eq!(who[SMALL.lab.slots + 1], format!("wait 2 {}", second.local));
    let info = net.info(&mut served[0]);
    assert_eq!(value(&info, info::LAB_QUEUED), "2");
    assert_eq!(value(&info, info::LAB_BACKLOG), "2");
    // The queued sockets show in NETSTAT too: ESTABLISHED beyond the slots.
    let lines = net.netstat(&mut served[0]);
    let rows = parse_rows(&lines);
    assert_eq!(count(&rows, LAB_PORT, "ESTABLISHED"), SMALL.lab.slots + 2);

    // Beyond pool + backlog: refused.
    let refused = net.open(lab_addr(false));
    assert!(net.wait_closed(&refused, 2_000));
    assert_eq!(net.app.counters().refused, 1);

    // Slot 2 frees: the first waiter gets it, then slot 0 frees: the second.
    let leaving = served.remove(2);
    quit(&mut net, leaving);
    assert_eq!(net.hello(&mut first), 2);
    net.quiet(&mut second, 200);
    let leaving = served.remove(0);
    quit(&mut net, leaving);
    assert_eq!(net.hello(&mut second), 0);
    assert_eq!(net.app.lab_queued(), 0);
    // Commands sent while waiting are answered once served.
    assert_eq!(net.ask(&mut first, "ECHO served"), "served");
    assert_eq!(net.ask(&mut second, "ECHO me too"), "me too");
}

#[test]
fn a_waiting_client_that_gives_up_frees_its_place() {
    let mut net = Net::new(Config::default(), WITH_BACKLOG);
    let mut served = fill_pool(&mut net);
    let waiting = net.connect(lab_addr(false));
    net.run(100);
    assert_eq!(net.app.lab_queued(), 1);
    net.socket(&waiting).close();
    net.run(500);
    assert_eq!(net.app.lab_queued(), 0);
    let leaving = served.remove(1);
    quit(&mut net, leaving);
    let (_next, slot) = net.lab(false);
    assert_eq!(slot, 1);
}

#[test]
fn the_busy_policy_says_err_busy_and_closes() {
    let config = Config {
        backlog: socklab_app::BacklogPolicy::Busy,
        ..Config::default()
    };
    let mut net = Net::new(config, WITH_BACKLOG);
    let _served = fill_pool(&mut net);
    // Accepted, told, closed: by the time the client looks it is CLOSE-WAIT.
    let mut extra = net.open(lab_addr(false));
    assert_eq!(net.line(&mut extra), protocol::ERR_BUSY);
    assert!(net.wait_closed(&extra, 2_000) || net.state(&extra) == State::CloseWait);
    // The lab counts it, and says so on the management port.
    let mut mgmt = net.open(device(false, protocol::MGMT_PORT));
    net.established(&mgmt);
    net.hello(&mut mgmt);
    let info = net.info(&mut mgmt);
    let busy = info.iter().find(|(k, _)| k == info::CONN_BUSY);
    assert_eq!(busy.map(|(_, v)| v.as_str()), Some("1"));
}

#[test]
fn the_refuse_policy_refuses_beyond_the_slots() {
    let config = Config {
        backlog: socklab_app::BacklogPolicy::Refuse,
        ..Config::default()
    };
    let mut net = Net::new(config, WITH_BACKLOG);
    let _served = fill_pool(&mut net);
    let extra = net.open(lab_addr(false));
    assert!(net.wait_closed(&extra, 2_000));
    assert_eq!(net.app.counters().refused, 1);
    assert_eq!(net.app.lab_queued(), 0);
}

#[test]
fn a_full_lab_is_inspected_through_the_management_port() {
    let mut net = Net::small();
    // Every slot taken (the small pool has no backlog).
    let clients: Vec<(Conn, usize)> = (0..SMALL.lab.slots).map(|_| net.lab(false)).collect();
    let mut mgmt = net.connect(device(false, protocol::MGMT_PORT));
    let line = net.line(&mut mgmt);
    let hello = Hello::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
    assert!(hello.management, "{line}");
    assert_eq!(hello.local.port(), protocol::MGMT_PORT, "{line}");
    // WHO lists the lab's clients, not the management connection.
    let who = net.ask_multi(&mut mgmt, protocol::WHO);
    assert_eq!(who.len(), SMALL.lab.slots, "{who:#?}");
    for (conn, slot) in &clients {
        assert!(who.contains(&format!("{slot} {}", conn.local)), "{who:#?}");
    }
    // NETSTAT: every service socket, the management ones among them.
    let rows = net.netstat(&mut mgmt);
    assert_eq!(rows.len(), SMALL.service_sockets());
    let parsed = parse_rows(&rows);
    assert_eq!(count(&parsed, LAB_PORT, "ESTABLISHED"), SMALL.lab.slots);
    assert_eq!(count(&parsed, LAB_PORT, "LISTEN"), 0);
    assert_eq!(count(&parsed, protocol::MGMT_PORT, "ESTABLISHED"), 1);
    assert_eq!(
        count(&parsed, protocol::MGMT_PORT, "LISTEN"),
        services::MGMT_SOCKETS - 1
    );
    let info = net.info(&mut mgmt);
    assert_eq!(info.len(), INFO_KEYS);
    let v = |key: &str| info.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!(v(info::LAB_IN_USE), SMALL.lab.slots.to_string());
    // Read-only: the chat belongs to the lab.
    assert_eq!(net.ask(&mut mgmt, "ECHO hi"), protocol::ERR_READ_ONLY);
    assert_eq!(net.ask(&mut mgmt, "SAY hi"), protocol::ERR_READ_ONLY);
    assert_eq!(net.ask(&mut mgmt, "BOGUS"), protocol::ERR_UNKNOWN);
    assert_eq!(net.ask(&mut mgmt, protocol::QUIT), protocol::BYE);
    // The lab clients are served as before.
    let (mut first, _) = clients.into_iter().next().unwrap();
    assert_eq!(net.ask(&mut first, "ECHO still here"), "still here");
}
