//! The demo's script: the life of a TCP socket told on a running device —
//! the device on its network, a listening port, three clients accepted,
//! ECHO and SAY, WHO and NETSTAT, a refused port, ping, a checked byte
//! stream, UDP for contrast, goodbye and cleaning up — each step checked
//! with the engine's [`Demo::step`].

use std::fmt::Display;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use crate::render::netstat_table;
use anyhow::{anyhow, bail, ensure, Context};
use socklab_app::protocol::{
    self, info, state, BYE, ECHO, ECHO_PORT, HELLO, INFO, LAB_PORT, NETSTAT, OK, QUIT, SAY, WHO,
};
use socklab_host::board::BoardKind;
use socklab_host::client::{LabClient, Socket};
use socklab_host::launch::{
    Machine, QemuDevice, QemuLink, QemuNet, QemuOptions, RunningBoard, TapDevice, TapOptions,
};
use socklab_host::netns::{self, Netns};
use socklab_host::ping::PingError;

use super::engine::{need, Demo, Skipped, Stopped};
use super::Args;

/// The three clients of the demo.
const NAMES: [&str; 3] = ["alice", "bob", "carol"];
/// A port nothing listens on.
const CLOSED_PORT: u16 = LAB_PORT + 1;

/// A ping the board cannot do is skipped, not failed.
fn skip_unsupported(error: PingError) -> anyhow::Error {
    match error {
        PingError::Unsupported(why) => Skipped(why).into(),
        other => other.into(),
    }
}

/// A device the demo started: one variant per board.
enum Started {
    Tap(TapDevice),
    Qemu(QemuDevice),
}

impl Started {
    fn device(&self) -> &dyn RunningBoard {
        match self {
            Started::Tap(device) => device,
            Started::Qemu(device) => device,
        }
    }
}

impl Demo {
    pub(super) fn run(
        &mut self,
        board: BoardKind,
        args: &Args,
        timeout: Duration,
    ) -> Result<(), Stopped> {
        let networks = usize::from(args.networks);
        println!("socklab demo: the life of a TCP socket, on a device with no hardware");
        println!("====================================================================");
        let started = match board {
            BoardKind::Tap => self.start_tap(networks)?.map(Started::Tap),
            BoardKind::QemuUser(machine) | BoardKind::QemuTap(machine) => self
                .start_qemu(machine, board.has_real_addresses(), networks)?
                .map(Started::Qemu),
        };
        let Some(started) = started else {
            return Ok(());
        };
        let result = self
            .lifecycle(started.device(), args, timeout)
            .and_then(|()| self.two_networks(started.device(), timeout));
        if self.failed > 0 {
            print_log_tail(&started.device().log());
        }
        let cleanup = match started {
            Started::Tap(device) => self.stop_tap(device),
            Started::Qemu(device) => self.stop_qemu(device),
        };
        result.and(cleanup)
    }

    /// Section 1: the device and its network.
    fn start_tap(&mut self, networks: usize) -> Result<Option<TapDevice>, Stopped> {
        self.section("A device on a network");
        self.explain(
            "An IP address identifies a machine on a network. A machine has one network \
             interface per network it is on, and each interface has its own address.",
        );
        self.explain(
            "Our machine is socklab-tap: a TCP server firmware (smoltcp, no operating system \
             underneath) running as a Linux process, wired to a virtual Ethernet interface, a \
             TAP. To leave your real network alone it gets a private network namespace: its own \
             interfaces, addresses and routes, deleted at the end.",
        );
        if !netns::is_root() {
            println!("✘ the demo creates a network namespace and a TAP, which needs root: run `sudo socklab demo`");
            self.failed += 1;
            return Err(Stopped);
        }
        let device = self.step("device started", || {
            let device = TapDevice::start(TapOptions {
                networks,
                ..TapOptions::default()
            })?;
            let ns = device
                .netns()
                .map(|ns| ns.name().to_owned())
                .unwrap_or_default();
            let detail = format!(
                "socklab-tap (pid {}) in network namespace {ns}, on TAP {}",
                device.pid(),
                device.tap().name()
            );
            Ok((device, detail))
        })?;
        let Some(device) = device else {
            return Ok(None);
        };
        let ready = device.ready().clone();
        self.explain(&format!(
            "The TAP is a cable with two ends. The host's end has the addresses \
             {}/{} and {}/{}; the device's end, its only interface, has two \
             addresses, one per IP version: {} and {} (Ethernet address {}).",
            socklab_app::config::HOST_IPV4,
            socklab_app::config::DEFAULT_IPV4.prefix_len(),
            socklab_app::config::HOST_IPV6,
            socklab_app::config::DEFAULT_IPV6.prefix_len(),
            ready.ipv4,
            ready.ipv6,
            ready.mac
        ));
        Ok(Some(device))
    }

    /// Section 1 on the QEMU board: the image, QEMU, and its network.
    fn start_qemu(
        &mut self,
        machine: Machine,
        tap: bool,
        networks: usize,
    ) -> Result<Option<QemuDevice>, Stopped> {
        self.section("A device on a network");
        self.explain(
            "An IP address identifies a machine on a network. A machine has one network \
             interface per network it is on, and each interface has its own address.",
        );
        self.explain(&machine.spec().about);
        let root = netns::is_root();
        if tap {
            self.explain(
                "QEMU wires the NIC to a TAP, a virtual Ethernet cable into this machine. To \
                 leave your real network alone, the TAP and QEMU get a private network \
                 namespace: its own interfaces, addresses and routes, deleted at the end.",
            );
            if !root {
                println!(
                    "✘ a network namespace and a TAP need root: run `sudo socklab demo --board qemu \
                     --machine {}`, or use --net user",
                    machine.spec().board
                );
                self.failed += 1;
                return Err(Stopped);
            }
        } else {
            self.explain(
                "QEMU wires the NIC to its user networking: a small router inside QEMU that \
                 hands the device an address by DHCP and forwards a few TCP ports of this \
                 machine's 127.0.0.1 to it. No root needed, but only those TCP ports get \
                 through: the ping and IPv6 steps below are skipped (run as root, or with \
                 --net tap, to see them).",
            );
        }
        let device = self.step("device started", || {
            let opts = QemuOptions {
                machine,
                net: if tap {
                    QemuNet::private_tap()
                } else {
                    QemuNet::user_any_ports()
                },
                networks,
                ..QemuOptions::default()
            };
            let device = QemuDevice::start(opts)?;
            let place = match (device.netns(), device.tap()) {
                (Some(ns), Some(tap)) => {
                    format!("in network namespace {ns}, on TAP {}", tap.name())
                }
                _ => "on user networking".to_owned(),
            };
            let mut detail = format!(
                "QEMU (pid {}) {place}; the firmware answered {:.0} ms after QEMU started. Its \
                 UART says:",
                device.pid(),
                device.ready_after().as_secs_f64() * 1e3
            );
            for line in device.log().lines().take(8) {
                detail.push('\n');
                detail.push_str(line);
            }
            Ok((device, detail))
        })?;
        let Some(device) = device else {
            return Ok(None);
        };
        match device.link() {
            QemuLink::Tap => self.explain(&format!(
                "The TAP is a cable with two ends. The host's end has the addresses \
                 {}/{} and {}/{}; the device's end, its only interface, has two \
                 addresses, one per IP version: {} and {} (Ethernet address 02:00:00:00:00:01).",
                socklab_app::config::HOST_IPV4,
                socklab_app::config::DEFAULT_IPV4.prefix_len(),
                socklab_app::config::HOST_IPV6,
                socklab_app::config::DEFAULT_IPV6.prefix_len(),
                socklab_app::config::DEFAULT_IPV4,
                socklab_app::config::DEFAULT_IPV6,
            )),
            QemuLink::User { lease, .. } => self.explain(&format!(
                "The device took the address {lease} from QEMU's DHCP server; QEMU's router is \
                 10.0.2.2. From here we reach the device's port {LAB_PORT} at {}: QEMU accepts \
                 there and opens a connection to {lease}:{LAB_PORT} for us (a NAT, like a home \
                 router's port forwarding).",
                device.lab_addr()
            )),
        }
        Ok(Some(device))
    }

    /// Sections 2 to 11, on a running device.
    fn lifecycle(
        &mut self,
        device: &dyn RunningBoard,
        args: &Args,
        timeout: Duration,
    ) -> Result<(), Stopped> {
        let lab = device.lab_addr();
        self.section("A server socket listens on a port");
        self.explain(&format!(
            "A port is an endpoint for one program: each address has 65536 of them, and a \
             program acquires a port to talk on the network. The device's lab service \
             acquired port {LAB_PORT} and listens there: a server socket waiting for clients."
        ));
        let facts = self.step(&format!("the device describes itself ({INFO})"), || {
            let mut client = device.lab_client()?;
            let facts = client.info()?;
            client.quit()?;
            let slots: usize = facts
                .parse(info::LAB_SLOTS)
                .with_context(|| format!("{INFO} has no {}", info::LAB_SLOTS))?;
            let backlog: usize = facts
                .parse(info::LAB_BACKLOG)
                .with_context(|| format!("{INFO} has no {}", info::LAB_BACKLOG))?;
            let detail = format!(
                "board {}, {slots} lab slots and {backlog} backlog places, with {}-byte input \
                 and {}-byte output buffers, MTU {}",
                facts.get(info::BOARD).unwrap_or("?"),
                facts.get(info::LAB_RX_BUFFER).unwrap_or("?"),
                facts.get(info::LAB_TX_BUFFER).unwrap_or("?"),
                facts.get(info::MTU).unwrap_or("?"),
            );
            Ok(((slots, backlog), detail))
        })?;
        let (slots, backlog) = facts.unwrap_or((0, 0));
        let n = |v: usize| {
            if slots > 0 {
                v.to_string()
            } else {
                "N".to_owned()
            }
        };
        self.explain(&format!(
            "smoltcp has no listen backlog: one socket takes one client. So the device keeps \
             a pool of {} sockets, all listening on port {LAB_PORT} at once; each accepts one \
             client, and goes back to listening when its client leaves. {} more sockets form \
             a backlog, like the accept queue of a kernel: when every slot is busy, they accept \
             the next clients and hold them, in arrival order, until a slot frees.",
            n(slots),
            n(backlog)
        ));

        // Section 3: three clients.
        self.section("Clients connect: the server accepts, each side gets a socket");
        self.explain(&format!(
            "To connect, a client needs the server's (IP address, port): {lab}. Its kernel \
             picks a free local port for the client's socket. The device accepts: now each side \
             has a socket of its own, knows the other's IP address and port, and has an input \
             buffer and an output buffer. The device greets each client with HELLO, naming the \
             pool slot that serves it, the client as the device sees it (peer) and the \
             device's side (local)."
        ));
        let nat = device.behind_nat();
        if nat {
            self.explain(
                "Through QEMU's NAT each side sees its own pair of addresses: our socket is on \
                 127.0.0.1, while the device sees its client coming from QEMU's router \
                 10.0.2.2, each client from a port of its own.",
            );
        }
        let mut clients: Vec<Option<LabClient>> = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let addr = if i == 2 {
                match device.addr6(LAB_PORT) {
                    Some(addr) => {
                        self.explain(
                            "carol comes in over IPv6: the same interface and port, the device's other address.",
                        );
                        addr
                    }
                    None => {
                        self.explain(
                            "carol would come in over IPv6, the device's other address, but QEMU's \
                             user networking carries IPv4 only: she uses IPv4 like the others.",
                        );
                        lab
                    }
                }
            } else {
                lab
            };
            let client = self.step(&format!("{name} connects to {addr}"), || {
                let mut lab_client = device.lab_client_at(addr)?;
                lab_client.set_timeout(timeout);
                let mine = lab_client.local_addr()?;
                let hello = lab_client.greeting().clone();
                if nat {
                    ensure!(
                        hello.local.port() == LAB_PORT,
                        "{HELLO} says local={}, expected port {LAB_PORT}",
                        hello.local
                    );
                    return Ok((
                        lab_client,
                        format!(
                            "slot {}, socket {mine} <-> {addr}; through QEMU the device sees {} <-> {}\n{hello}",
                            hello.slot, hello.peer, hello.local
                        ),
                    ));
                }
                ensure!(
                    hello.peer == mine,
                    "{HELLO} says peer={} but the socket's local address is {mine}",
                    hello.peer
                );
                ensure!(
                    hello.local == addr,
                    "{HELLO} says local={}, expected {addr}",
                    hello.local
                );
                Ok((
                    lab_client,
                    format!(
                        "slot {}, socket {mine} <-> {}\n{hello}",
                        hello.slot, hello.local
                    ),
                ))
            })?;
            clients.push(client);
        }
        self.step("three sockets, one port", || {
            let [Some(a), Some(b), Some(c)] = &clients[..] else {
                bail!(Skipped("a client did not connect"))
            };
            let hellos = [a.greeting(), b.greeting(), c.greeting()];
            ensure!(
                hellos.iter().all(|h| h.local.port() == LAB_PORT),
                "not every local side is port {LAB_PORT}"
            );
            let ports: Vec<u16> = hellos.iter().map(|h| h.peer.port()).collect();
            let slots: Vec<usize> = hellos.iter().map(|h| h.slot).collect();
            ensure!(distinct(&ports), "client ports repeat: {ports:?}");
            ensure!(distinct(&slots), "slots repeat: {slots:?}");
            Ok((
                (),
                format!(
                    "every device side is port {LAB_PORT}; client ports {} differ; slots {}",
                    join(&ports),
                    join(&slots)
                ),
            ))
        })?;
        self.explain(
            "A socket is one connection, named by four things: local address and port, remote \
             address and port. Many sockets share port 6666, yet one program acquired it.",
        );

        // Section 4: talking.
        self.section(&format!("Talking over a socket: {ECHO} and {SAY}"));
        self.explain(
            "Writing to a socket puts bytes in its output buffer; TCP carries them across and \
             they wait in the other side's input buffer until read. ECHO asks the device to \
             write a line back.",
        );
        self.step(&format!("alice: {ECHO} hello, socket"), || {
            let alice = clients[0]
                .as_mut()
                .ok_or(Skipped("alice is not connected"))?;
            let answer = alice.echo("hello, socket")?;
            ensure!(answer == "hello, socket", "the device answered {answer:?}");
            Ok(((), format!("the device wrote back {answer:?}")))
        })?;
        self.explain(
            "SAY goes to everybody else: the device writes the line, with who said it, to every \
             other client's socket. It arrives whenever it arrives, between the client's own \
             commands.",
        );
        let said = "hi everyone";
        let bob_addr = clients[1].as_ref().map(|c| c.greeting().peer);
        self.step(&format!("bob: {SAY} {said}"), || {
            let bob = clients[1].as_mut().ok_or(Skipped("bob is not connected"))?;
            bob.say(said)?;
            Ok(((), format!("the device answered {OK}")))
        })?;
        for i in [0, 2] {
            let name = NAMES[i];
            self.step(&format!("{name} hears bob"), || {
                let sender = need(&bob_addr, "bob is not connected")?;
                let client = clients[i].as_mut().ok_or(Skipped("not connected"))?;
                let message = client.next_message(timeout)?;
                ensure!(
                    message.sender == *sender && message.text == said,
                    "got {message:?}, expected {:?}",
                    protocol::From {
                        sender: *sender,
                        text: said
                    }
                    .to_string()
                );
                Ok(((), message.to_string()))
            })?;
        }

        // Section 5: WHO.
        self.section(&format!("Who is connected? ({WHO})"));
        self.step(&format!("carol: {WHO}"), || {
            let carol = clients[2]
                .as_mut()
                .ok_or(Skipped("carol is not connected"))?;
            let rows = carol.who()?;
            let expected: Vec<SocketAddr> = clients
                .iter()
                .flatten()
                .map(|c| c.greeting().peer)
                .collect();
            for peer in &expected {
                ensure!(
                    rows.iter().any(|r| r.peer == *peer),
                    "{WHO} does not list {peer}"
                );
            }
            let mut detail = format!("{} clients connected (slot, client)", rows.len());
            for row in &rows {
                detail.push_str(&format!("\n{row}"));
            }
            Ok(((), detail))
        })?;

        // Section 6: NETSTAT.
        self.section(&format!("The socket table ({NETSTAT})"));
        self.explain(
            "netstat lists the sockets in use. The device's table has every socket of every \
             service: ours are ESTABLISHED, the rest of the lab pool still LISTENs — the server \
             keeps listening while it serves. Recv-Q counts the bytes waiting in a socket's \
             input buffer for the service to read; Send-Q the bytes in its output buffer \
             that the other side has not yet acknowledged.",
        );
        self.step(&format!("alice: {NETSTAT}"), || {
            let alice = clients[0].as_mut().ok_or(Skipped("alice is not connected"))?;
            let sockets = alice.netstat()?;
            let peers: Vec<SocketAddr> = clients.iter().flatten().map(|c| c.greeting().peer).collect();
            let ours = count_established_lab(&sockets, &peers);
            let listening = sockets.iter().filter(|s| s.is_listening_on(LAB_PORT)).count();
            ensure!(ours == peers.len(), "{ours} of our {} connections are ESTABLISHED", peers.len());
            ensure!(listening > 0, "no lab socket is listening any more");
            if slots > 0 {
                ensure!(
                    ours + listening == slots + backlog,
                    "{ours} established + {listening} listening lab sockets, but the pool has \
                     {slots} slots and {backlog} backlog places"
                );
            }
            Ok((
                (),
                format!(
                    "{ours} ESTABLISHED lab sockets (ours) and {listening} more LISTENing on port {LAB_PORT}\n{}",
                    compact_table(&netstat_table(&sockets))
                ),
            ))
        })?;

        // Section 7: a closed port.
        self.section("A port where nothing listens");
        self.explain(&format!(
            "A connection needs a program listening on that port. Nothing listens on port \
             {CLOSED_PORT}, so the device answers the client's SYN with a reset (RST), and \
             connect() fails with \"connection refused\"."
        ));
        if nat {
            self.explain(&format!(
                "Through QEMU's NAT it looks different: QEMU itself accepts our connection on \
                 {} at once, then tries the device's port {CLOSED_PORT}, gets the RST, and \
                 closes our connection without a single byte: no HELLO.",
                device.addr(CLOSED_PORT)
            ));
        }
        let closed = device.addr(CLOSED_PORT);
        self.step(&format!("connect to {closed}"), || {
            match device.connect(CLOSED_PORT) {
                Ok(stream) if nat => {
                    stream.set_read_timeout(Some(timeout))?;
                    let mut got = Vec::new();
                    match (&stream).read_to_end(&mut got) {
                        Ok(_) if got.is_empty() => Ok((
                            (),
                            "QEMU accepted, then closed the connection without a byte: the \
                             device refused"
                                .to_owned(),
                        )),
                        Ok(_) => {
                            bail!("{} bytes came from a port where nothing listens", got.len())
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok((
                            (),
                            "QEMU accepted, then reset the connection: the device refused"
                                .to_owned(),
                        )),
                        Err(e) => Err(anyhow!(e).context("expected QEMU to close the connection")),
                    }
                }
                Ok(_) => bail!("the connection was accepted; something listens on {CLOSED_PORT}"),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Ok(((), format!("refused, as it should be ({e})")))
                }
                Err(e) => Err(anyhow!(e).context("expected \"connection refused\"")),
            }
        })?;

        // Section 8: ping.
        self.section("Is the machine there? (ping)");
        self.explain(
            "ping has no port: it is ICMP, below TCP, one machine asking another for an echo. \
             The device answers on both of its addresses.",
        );
        if nat {
            self.explain(
                "But QEMU's user networking forwards TCP ports only: no ping reaches the device \
                 from here, so both steps are skipped, not passed (`sudo socklab demo --board \
                 qemu` runs them over a TAP).",
            );
        }
        let ip4 = device.addr(0).ip();
        let ping4 = if nat {
            "ping the device over IPv4".to_owned()
        } else {
            format!("ping {ip4}")
        };
        self.step(&ping4, || {
            let rtt = device.ping4().map_err(skip_unsupported)?;
            Ok(((), format!("answered in {}", ms(rtt))))
        })?;
        if let Some(addr6) = device.addr6(0) {
            self.step(&format!("ping {}", addr6.ip()), || {
                let rtt = device.ping6().map_err(skip_unsupported)?;
                Ok(((), format!("answered in {}", ms(rtt))))
            })?;
        } else {
            self.step("ping the device over IPv6", || {
                let rtt = device.ping6().map_err(skip_unsupported)?;
                Ok(((), format!("answered in {}", ms(rtt))))
            })?;
        }

        // Section 9: bulk transfer on echo.
        self.section("A stream of bytes (the echo service, port 7)");
        self.explain(&format!(
            "TCP carries a stream of bytes: in order, nothing lost, nothing repeated, however \
             the network cuts it into segments. The echo service on port {ECHO_PORT} (RFC 862) \
             sends back every byte it receives. We send {} random bytes and check every one \
             that comes back.",
            args.transfer
        ));
        let echo = device.addr(ECHO_PORT);
        self.step(
            &format!("{} random bytes through {echo}", args.transfer),
            || {
                let elapsed = echo_transfer(device, args.transfer, timeout)?;
                Ok((
                    (),
                    format!(
                        "all came back identical in {} ({})",
                        ms(elapsed),
                        rate(args.transfer, elapsed)
                    ),
                ))
            },
        )?;

        // Section 10: UDP, for contrast.
        self.section("No connection at all (UDP echo, port 7)");
        self.explain(&format!(
            "UDP carries datagrams, not a stream: no handshake, no accept, no socket per \
             client, no close. The device's UDP echo service is one socket bound to port \
             {ECHO_PORT}; a datagram from anybody lands there and is answered alone. Two \
             sockets of ours each send one datagram; NETSTAT still shows one udp row for \
             port {ECHO_PORT}, and no connection appears."
        ));
        if nat {
            self.explain(
                "QEMU's user networking here forwards TCP ports only: this step is skipped, \
                 not passed (`sudo socklab demo --board qemu` runs it over a TAP).",
            );
        }
        self.step(
            &format!("two UDP sockets, one datagram each to port {ECHO_PORT}"),
            || {
                if nat {
                    return Err(Skipped("QEMU's user networking forwards TCP ports only").into());
                }
                let target = SocketAddr::new(device.addr(0).ip(), ECHO_PORT);
                let answers = device
                    .host_net()
                    .run(|| udp_echo_twice(target, timeout))??;
                let alice = clients[0]
                    .as_mut()
                    .ok_or(Skipped("alice is not connected"))?;
                let sockets = alice.netstat()?;
                let udp_rows: Vec<&Socket> = sockets
                    .iter()
                    .filter(|s| s.proto == protocol::UDP && s.local.port() == Some(ECHO_PORT))
                    .collect();
                ensure!(
                    udp_rows.len() == 1,
                    "{} udp rows for port {ECHO_PORT} in NETSTAT, expected one",
                    udp_rows.len()
                );
                Ok((
                    (),
                    format!(
                        "both answered ({}); NETSTAT: one udp socket for everybody\n{}",
                        answers.join(", "),
                        compact_table(&netstat_table(&sockets))
                    ),
                ))
            },
        )?;

        // Section 11: goodbye.
        self.section("Goodbye: closing the sockets");
        self.explain(
            "QUIT asks the device to close: it answers BYE and closes its side; the client \
             closes its own. The slot's socket goes back to listening for the next client.",
        );
        let peers: Vec<SocketAddr> = clients
            .iter()
            .flatten()
            .map(|c| c.greeting().peer)
            .collect();
        for (i, slot) in clients.iter_mut().enumerate() {
            let name = NAMES[i];
            self.step(&format!("{name}: {QUIT}"), || {
                let client = slot.take().ok_or(Skipped("not connected"))?;
                client.quit()?;
                Ok(((), format!("{BYE}, and the device closed the connection")))
            })?;
        }
        self.step("every lab slot is free again", || {
            let (listening, mine, time_wait) = wait_for_free_slots(device, &peers, timeout)?;
            let closing = if time_wait == 0 {
                String::new()
            } else {
                format!(
                    "; {time_wait} more in TIME-WAIT: the closes the device started (QUIT), \
                     finishing apart from their slots as a kernel keeps TIME-WAIT sockets apart \
                     from its listener (they go within 10 s)"
                )
            };
            Ok((
                (),
                format!(
                    "a new client's NETSTAT shows {listening} lab sockets LISTENing and one \
                     ESTABLISHED: its own, slot {mine}{closing}"
                ),
            ))
        })?;
        Ok(())
    }

    /// Section 12 on the QEMU board: stop QEMU, check that nothing is left.
    fn stop_qemu(&mut self, device: QemuDevice) -> Result<(), Stopped> {
        self.section("Cleaning up");
        let ns = device.netns().map(|ns| ns.name().to_owned());
        let pid = device.pid();
        let what = if ns.is_some() {
            "QEMU stopped, namespace and TAP removed"
        } else {
            "QEMU stopped"
        };
        self.step(what, || {
            if let Some(status) = device.try_wait() {
                bail!("QEMU had exited by itself ({status}): the firmware crashed");
            }
            device.stop();
            ensure!(!process_exists(pid), "process {pid} still exists");
            match ns {
                Some(ns) => {
                    ensure!(!Netns::exists(&ns), "namespace {ns} still exists");
                    Ok((
                        (),
                        format!("pid {pid} gone, namespace {ns} deleted with its TAP"),
                    ))
                }
                None => Ok(((), format!("pid {pid} gone, its forwarded ports closed"))),
            }
        })
        .map(drop)
    }

    /// Section 12: stop the device, check that nothing is left.
    fn stop_tap(&mut self, device: TapDevice) -> Result<(), Stopped> {
        self.section("Cleaning up");
        let ns = device.netns().map(|ns| ns.name().to_owned());
        let pid = device.pid();
        self.step("device stopped, namespace and TAP removed", || {
            device.stop();
            let ns = ns.unwrap_or_default();
            ensure!(!Netns::exists(&ns), "namespace {ns} still exists");
            ensure!(!process_exists(pid), "process {pid} still exists");
            Ok((
                (),
                format!("pid {pid} gone, namespace {ns} deleted with its TAP"),
            ))
        })
        .map(drop)
    }
}

/// Prints the end of the device's log to stderr, after a failure.
fn print_log_tail(log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    if !tail.is_empty() {
        eprintln!("device log (last {} lines):", tail.len());
        for line in tail {
            eprintln!("    {line}");
        }
    }
}

/// Sends `len` random bytes through the echo service and checks what comes
/// back; returns the time it took.
fn echo_transfer(
    device: &dyn RunningBoard,
    len: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut data = vec![0u8; len];
    rand::fill(&mut data[..]);
    let stream = device
        .connect(ECHO_PORT)
        .context("connecting to the echo service")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let start = Instant::now();
    let mut writer = stream.try_clone()?;
    let mut back = vec![0u8; len];
    // Write and read at once: the device's buffers are small.
    thread::scope(|scope| -> anyhow::Result<()> {
        let sender = scope.spawn(|| writer.write_all(&data));
        let mut reader = &stream;
        reader
            .read_exact(&mut back)
            .context("reading the echo back")?;
        sender
            .join()
            .map_err(|_| anyhow!("the sending thread panicked"))?
            .context("sending")?;
        Ok(())
    })?;
    let elapsed = start.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    if let Some(at) = data.iter().zip(&back).position(|(a, b)| a != b) {
        bail!(
            "byte {at} differs: sent {:#04x}, got {:#04x}",
            data[at],
            back[at]
        );
    }
    Ok(elapsed)
}

/// Sends one datagram from each of two fresh UDP sockets to `target` and
/// waits for each echo: what came back, per socket.
fn udp_echo_twice(target: SocketAddr, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let mut answers = Vec::new();
    for (i, text) in ["first datagram", "second datagram"].iter().enumerate() {
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let socket = std::net::UdpSocket::bind(bind).context("binding a UDP socket")?;
        socket.set_read_timeout(Some(timeout))?;
        socket.send_to(text.as_bytes(), target)?;
        let mut buf = [0u8; 64];
        let (len, from) = socket
            .recv_from(&mut buf)
            .with_context(|| format!("no echo of datagram {} from {target}", i + 1))?;
        ensure!(from == target, "the echo came from {from}, not {target}");
        ensure!(
            &buf[..len] == text.as_bytes(),
            "the echo differs from what was sent"
        );
        answers.push(format!(
            "{:?} from port {}",
            text,
            socket.local_addr()?.port()
        ));
    }
    Ok(answers)
}

/// After the clients left: waits (bounded) until a fresh client sees every
/// lab socket LISTENing except its own and none of the old peers but in
/// TIME-WAIT (a close finishing on its own socket). Returns the LISTENing
/// sockets, the client's slot and the TIME-WAIT sockets.
fn wait_for_free_slots(
    device: &dyn RunningBoard,
    old: &[SocketAddr],
    timeout: Duration,
) -> anyhow::Result<(usize, usize, usize)> {
    let deadline = Instant::now() + timeout;
    let mut client = device.lab_client()?;
    let me = client.greeting().clone();
    loop {
        let sockets = client.netstat()?;
        let established: Vec<&Socket> = sockets
            .iter()
            .filter(|s| {
                s.local.port() == Some(LAB_PORT)
                    && !s.is_listening_on(LAB_PORT)
                    && s.state != state::TIME_WAIT
            })
            .collect();
        let time_wait = sockets
            .iter()
            .filter(|s| s.local.port() == Some(LAB_PORT) && s.state == state::TIME_WAIT)
            .count();
        let listening = sockets
            .iter()
            .filter(|s| s.is_listening_on(LAB_PORT))
            .count();
        let only_me =
            established.len() == 1 && established[0].remote.to_string() == me.peer.to_string();
        if only_me {
            client.quit()?;
            return Ok((listening, me.slot, time_wait));
        }
        if Instant::now() >= deadline {
            let left: Vec<String> = established
                .iter()
                .filter(|s| old.iter().any(|o| s.remote.to_string() == o.to_string()))
                .map(|s| format!("{} {}", s.remote, s.state))
                .collect();
            bail!("after {timeout:?} old sockets remain: {}", left.join(", "));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn count_established_lab(sockets: &[Socket], peers: &[SocketAddr]) -> usize {
    sockets
        .iter()
        .filter(|s| {
            s.state == state::ESTABLISHED
                && s.local.port() == Some(LAB_PORT)
                && peers.iter().any(|p| s.remote.to_string() == p.to_string())
        })
        .count()
}

/// Keeps the table readable: a run of identical rows (the listening sockets
/// of a pool) shows once, with a count of the others.
fn compact_table(table: &str) -> String {
    let mut out = String::new();
    let mut lines = table.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let mut same = 0;
        while lines.next_if(|next| *next == line).is_some() {
            same += 1;
        }
        if same > 0 {
            out.push_str(&format!("... and {same} more like it\n"));
        }
    }
    out
}

fn distinct<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .all(|(i, a)| items[..i].iter().all(|b| a != b))
}

fn join<T: Display>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rate(bytes: usize, d: Duration) -> String {
    let mbit = bytes as f64 * 8.0 / d.as_secs_f64().max(1e-9) / 1e6;
    format!("{mbit:.0} Mbit/s each way")
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn listening_lab_rows_fold() {
        let table = "Proto Local\ntcp *:6666 *:* LISTEN\ntcp *:6666 *:* LISTEN\ntcp *:6666 *:* LISTEN\ntcp *:7 *:* LISTEN\n";
        assert_eq!(
            compact_table(table),
            "Proto Local\ntcp *:6666 *:* LISTEN\n... and 2 more like it\ntcp *:7 *:* LISTEN\n"
        );
        assert_eq!(compact_table("a\nb\nb\n"), "a\nb\n... and 1 more like it\n");
    }

    #[test]
    fn distinct_finds_repeats() {
        assert!(distinct(&[1, 2, 3]));
        assert!(!distinct(&[1, 2, 1]));
    }
}
