//! The conformance cases: each takes a running device and asserts one promise
//! of the README over real sockets.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use rand::RngCore;
use socklab_app::protocol::{
    self, info, CHARGEN_LINE_LEN, CHARGEN_PORT, DAYTIME_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT,
};
use socklab_app::services::{Transport, PORTS};
use socklab_host::client::{Info, LabClient, Socket};

use crate::{eventually, Dut, Refusal};

/// How long a single read may wait in these cases.
const WAIT: Duration = Duration::from_secs(10);

fn client(dut: &Dut) -> LabClient {
    dut.lab_client().expect("lab client gets HELLO")
}

fn info_value(client: &mut LabClient, key: &str) -> u64 {
    let info = client.info().expect("INFO answered");
    info.parse(key)
        .unwrap_or_else(|| panic!("INFO has no numeric `{key}`: {:?}", info.entries))
}

/// Lab sockets of the device: its slots and its backlog, all on port 6666.
fn lab_sockets(client: &mut LabClient) -> usize {
    (info_value(client, info::LAB_SLOTS) + info_value(client, info::LAB_BACKLOG)) as usize
}

fn lab_rows(rows: &[Socket]) -> Vec<&Socket> {
    rows.iter()
        .filter(|r| r.local.port() == Some(LAB_PORT))
        .collect()
}

/// Connects to the device's `port` and asserts that the device refused the
/// connection, as the board's network shows it (see [`Refusal`]).
pub fn assert_refused(dut: &Dut, port: u16) {
    match dut.refusal() {
        Refusal::Reset => {
            let err = dut.connect(port).expect_err("nothing listens there");
            assert_eq!(
                err.kind(),
                ErrorKind::ConnectionRefused,
                "port {port}: {err}"
            );
        }
        Refusal::ClosedWithoutHello => {
            let mut stream = dut
                .connect(port)
                .expect("QEMU accepts the host's connection for the device");
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let mut got = Vec::new();
            match stream.read_to_end(&mut got) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Err(e) => panic!("port {port}: expected the connection to be closed: {e}"),
            }
            assert!(
                got.is_empty(),
                "port {port}: refused, yet the device sent {:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
}

/// Every lab slot LISTENs except `busy`, within a few seconds.
fn wait_for_listening_slots(observer: &mut LabClient, slots: usize, busy: usize) {
    let last = eventually(Duration::from_secs(5), || {
        let rows = observer.netstat().expect("NETSTAT answered");
        let listening = lab_rows(&rows)
            .iter()
            .filter(|r| r.state == "LISTEN")
            .count();
        (listening == slots - busy).then_some(())
    });
    if last.is_none() {
        let rows = observer.netstat().expect("NETSTAT answered");
        panic!(
            "expected {} of {slots} lab sockets LISTEN, NETSTAT says:\n{:#?}",
            slots - busy,
            lab_rows(&rows)
        );
    }
}

/// Each client's HELLO names its own slot, its own address and the device's.
pub fn hello_shows_each_client_its_own_socket(dut: &Dut) {
    let clients: Vec<LabClient> = (0..3).map(|_| client(dut)).collect();
    let mut slots = HashSet::new();
    for c in &clients {
        let hello = c.greeting();
        assert_eq!(hello.version, protocol::VERSION);
        assert!(slots.insert(hello.slot), "slot {} given twice", hello.slot);
        assert_eq!(hello.local.port(), LAB_PORT, "{hello}");
        if dut.has_real_addresses() {
            assert_eq!(hello.local, dut.lab_addr(), "{hello}");
            assert_eq!(
                Some(hello.peer),
                c.local_addr().ok(),
                "peer is the client's own socket"
            );
        }
    }
    let ports: HashSet<u16> = clients.iter().map(|c| c.greeting().peer.port()).collect();
    assert_eq!(ports.len(), 3, "each client has its own port");
}

/// `ECHO <text>` answers the text verbatim, spaces included.
pub fn echo_answers_the_text(dut: &Dut) {
    let mut c = client(dut);
    assert_eq!(c.echo("hello, socket").unwrap(), "hello, socket");
    assert_eq!(c.echo("  two  spaces ").unwrap(), "  two  spaces ");
    c.send_line("echo lower case works").unwrap();
    assert_eq!(c.read_line().unwrap(), "lower case works");
}

/// `SAY` answers OK and arrives as `FROM <sender> <text>` at every other client.
pub fn say_reaches_every_other_client(dut: &Dut) {
    let mut a = client(dut);
    let mut b = client(dut);
    let mut c = client(dut);
    a.say("hi from a").unwrap();
    let sender = a.greeting().peer;
    for other in [&mut b, &mut c] {
        let message = other.next_message(WAIT).expect("FROM line");
        assert_eq!(message.sender, sender);
        assert_eq!(message.text, "hi from a");
    }
    // The sender does not hear itself.
    assert_eq!(a.echo("after").unwrap(), "after");
    assert!(a.take_messages().is_empty());
}

/// `WHO` lists exactly the connected clients, by slot, then END.
pub fn who_lists_the_clients(dut: &Dut) {
    let mut a = client(dut);
    let b = client(dut);
    let rows = a.who().unwrap();
    let mut got: Vec<(usize, SocketAddr)> = rows.iter().map(|r| (r.slot, r.peer)).collect();
    got.sort();
    let mut want = vec![
        (a.greeting().slot, a.greeting().peer),
        (b.greeting().slot, b.greeting().peer),
    ];
    want.sort();
    assert_eq!(got, want);
}

/// `NETSTAT` shows the three connections and every idle slot listening, and
/// the bulk services listening.
pub fn netstat_lists_connections_and_listeners(dut: &Dut) {
    let mut a = client(dut);
    let _b = client(dut);
    let _c = client(dut);
    let slots = lab_sockets(&mut a);
    let rows = a.netstat().unwrap();
    let lab = lab_rows(&rows);
    assert_eq!(
        lab.len(),
        slots,
        "one row per lab socket (slots and backlog)"
    );
    let established: Vec<_> = lab.iter().filter(|r| r.state == "ESTABLISHED").collect();
    assert_eq!(established.len(), 3, "{lab:#?}");
    assert_eq!(
        lab.iter().filter(|r| r.state == "LISTEN").count(),
        slots - 3
    );
    for row in &established {
        assert!(matches!(row.remote, protocol::SockName::Addr(_)), "{row:?}");
    }
    for port in [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT] {
        assert!(
            rows.iter().any(|r| r.is_listening_on(port)),
            "nothing listens on {port}"
        );
    }
}

/// `INFO` reports identity, sizes and counters that add up.
pub fn info_reports_sizes_and_counters(dut: &Dut) {
    let mut a = client(dut);
    let _b = client(dut);
    let info = a.info().unwrap();
    for key in [
        info::BOARD,
        info::MAC,
        info::IPV4,
        info::IPV6,
        info::MTU,
        info::UPTIME_MS,
        info::LAB_SLOTS,
        info::LAB_IN_USE,
        info::LAB_RX_BUFFER,
        info::LAB_TX_BUFFER,
        info::FRAMES_RX,
        info::FRAMES_TX,
        info::CONN_ACCEPTED,
        info::CONN_REFUSED,
        info::CONN_TIMED_OUT,
    ] {
        assert!(
            info.get(key).is_some(),
            "INFO lacks {key}: {:?}",
            info.entries
        );
    }
    assert_eq!(info.get(info::BOARD), Some(dut.board_name()));
    assert_eq!(info.get(info::MAC), Some("02:00:00:00:00:01"));
    assert_eq!(info.parse::<u64>(info::LAB_IN_USE), Some(2));
    assert!(info.parse::<u64>(info::LAB_SLOTS).unwrap() >= 8);
    assert!(info.parse::<u64>(info::CONN_ACCEPTED).unwrap() >= 2);
    assert!(info.parse::<u64>(info::MTU).unwrap() >= 576);

    // The frame counters count this client's round trips: each ECHO is at
    // least a frame each way, and at most a few (its ACKs, a retransmission).
    let frames = |info: &Info| {
        (
            info.parse::<u64>(info::FRAMES_RX).expect("frames_rx"),
            info.parse::<u64>(info::FRAMES_TX).expect("frames_tx"),
        )
    };
    let (rx0, tx0) = frames(&info);
    for n in 0..ECHO_ROUND_TRIPS {
        assert_eq!(
            a.echo(&format!("round trip {n}")).unwrap(),
            format!("round trip {n}")
        );
    }
    let (rx1, tx1) = frames(&a.info().unwrap());
    // The INFO exchange itself adds a frame or two each way.
    let (least, most) = (ECHO_ROUND_TRIPS, 4 * ECHO_ROUND_TRIPS + 20);
    for (what, before, after) in [("frames_rx", rx0, rx1), ("frames_tx", tx0, tx1)] {
        assert!(
            (least..=most).contains(&(after - before.min(after))),
            "{what} went from {before} to {after} over {ECHO_ROUND_TRIPS} ECHO round trips; \
             expected {least} to {most} more"
        );
    }
}

/// ECHO round trips [`info_reports_sizes_and_counters`] counts frames over.
const ECHO_ROUND_TRIPS: u64 = 20;

/// `QUIT` answers BYE and the device closes the connection.
pub fn quit_says_bye_and_closes(dut: &Dut) {
    let mut c = client(dut);
    c.send_line("QUIT").unwrap();
    assert_eq!(c.read_line().unwrap(), protocol::BYE);
    let mut stream = c.stream().try_clone().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap(),
        0,
        "nothing after BYE, then EOF"
    );
}

/// An empty line is answered by nothing: the next answer is the next command's.
pub fn empty_line_gets_no_answer(dut: &Dut) {
    let mut c = client(dut);
    c.send_raw(b"\n\r\n\nECHO next\n").unwrap();
    assert_eq!(c.read_line().unwrap(), "next");
}

/// Anything that is not a command gets `ERR unknown command`.
pub fn unknown_command_is_an_error(dut: &Dut) {
    let mut c = client(dut);
    for line in ["HELP", "WHO am i", "\u{1}\u{2}", "ECHOX y"] {
        c.send_line(line).unwrap();
        assert_eq!(
            c.read_line().unwrap(),
            protocol::ERR_UNKNOWN,
            "for {line:?}"
        );
    }
}

/// A 1000-byte line gets `ERR line too long`, and the connection still works.
pub fn long_line_is_refused_and_connection_survives(dut: &Dut) {
    let mut c = client(dut);
    let mut line = b"ECHO ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 995));
    line.push(b'\n');
    c.send_raw(&line).unwrap();
    assert_eq!(c.read_line().unwrap(), protocol::ERR_TOO_LONG);
    assert_eq!(c.echo("still here").unwrap(), "still here");
}

/// A line of exactly 256 bytes, ended by CR LF, is a valid command.
pub fn longest_line_with_crlf_is_accepted(dut: &Dut) {
    let mut c = client(dut);
    let text = "y".repeat(protocol::MAX_LINE - 5);
    c.send_raw(format!("ECHO {text}\r\n").as_bytes()).unwrap();
    assert_eq!(c.read_line().unwrap(), text);
    let over = "z".repeat(protocol::MAX_LINE - 4);
    c.send_raw(format!("ECHO {over}\r\n").as_bytes()).unwrap();
    assert_eq!(c.read_line().unwrap(), protocol::ERR_TOO_LONG);
}

/// As many clients as the pool has slots are all served at once.
pub fn whole_pool_is_served_at_once(dut: &Dut) {
    let mut first = client(dut);
    let slots = info_value(&mut first, info::LAB_SLOTS) as usize;
    let mut clients = vec![first];
    for _ in 1..slots {
        clients.push(client(dut));
    }
    let used: HashSet<usize> = clients.iter().map(|c| c.greeting().slot).collect();
    assert_eq!(used.len(), slots, "every slot serves one client");
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.echo(&format!("client {i}")).unwrap(),
            format!("client {i}")
        );
    }
    assert_eq!(
        info_value(&mut clients[0], info::LAB_IN_USE) as usize,
        slots
    );
}

/// A full pool queues the next clients (the listen backlog): accepted, no
/// `HELLO` yet, listed by `WHO` in arrival order; each gets its `HELLO`, in
/// that order, as a served client leaves. Beyond pool + backlog: refused.
pub fn clients_beyond_the_pool_wait_and_beyond_the_backlog_are_refused(dut: &Dut) {
    let mut clients = vec![client(dut)];
    let slots = info_value(&mut clients[0], info::LAB_SLOTS) as usize;
    let backlog = info_value(&mut clients[0], info::LAB_BACKLOG) as usize;
    assert!(backlog >= 4, "the board has a backlog of {backlog}");
    for _ in 1..slots {
        clients.push(client(dut));
    }
    // Four extra clients, one after the other (each seen waiting before the next).
    let mut waiting = Vec::new();
    for n in 1..=4 {
        let stream = dut.connect(LAB_PORT).expect("a waiting client is accepted");
        let queued = eventually(WAIT, || {
            (info_value(&mut clients[0], info::LAB_QUEUED) == n as u64).then_some(())
        });
        assert!(queued.is_some(), "client {n} is not queued");
        waiting.push(stream);
    }
    let (served, queue) = clients[0].who_and_queue().expect("WHO answered");
    assert_eq!(served.len(), slots);
    assert_eq!(
        queue.iter().map(|w| w.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    if dut.has_real_addresses() {
        let expected: Vec<_> = waiting.iter().map(|s| s.local_addr().unwrap()).collect();
        assert_eq!(queue.iter().map(|w| w.peer).collect::<Vec<_>>(), expected);
    }
    // Fill the rest of the backlog; the next client is refused.
    let mut rest = Vec::new();
    for n in 5..=backlog {
        rest.push(dut.connect(LAB_PORT).expect("the backlog has room"));
        let queued = eventually(WAIT, || {
            (info_value(&mut clients[0], info::LAB_QUEUED) == n as u64).then_some(())
        });
        assert!(queued.is_some(), "client {n} is not queued");
    }
    let refused_before = info_value(&mut clients[0], info::CONN_REFUSED);
    assert_refused(dut, LAB_PORT);
    if dut.refusal() == Refusal::Reset {
        assert_eq!(
            info_value(&mut clients[0], info::CONN_REFUSED),
            refused_before + 1
        );
    }
    drop(rest);
    // As served clients QUIT, the waiting ones get HELLO, first come first served.
    let mut freed = Vec::new();
    for stream in waiting {
        let leaving = clients.pop().unwrap();
        freed.push(leaving.greeting().slot);
        leaving.quit().unwrap();
        let mut served = LabClient::from_stream(stream, WAIT).expect("HELLO once a slot frees");
        assert_eq!(served.greeting().slot, *freed.last().unwrap());
        assert_eq!(served.echo("served at last").unwrap(), "served at last");
        clients.insert(0, served);
    }
}

/// Runs the real `socklab <args> <target>` against the device (from its
/// namespace, if it has one); returns its stdout, asserting success.
fn run_socklab(dut: &Dut, args: &[&str], target: &str) -> String {
    let mut command = std::process::Command::new(crate::socklab_bin());
    if let Some(ns) = dut.host_net().netns_name() {
        command.args(["--netns", ns]);
    }
    let out = command
        .args(args)
        .arg(target)
        .args(["--timeout", "5"])
        .output()
        .expect("run socklab");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "socklab {args:?} {target} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A full device can be inspected: with every lab slot and backlog place
/// taken (the next lab client refused), the real `socklab who`, `netstat`
/// and `info` answer through the management port.
pub fn a_full_device_answers_who_netstat_and_info(dut: &Dut) {
    let mgmt = dut.addr(protocol::MGMT_PORT);
    let mut observer = LabClient::connect_in(dut.host_net(), mgmt, WAIT)
        .expect("the management port gives its HELLO");
    assert!(observer.greeting().management, "{}", observer.greeting());
    let slots = info_value(&mut observer, info::LAB_SLOTS) as usize;
    let backlog = info_value(&mut observer, info::LAB_BACKLOG) as usize;
    let mut served: Vec<LabClient> = (0..slots).map(|_| client(dut)).collect();
    let mut waiting = Vec::new();
    for n in 1..=backlog {
        waiting.push(dut.connect(LAB_PORT).expect("the backlog has room"));
        let queued = eventually(WAIT, || {
            (info_value(&mut observer, info::LAB_QUEUED) == n as u64).then_some(())
        });
        assert!(queued.is_some(), "client {n} is not queued");
    }
    observer.quit().expect("QUIT on the management port");
    // Full: a lab client beyond slots + backlog is refused, as before.
    assert_refused(dut, LAB_PORT);

    // Through real addresses, the lab's address as a user types it (the
    // tool goes to the management port beside it); through QEMU's NAT, the
    // forwarded management port.
    let target = match dut.has_real_addresses() {
        true => dut.lab_addr().ip().to_string(),
        false => mgmt.to_string(),
    };
    let who = run_socklab(dut, &["who"], &target);
    let peers: Vec<String> = match dut.has_real_addresses() {
        true => served
            .iter()
            .map(|c| c.local_addr().unwrap())
            .chain(waiting.iter().map(|s| s.local_addr().unwrap()))
            .map(|a| a.to_string())
            .collect(),
        false => Vec::new(),
    };
    for peer in &peers {
        assert!(
            who.contains(peer.as_str()),
            "who does not list {peer}:\n{who}"
        );
    }
    let rows = who
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.parse::<SocketAddr>().is_ok())
        })
        .count();
    assert_eq!(rows, slots + backlog, "who:\n{who}");

    let netstat = run_socklab(dut, &["netstat", "--json"], &target);
    let sockets: Vec<serde_json::Value> =
        serde_json::from_str(&netstat).unwrap_or_else(|e| panic!("{e}:\n{netstat}"));
    let established_on = |port: u16| {
        sockets
            .iter()
            .filter(|s| {
                s["state"] == protocol::state::ESTABLISHED
                    && s["local"]
                        .as_str()
                        .and_then(|l| l.parse::<SocketAddr>().ok())
                        .is_some_and(|l| l.port() == port)
            })
            .count()
    };
    assert_eq!(established_on(LAB_PORT), slots + backlog, "{netstat}");
    assert_eq!(established_on(protocol::MGMT_PORT), 1, "{netstat}");

    let info = run_socklab(dut, &["info", "--json"], &target);
    let info: serde_json::Value =
        serde_json::from_str(&info).unwrap_or_else(|e| panic!("{e}:\n{info}"));
    assert_eq!(info[info::LAB_IN_USE], slots as u64, "{info}");
    assert_eq!(info[info::LAB_QUEUED], backlog as u64, "{info}");
    assert!(info[info::MGMT_SOCKETS].as_u64() >= Some(1), "{info}");

    // The lab serves on, unharmed.
    assert_eq!(served[0].echo("still served").unwrap(), "still served");
    drop(waiting);
    served.clear();
}

/// 200 connect / command / disconnect cycles; afterwards every slot listens.
pub fn two_hundred_cycles_leave_every_slot_listening(dut: &Dut) {
    for i in 0..200 {
        let mut c = client(dut);
        assert_eq!(c.echo(&format!("cycle {i}")).unwrap(), format!("cycle {i}"));
        c.quit().unwrap();
    }
    let mut observer = client(dut);
    let slots = lab_sockets(&mut observer);
    wait_for_listening_slots(&mut observer, slots, 1);
    assert_eq!(info_value(&mut observer, info::LAB_IN_USE), 1);
    assert!(info_value(&mut observer, info::CONN_ACCEPTED) >= 201);
}

/// A client that vanishes with RST frees its slot.
pub fn client_that_resets_frees_its_slot(dut: &Dut) {
    let mut observer = client(dut);
    let slots = lab_sockets(&mut observer);
    let c = client(dut);
    let peer = c.greeting().peer;
    let socket = socket2::Socket::from(c.stream().try_clone().unwrap());
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    drop(c); // close with linger 0: the kernel sends RST
    let gone = eventually(WAIT, || {
        let who = observer.who().expect("WHO answered");
        (!who.iter().any(|r| r.peer == peer)).then_some(())
    });
    assert!(gone.is_some(), "{peer} still listed after its RST");
    wait_for_listening_slots(&mut observer, slots, 1);
}

/// 1 MiB of random bytes through echo comes back byte-exact.
pub fn echo_returns_a_mebibyte_byte_exact(dut: &Dut) {
    let mut data = vec![0u8; 1 << 20];
    rand::rng().fill_bytes(&mut data);
    let back = through_echo(dut, &data);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
}

/// Sends `data` to echo while reading it back; returns what came back.
pub fn through_echo(dut: &Dut, data: &[u8]) -> Vec<u8> {
    let stream = dut.connect(ECHO_PORT).expect("connect to echo");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let expected = data.len();
    let receiving = std::thread::spawn(move || {
        let mut back = Vec::with_capacity(expected);
        let mut buf = vec![0u8; 64 * 1024];
        while back.len() < expected {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => back.extend_from_slice(&buf[..n]),
                Err(e) => panic!("echo read after {} bytes: {e}", back.len()),
            }
        }
        back
    });
    let mut writer = stream;
    writer.write_all(data).expect("write to echo");
    let back = receiving.join().expect("reader thread");
    writer.shutdown(Shutdown::Write).ok();
    back
}

/// discard takes bulk data and sends nothing back.
pub fn discard_swallows_bulk_data(dut: &Dut) {
    let mut stream = dut.connect(DISCARD_PORT).expect("connect to discard");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    for _ in 0..16 {
        stream.write_all(&chunk).expect("discard takes data");
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    stream
        .read_to_end(&mut back)
        .expect("discard closes after us");
    assert!(back.is_empty(), "discard sent {} bytes", back.len());
}

/// chargen sends RFC 864's rotating 72-character lines.
pub fn chargen_lines_follow_rfc_864(dut: &Dut) {
    let mut stream = dut.connect(CHARGEN_PORT).expect("connect to chargen");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let lines = 200;
    let mut got = vec![0u8; lines * CHARGEN_LINE_LEN];
    stream.read_exact(&mut got).expect("chargen sends");
    for (pos, byte) in got.iter().enumerate() {
        assert_eq!(
            *byte,
            protocol::chargen_byte(pos as u64),
            "byte {pos} (line {}, column {})",
            pos / CHARGEN_LINE_LEN,
            pos % CHARGEN_LINE_LEN
        );
    }
    assert!(got.starts_with(b" !\"#$%&'()*+,-./0123456789"));
}

/// A connect to a port where nothing listens is refused (RST).
pub fn closed_port_is_refused(dut: &Dut) {
    let mut observer = client(dut);
    let before = info_value(&mut observer, info::CONN_REFUSED);
    let ports = dut.closed_ports();
    for &port in ports {
        assert_refused(dut, port);
    }
    assert_eq!(
        info_value(&mut observer, info::CONN_REFUSED),
        before + ports.len() as u64
    );
}

/// ICMP echo requests are answered over IPv4 and IPv6.
pub fn ping_is_answered(dut: &Dut) {
    let rtt4 = dut.ping4().expect("IPv4 ping answered");
    let rtt6 = dut.ping6().expect("IPv6 ping answered");
    assert!(rtt4 < WAIT && rtt6 < WAIT);
}

/// The whole lab protocol works over IPv6, addresses printed in brackets.
pub fn lab_session_over_ipv6(dut: &Dut) {
    let addr = dut.addr6(LAB_PORT).expect("the device has an IPv6 address");
    let mut a = dut.lab_client_at(addr).expect("HELLO over IPv6");
    let mut b = dut.lab_client_at(addr).expect("HELLO over IPv6");
    assert!(a.greeting().peer.is_ipv6() && a.greeting().local.is_ipv6());
    assert_eq!(a.greeting().local, addr);
    assert_eq!(a.echo("v6").unwrap(), "v6");
    a.say("over six").unwrap();
    let message = b.next_message(WAIT).unwrap();
    assert_eq!(
        (message.sender, message.text.as_str()),
        (a.greeting().peer, "over six")
    );
    let rows = b.netstat().unwrap();
    assert!(rows
        .iter()
        .any(|r| r.local == protocol::SockName::Addr(addr) && r.state == "ESTABLISHED"));
    a.quit().unwrap();
}

/// Port 0 on the unspecified address of `ip`'s family: where a UDP client binds.
fn unspecified(ip: std::net::IpAddr) -> SocketAddr {
    match ip {
        std::net::IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// The UDP services over kernel UDP sockets, IPv4 and IPv6: echo sends the
/// datagram back, chargen answers with at most 512 bytes of the RFC 864
/// pattern, discard answers nothing, and a connected socket to a port
/// without a service gets `ECONNREFUSED` from the ICMP port unreachable.
pub fn udp_services_answer(dut: &Dut) {
    use std::net::UdpSocket;
    let targets = [Some(dut.addr(0)), dut.addr6(0)];
    for target in targets.into_iter().flatten() {
        let ip = target.ip();
        let any = unspecified(ip);
        let result = dut.host_net().run(move || -> Result<(), String> {
            let socket = |port: u16| {
                let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s.connect(SocketAddr::new(ip, port))
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(s)
            };
            let mut buf = [0u8; 2048];
            // Echo: the datagram comes back whole, from the echo port.
            let echo = socket(ECHO_PORT)?;
            let message = b"socklab udp echo";
            echo.send(message).map_err(|e| e.to_string())?;
            let n = echo.recv(&mut buf).map_err(|e| format!("echo: {e}"))?;
            if &buf[..n] != message {
                return Err(format!("echo sent back {:?}", &buf[..n]));
            }
            // Chargen: one answer per datagram, 0..=512 pattern bytes.
            let chargen = socket(CHARGEN_PORT)?;
            for _ in 0..5 {
                chargen.send(b"x").map_err(|e| e.to_string())?;
                let n = chargen
                    .recv(&mut buf)
                    .map_err(|e| format!("chargen: {e}"))?;
                if n > 512 {
                    return Err(format!("chargen answered {n} bytes"));
                }
                if let Some(&first) = buf[..n].first() {
                    let line = u64::from(first - b' ');
                    for (i, &byte) in buf[..n].iter().enumerate() {
                        let pos = line * CHARGEN_LINE_LEN as u64 + i as u64;
                        if byte != protocol::chargen_byte(pos) {
                            return Err(format!("chargen byte {i} is {byte}"));
                        }
                    }
                }
            }
            // Discard: nothing comes back (no answer, no ICMP error).
            let discard = socket(DISCARD_PORT)?;
            discard
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            discard.send(b"into the void").map_err(|e| e.to_string())?;
            match discard.recv(&mut buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                other => return Err(format!("discard answered: {other:?}")),
            }
            // A closed port: the ICMP port unreachable refuses the socket.
            let closed = socket(4242)?;
            closed.send(b"anyone?").map_err(|e| e.to_string())?;
            match closed.recv(&mut buf) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
                other => Err(format!("closed port: {other:?}, not ECONNREFUSED")),
            }
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("UDP over {ip}: {e}"),
            Err(e) => panic!("cannot enter the device's network: {e}"),
        }
    }
    // The device still lists one UDP socket per UDP port of its service table.
    let rows = client(dut).netstat().unwrap();
    let udp: Vec<_> = rows.iter().filter(|r| r.proto == protocol::UDP).collect();
    let udp_ports = PORTS.iter().filter(|p| p.transport == Transport::Udp);
    assert_eq!(udp.len(), udp_ports.count(), "{rows:#?}");
}

/// RFC 867 daytime over a kernel TCP socket: one CR LF line with the board
/// and its uptime (between two `INFO`s), then the device closes.
pub fn daytime_answers_over_tcp(dut: &Dut) {
    let mut observer = client(dut);
    for _ in 0..3 {
        let before = info_value(&mut observer, info::UPTIME_MS);
        let mut stream = dut.connect(DAYTIME_PORT).expect("connect to daytime");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .expect("daytime sends its line and closes");
        let after = info_value(&mut observer, info::UPTIME_MS);
        let line = text.strip_suffix("\r\n").expect("one line ending in CR LF");
        assert!(!line.contains('\n'), "more than one line: {text:?}");
        let daytime = protocol::Daytime::parse(line).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(daytime.board, dut.board_name());
        assert!(
            (before..=after).contains(&daytime.uptime_ms),
            "{before} <= {} <= {after}",
            daytime.uptime_ms
        );
    }
    assert!(info_value(&mut observer, info::DAYTIME_ANSWERS) >= 3);
}

/// RFC 867 daytime over kernel UDP sockets, IPv4 and IPv6: each datagram
/// (an empty one too) gets one datagram with the line back.
pub fn daytime_answers_over_udp(dut: &Dut) {
    use std::net::UdpSocket;
    let board = dut.board_name().to_owned();
    let targets = [Some(dut.addr(0)), dut.addr6(0)];
    for target in targets.into_iter().flatten() {
        let ip = target.ip();
        let any = unspecified(ip);
        let board = board.clone();
        let result = dut.host_net().run(move || -> Result<(), String> {
            let socket = UdpSocket::bind(any).map_err(|e| e.to_string())?;
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            socket
                .connect(SocketAddr::new(ip, DAYTIME_PORT))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 512];
            for ask in [&b""[..], b"what time is it?"] {
                socket.send(ask).map_err(|e| e.to_string())?;
                let n = socket.recv(&mut buf).map_err(|e| format!("daytime: {e}"))?;
                let text = std::str::from_utf8(&buf[..n]).map_err(|e| e.to_string())?;
                let line = text.strip_suffix("\r\n").ok_or(format!("{text:?}"))?;
                let daytime =
                    protocol::Daytime::parse(line).map_err(|e| format!("{text:?}: {e}"))?;
                if daytime.board != board {
                    return Err(format!("board {:?}, not {board:?}", daytime.board));
                }
            }
            Ok(())
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("daytime over UDP to {ip}: {e}"),
            Err(e) => panic!("cannot enter the device's network: {e}"),
        }
    }
}
