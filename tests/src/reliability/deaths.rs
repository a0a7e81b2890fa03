//! Abrupt deaths: clients reset or vanished mid-transfer free their
//! sockets (keep-alive and the dead-peer timeout).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socklab_app::protocol::{self, info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};
use socklab_host::client::LabClient;

use super::{
    add_address, client, connect_from, figures, in_net, info_of, ms, num, remove_address, render,
    reset, tap_of, wait_all_listening, wait_io, Pool, BULK_PORTS, HALF_LINE, WAIT,
};
use crate::{BoardKind, Dut};

/// The keep-alive interval the death cases run with (`--keep-alive-ms`).
pub const KEEP_ALIVE_MS: u64 = 500;
/// The dead-peer time the death cases run with (`--dead-peer-ms`).
pub const DEAD_PEER_MS: u64 = 2000;
/// Lab clients killed in each death case.
const LAB_VICTIMS: usize = 3;
/// The address the silent victims connect from; taken away to silence them.
const VANISHING: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 50);

fn death_options() -> [String; 4] {
    [
        "--keep-alive-ms".into(),
        KEEP_ALIVE_MS.to_string(),
        "--dead-peer-ms".into(),
        DEAD_PEER_MS.to_string(),
    ]
}

pub(super) fn start_for_deaths(board: BoardKind) -> Dut {
    let options = death_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    Dut::start_with(board, &options)
}

/// Clients caught in the middle of a transfer on every service.
struct Victims {
    /// Lab clients with replies piling up and half a command sent.
    lab: Vec<LabClient>,
    /// An echo client with bytes in flight both ways.
    echo: TcpStream,
    /// A chargen client that read some and stopped.
    chargen: TcpStream,
    /// A discard client that wrote some and stopped.
    discard: TcpStream,
}

impl Victims {
    fn count(&self) -> usize {
        self.lab.len() + 3
    }

    fn streams(self) -> Vec<TcpStream> {
        let mut all: Vec<TcpStream> = self
            .lab
            .iter()
            .map(|c| c.stream().try_clone().expect("clone a stream"))
            .collect();
        drop(self.lab);
        all.extend([self.echo, self.chargen, self.discard]);
        all
    }
}

/// Opens the victims (from `from`, if given) and gets each mid-transfer.
/// Runs inside the device's network.
fn victims(ports: &HashMap<u16, SocketAddr>, from: Option<IpAddr>) -> Victims {
    let connect = |port: u16| {
        connect_from(ports[&port], from, None)
            .unwrap_or_else(|e| panic!("victim connects to port {port}: {e}"))
    };
    let lab = (0..LAB_VICTIMS)
        .map(|_| {
            let mut c = LabClient::from_stream(connect(LAB_PORT), WAIT).expect("victim's HELLO");
            // The kernel takes the whole burst; the device reads it only as
            // it answers.
            let mut burst = "NETSTAT\n".repeat(200).into_bytes();
            burst.extend_from_slice(HALF_LINE);
            c.send_raw(&burst).expect("send NETSTATs");
            // Wait until the answers flow.
            c.read_line().expect("NETSTAT answers arrive");
            c
        })
        .collect();
    // Echo: keep writing and reading until 64 KiB came back and more is in flight.
    let echo = connect(ECHO_PORT);
    echo.set_nonblocking(true).unwrap();
    let chunk = vec![0x5au8; 16 * 1024];
    let mut buf = vec![0u8; 16 * 1024];
    let (mut sent, mut back) = (0usize, 0usize);
    let deadline = Instant::now() + WAIT;
    while back < 64 * 1024 || sent <= back {
        assert!(
            Instant::now() < deadline,
            "echo stalled: {sent} sent, {back} back"
        );
        wait_io(&echo, libc::POLLIN | libc::POLLOUT, WAIT);
        match (&echo).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("echo write: {e}"),
        }
        match (&echo).read(&mut buf) {
            Ok(0) => panic!("echo closed"),
            Ok(n) => back += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("echo read: {e}"),
        }
    }
    echo.set_nonblocking(false).unwrap();
    let mut chargen = connect(CHARGEN_PORT);
    chargen.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = vec![0u8; 64 * 1024];
    chargen.read_exact(&mut got).expect("chargen sends");
    let mut discard = connect(DISCARD_PORT);
    discard.set_write_timeout(Some(WAIT)).unwrap();
    discard
        .write_all(&vec![0xA5u8; 256 * 1024])
        .expect("discard takes data");
    Victims {
        lab,
        echo,
        chargen,
        discard,
    }
}

/// Asserts the victims hold their sockets: ESTABLISHED, as many as expected
/// on each service.
fn assert_victims_hold_sockets(observer: &mut LabClient, from: Option<IpAddr>) {
    let rows = observer.netstat().expect("NETSTAT answered");
    let held = |port: u16| {
        rows.iter()
            .filter(|r| r.local.port() == Some(port) && r.state == "ESTABLISHED")
            .filter(|r| match (&r.remote, from) {
                (protocol::SockName::Addr(a), Some(ip)) => a.ip() == ip,
                _ => true,
            })
            .count()
    };
    let expected_lab = LAB_VICTIMS + usize::from(from.is_none());
    assert!(
        held(LAB_PORT) == expected_lab && BULK_PORTS.iter().all(|&p| held(p) == 1),
        "the victims do not hold their sockets; NETSTAT:\n{}",
        render(&rows)
    );
}

/// Clients killed with RST (SO_LINGER 0) in the middle of transfers, on the
/// lab and on every bulk service, free their sockets at once.
pub fn reset_clients_free_their_sockets(board: BoardKind) {
    let dut = start_for_deaths(board);
    let mut observer = client(&dut);
    let pool = Pool::of(&info_of(&mut observer));
    let ports = service_addrs(&dut);
    let victims = in_net(&dut, || victims(&ports, None));
    assert_victims_hold_sockets(&mut observer, None);
    let before = info_of(&mut observer);
    let count = victims.count() as u64;
    let killed_at = Instant::now();
    for stream in victims.streams() {
        reset(stream);
    }
    let freed =
        wait_all_listening(&mut observer, &pool, 1, WAIT).saturating_duration_since(killed_at);
    let after = info_of(&mut observer);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    figures(
        &format!("reset mid-transfer ({board:?})"),
        format!(
            "{count} clients (lab, echo, chargen, discard) reset mid-transfer: every socket \
             LISTEN again {:.0}ms later; conn_reset +{}",
            ms(freed),
            delta(info::CONN_RESET)
        ),
    );
    assert!(
        freed <= Duration::from_secs(2),
        "freed only after {freed:?}"
    );
    assert_eq!(
        delta(info::CONN_RESET),
        count,
        "each victim counted as reset"
    );
    assert_eq!(delta(info::CONN_TIMED_OUT), 0);
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    dut.assert_running();
}

/// Where the host reaches each service of the device.
fn service_addrs(dut: &Dut) -> HashMap<u16, SocketAddr> {
    [LAB_PORT, ECHO_PORT, CHARGEN_PORT, DISCARD_PORT]
        .into_iter()
        .map(|p| (p, dut.addr(p)))
        .collect()
}

/// Clients that vanish in the middle of transfers (their address is taken
/// away: nothing more comes from them, nothing reaches them, no FIN, no RST)
/// free their sockets once the dead-peer time has passed without an answer
/// to the device's keep-alives and retransmissions.
pub fn silent_clients_free_their_sockets(board: BoardKind) {
    let dut = start_for_deaths(board);
    let (ns, tap) = tap_of(&dut);
    let mut observer = client(&dut);
    let pool = Pool::of(&info_of(&mut observer));
    add_address(&ns, &tap, VANISHING);
    let from = Some(IpAddr::V4(VANISHING));
    let ports = service_addrs(&dut);
    let victims = in_net(&dut, || victims(&ports, from));
    assert_victims_hold_sockets(&mut observer, from);
    let before = info_of(&mut observer);
    let count = victims.count() as u64;
    remove_address(&ns, &tap, VANISHING);
    let vanished_at = Instant::now();
    let limit = Duration::from_millis(DEAD_PEER_MS + KEEP_ALIVE_MS) + WAIT;
    let freed =
        wait_all_listening(&mut observer, &pool, 1, limit).saturating_duration_since(vanished_at);
    let after = info_of(&mut observer);
    let delta = |key: &str| num(&after, key) - num(&before, key);
    figures(
        &format!("silent mid-transfer ({board:?})"),
        format!(
            "{count} clients (lab, echo, chargen, discard) vanished mid-transfer: every socket \
             LISTEN again {:.0}ms later (keep-alive {KEEP_ALIVE_MS}ms, dead peer {DEAD_PEER_MS}ms); \
             conn_reset +{}, conn_timed_out +{}",
            ms(freed),
            delta(info::CONN_RESET),
            delta(info::CONN_TIMED_OUT)
        ),
    );
    assert!(
        freed <= Duration::from_millis(DEAD_PEER_MS + KEEP_ALIVE_MS + 1500),
        "freed only after {freed:?}"
    );
    assert_eq!(
        delta(info::CONN_RESET) + delta(info::CONN_TIMED_OUT),
        count,
        "each victim's end counted once"
    );
    assert_eq!(num(&after, info::LAB_IN_USE), 1);
    // The vanished clients' sockets go with the namespace; close them first.
    drop(victims);
    dut.assert_running();
}
