//! nmap against the device: TCP SYN and connect scans of every port (IPv4),
//! a SYN scan over IPv6. Exactly the TCP ports of the app's service table
//! ([`PORTS`], the table the host forwards from) are open, every other port
//! answers with a reset (closed), none is filtered, and the device greets a
//! client right after. A UDP scan (IPv4 and IPv6) finds the table's UDP
//! services open (they answer nmap's probes) except discard, which is
//! `open|filtered` (it answers nothing, as RFC 863 says), and every other port
//! closed (ICMP port unreachable). The expectations come from the table, never
//! from the device: its `NETSTAT` must list exactly the table's ports, so a
//! listener the table does not name fails.

use std::collections::BTreeSet;
use std::time::Duration;

use socklab_app::protocol::DISCARD_PORT;
use socklab_app::services::{Transport, PORTS};

use super::{alone, assert_every_socket_listens, in_netns, run, ToolOutput};
use crate::{BoardKind, Dut};

/// What one host line of nmap's grepable output (`-oG -`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Ports listed with their state (`open`, `filtered`, ...).
    pub listed: Vec<(u16, String)>,
    /// The state of the ports not listed, and how many there are
    /// (`Ignored State: closed (65531)`).
    pub ignored: Option<(String, u32)>,
}

impl Scan {
    /// Parses the `Host: ... Ports: ...` line of `nmap -oG -`.
    pub fn parse(grepable: &str) -> Option<Scan> {
        let line = grepable
            .lines()
            .find(|l| l.starts_with("Host:") && l.contains("Ports:"))?;
        let mut fields = line.split('\t');
        let ports = fields.find_map(|f| f.strip_prefix("Ports: "))?;
        let listed = ports
            .split(", ")
            .map(|entry| {
                let mut parts = entry.split('/');
                let port = parts.next()?.trim().parse().ok()?;
                let state = parts.next()?.to_owned();
                Some((port, state))
            })
            .collect::<Option<Vec<_>>>()?;
        let ignored = line.split('\t').find_map(|f| {
            let rest = f.strip_prefix("Ignored State: ")?;
            let (state, count) = rest.split_once(" (")?;
            Some((state.to_owned(), count.trim_end_matches(')').parse().ok()?))
        });
        Some(Scan { listed, ignored })
    }

    /// The ports in state `state`.
    pub fn ports(&self, state: &str) -> BTreeSet<u16> {
        self.listed
            .iter()
            .filter(|(_, s)| s == state)
            .map(|(p, _)| *p)
            .collect()
    }
}

/// The summary line nmap ends with (`Nmap done: 1 IP address (1 host up)
/// scanned in 4.21 seconds`).
fn done_line(output: &ToolOutput) -> String {
    output
        .stdout
        .lines()
        .find(|l| l.contains("Nmap done"))
        .unwrap_or("(no summary line)")
        .trim_start_matches("# ")
        .to_owned()
}

/// The ports of the app's service table over `transport`: what must be open.
pub fn table_ports(transport: Transport) -> BTreeSet<u16> {
    PORTS
        .iter()
        .filter(|p| p.transport == transport)
        .map(|p| p.port)
        .collect()
}

/// The UDP ports of the table that answer nothing, so that nmap can only
/// call them `open|filtered`: discard (RFC 863).
fn silent_udp_ports() -> BTreeSet<u16> {
    let udp = table_ports(Transport::Udp);
    assert!(
        udp.contains(&DISCARD_PORT),
        "the service table names no UDP discard port: {PORTS:?}"
    );
    BTreeSet::from([DISCARD_PORT])
}

/// The ports `NETSTAT` lists over `transport` (TCP: those in `LISTEN`) and
/// the table's ports over it: a stray listener, or a missing one, as a
/// message.
pub fn netstat_against_table(
    rows: &[socklab_host::client::Socket],
    transport: Transport,
) -> Result<(), String> {
    let listed: BTreeSet<u16> = rows
        .iter()
        .filter(|r| r.proto == transport.name())
        .filter(|r| transport == Transport::Udp || r.state == "LISTEN")
        .filter_map(|r| r.local.port())
        .collect();
    let table = table_ports(transport);
    let stray: Vec<_> = listed.difference(&table).collect();
    let missing: Vec<_> = table.difference(&listed).collect();
    if stray.is_empty() && missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} listeners in NETSTAT {listed:?}, in the service table {table:?}: \
         not in the table {stray:?}, not listening {missing:?}",
        transport.name()
    ))
}

/// The TCP ports the service table names; fails if the device's `NETSTAT`
/// lists a TCP or UDP listener the table does not name, or misses one.
fn listening_ports(dut: &Dut) -> BTreeSet<u16> {
    let mut client = dut.lab_client().expect("HELLO before the scan");
    let rows = client.netstat().expect("NETSTAT answered");
    client.quit().expect("QUIT");
    for transport in [Transport::Tcp, Transport::Udp] {
        if let Err(e) = netstat_against_table(&rows, transport) {
            panic!("on {}: {e}", dut.board_name());
        }
    }
    table_ports(Transport::Tcp)
}

/// Runs one nmap scan of `ports` with `flags` and checks its result: exactly
/// `open` open, every other scanned port closed, nothing filtered. Returns
/// nmap's summary line.
fn scan(
    dut: &Dut,
    flags: &[&str],
    target: &str,
    ports: &str,
    scanned: u32,
    open: &BTreeSet<u16>,
) -> String {
    let mut command = in_netns(dut, "nmap");
    command
        .args(["-n", "-Pn", "--reason", "-oG", "-", "-p", ports])
        .args(flags)
        .arg(target);
    let output = run(command, Duration::from_secs(600));
    output.assert_success();
    let result = Scan::parse(&output.stdout).unwrap_or_else(|| {
        panic!(
            "`{}`: no port lines in nmap's output:\n{}\n{}",
            output.command, output.stdout, output.stderr
        )
    });
    let done = done_line(&output);
    assert_eq!(
        &result.ports("open"),
        open,
        "`{}`: open ports differ from the service table's:\n{}",
        output.command,
        output.stdout
    );
    let odd: Vec<_> = result
        .listed
        .iter()
        .filter(|(_, state)| state != "open" && state != "closed")
        .collect();
    assert!(
        odd.is_empty(),
        "`{}`: ports neither open nor closed (filtered means the device did not answer): {odd:?}",
        output.command
    );
    let listed_closed = result.ports("closed").len() as u32;
    let ignored_closed = match &result.ignored {
        Some((state, n)) if state == "closed" => *n,
        Some((state, n)) => panic!(
            "`{}`: {n} ports {state}, expected closed:\n{}",
            output.command, output.stdout
        ),
        None => 0,
    };
    assert_eq!(
        open.len() as u32 + listed_closed + ignored_closed,
        scanned,
        "`{}`: not every port accounted for:\n{}",
        output.command,
        output.stdout
    );
    println!(
        "figures: `nmap {} -p {ports}` on {}: {} open {:?}, {} closed; {done}",
        flags.join(" "),
        dut.board_name(),
        open.len(),
        open,
        listed_closed + ignored_closed
    );
    done
}

/// After the scans the device still greets a new client, and every socket
/// listens again.
fn still_serves(dut: &Dut) {
    let mut client = dut.lab_client().expect("HELLO right after the scans");
    assert_eq!(client.echo("after nmap").unwrap(), "after nmap");
    assert_every_socket_listens(&mut client, Duration::from_secs(15));
    dut.assert_running();
}

/// The ports every scan covers: all of them, on every board (mps2-an385 in
/// QEMU answers a full scan in 3–10 s).
const ALL_PORTS: (&str, u32) = ("1-65535", 65535);

/// `nmap -sS` and `nmap -sT` over IPv4 and `nmap -6 -sS` over IPv6.
pub fn tcp_scans_find_exactly_the_listening_ports(board: BoardKind) {
    let _alone = alone();
    let dut = Dut::start(board);
    let open = listening_ports(&dut);
    let (ports, scanned) = ALL_PORTS;
    let v4 = dut.addr(0).ip().to_string();
    let v6 = dut.addr6(0).expect("IPv6 on the TAP").ip().to_string();
    let timing = ["-T4", "--max-retries", "3"];
    let mut syn = vec!["-sS"];
    syn.extend(timing);
    scan(&dut, &syn, &v4, ports, scanned, &open);
    still_serves(&dut);
    let mut connect = vec!["-sT"];
    connect.extend(timing);
    scan(&dut, &connect, &v4, ports, scanned, &open);
    still_serves(&dut);
    let mut syn6 = vec!["-6", "-sS"];
    syn6.extend(timing);
    scan(&dut, &syn6, &v6, ports, scanned, &open);
    still_serves(&dut);
}

/// The UDP ports a UDP scan covers: the well-known range, which holds the
/// UDP services.
const UDP_PORTS: (&str, u32) = ("1-1024", 1024);

/// `nmap -sU` over IPv4 and `nmap -6 -sU` over IPv6: the table's UDP
/// ports open (they answer) but discard, `open|filtered` (it never does),
/// every other port closed.
pub fn udp_scan_finds_the_udp_services(board: BoardKind) {
    let _alone = alone();
    let dut = Dut::start(board);
    let (ports, scanned) = UDP_PORTS;
    let silent = silent_udp_ports();
    let answering: BTreeSet<u16> = table_ports(Transport::Udp)
        .difference(&silent)
        .copied()
        .collect();
    assert!(
        answering
            .iter()
            .chain(&silent)
            .all(|&p| u32::from(p) <= scanned),
        "a UDP port of the table is outside the scanned {ports}"
    );
    let v4 = dut.addr(0).ip().to_string();
    let v6 = dut.addr6(0).expect("IPv6 on the TAP").ip().to_string();
    for (family, target) in [("-4", &v4), ("-6", &v6)] {
        let mut command = in_netns(&dut, "nmap");
        command
            .args(["-n", "-Pn", "-sU", "-T4", "--max-retries", "2", "--reason"])
            .args(["-oG", "-", "-p", ports, family])
            .arg(target);
        let output = run(command, Duration::from_secs(300));
        output.assert_success();
        let result = Scan::parse(&output.stdout).unwrap_or_else(|| {
            panic!(
                "`{}`: no port lines in nmap's output:\n{}\n{}",
                output.command, output.stdout, output.stderr
            )
        });
        let summary = format!("`{}`:\n{}", output.command, output.stdout);
        assert_eq!(result.ports("open"), answering, "{summary}");
        assert_eq!(result.ports("open|filtered"), silent, "{summary}");
        let closed = result.ports("closed").len() as u32
            + match &result.ignored {
                Some((state, n)) if state == "closed" => *n,
                Some((state, n)) => panic!("{n} ports {state}, expected closed: {summary}"),
                None => 0,
            };
        assert_eq!(
            closed + (answering.len() + silent.len()) as u32,
            scanned,
            "not every port accounted for: {summary}"
        );
        println!(
            "figures: `nmap -sU {family} -p {ports}` on {}: open {answering:?}, open|filtered {silent:?}, {closed} closed; {}",
            dut.board_name(),
            done_line(&output)
        );
    }
    still_serves(&dut);
}

#[cfg(test)]
mod tests {
    use socklab_app::protocol::NO_STATE;
    use socklab_app::services::{Transport, PORTS};
    use socklab_host::client::Socket;

    use super::{netstat_against_table, Scan};

    /// `NETSTAT` rows for every port of the table, plus `extra`.
    fn rows(extra: &[&str]) -> Vec<Socket> {
        PORTS
            .iter()
            .map(|p| match p.transport {
                Transport::Tcp => format!("tcp *:{} *:* LISTEN 0 0", p.port),
                Transport::Udp => format!("udp *:{} *:* {NO_STATE} 0 0", p.port),
            })
            .chain(extra.iter().map(|l| l.to_string()))
            .map(|l| Socket::parse(&l).unwrap())
            .collect()
    }

    #[test]
    fn netstat_must_list_exactly_the_table() {
        let clean = rows(&["tcp 192.168.69.1:7 192.168.69.100:4000 ESTABLISHED 0 0"]);
        for transport in [Transport::Tcp, Transport::Udp] {
            assert_eq!(netstat_against_table(&clean, transport), Ok(()));
        }
        let stray = rows(&["tcp *:4444 *:* LISTEN 0 0"]);
        let err = netstat_against_table(&stray, Transport::Tcp).unwrap_err();
        assert!(err.contains("not in the table [4444]"), "{err}");
        let stray = rows(&[&format!("udp *:5353 *:* {NO_STATE} 0 0")]);
        assert!(netstat_against_table(&stray, Transport::Udp).is_err());
        let missing: Vec<Socket> = rows(&[]).into_iter().skip(1).collect();
        assert!(netstat_against_table(&missing, Transport::Tcp).is_err());
    }

    #[test]
    fn grepable_line_parses() {
        let out = "# Nmap 7.93 scan initiated\nHost: 192.168.69.1 ()\tStatus: Up\n\
                   Host: 192.168.69.1 ()\tPorts: 7/open/tcp/syn-ack ttl 64/echo///, \
                   6666/open/tcp/syn-ack ttl 64/irc///, 8/filtered/tcp/no-response//unknown///\t\
                   Ignored State: closed (65532)\n# Nmap done at x -- 1 IP address (1 host up) scanned in 3.1 seconds\n";
        let scan = Scan::parse(out).unwrap();
        assert_eq!(
            scan.ports("open").into_iter().collect::<Vec<_>>(),
            [7, 6666]
        );
        assert_eq!(scan.ports("filtered").len(), 1);
        assert_eq!(scan.ignored, Some(("closed".to_owned(), 65532)));
    }
}
