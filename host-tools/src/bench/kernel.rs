//! The kernel baseline: the same services on Linux's own TCP stack, reached
//! the way the device is reached, so that every figure has a same-run
//! reference.
//!
//! [`KernelBaseline`] makes two network namespaces (`slbench-<id>-host`,
//! `slbench-<id>-srv`) joined by a veth pair (`slb<id>h` ↔ `slb<id>s`) with
//! the device's addresses: 192.168.69.100 on the host side, 192.168.69.1 on
//! the server side. It starts [`serve`] there as a process of its own
//! (`socklab kernel-server`, run with `ip netns exec`), so that it can be
//! pinned like a device. Everything is removed by name on drop; the root
//! namespace's network is never touched.
//!
//! The server is plain std: blocking sockets, a pool of worker threads per
//! service (each serves one connection at a time), big buffers; echo,
//! discard, chargen (RFC 864's pattern from `socklab_app::protocol`) and a
//! minimal lab service that speaks `HELLO`, `ECHO`, `QUIT` with the
//! protocol's own formats.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6, HOST_IPV4, HOST_IPV6};
use socklab_app::protocol::{
    self, Command as LabCommand, Hello, BYE, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, END,
    ERR_TOO_LONG, ERR_UNKNOWN, LAB_PORT, MAX_LINE, OK, VERSION,
};

use super::throughput::{ChargenPattern, READ_CHUNK, WRITE_CHUNK};
use super::{BenchError, Target};
use crate::cleanup;
use crate::client::{wait_for_hello, HelloWait, LabClient};
use crate::netns::{self, HostNet, Netns};

/// The hidden subcommand that runs [`serve`].
pub const SERVER_SUBCOMMAND: &str = "kernel-server";
/// What the server prints on stdout once it listens.
pub const READY_LINE: &str = "socklab kernel-server ready";
/// Board name the server gives in `INFO`.
pub const BOARD: &str = "linux-kernel";
/// Prefix of the namespaces this module creates.
pub const NETNS_PREFIX: &str = "slbench-";
/// How long the server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Listen backlog: a thousand clients may connect at once.
const BACKLOG: i32 = 4096;

/// How to set up the baseline.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// MTU of both ends of the veth pair.
    pub mtu: u32,
    /// The program that serves (`socklab`, re-executed); `None`: this one.
    pub program: Option<PathBuf>,
}

/// The kernel baseline, running: two namespaces, a veth pair, a server
/// process. Dropping it stops the server and deletes the veth and the
/// namespaces by name.
#[derive(Debug)]
pub struct KernelBaseline {
    server: Option<Child>,
    /// Kept open: the server exits when it reads EOF (we are gone).
    stdin: Option<ChildStdin>,
    pid: u32,
    veth: String,
    mtu: u32,
    // Deleted after the server is stopped and the veth removed.
    host: Option<Netns>,
    srv: Option<Netns>,
}

fn command_error(what: &str, error: impl ToString) -> BenchError {
    BenchError::Setup(format!("kernel baseline: {what}: {}", error.to_string()))
}

impl KernelBaseline {
    /// Creates the namespaces and the veth pair and starts the server; waits
    /// until a lab client gets its `HELLO` across the veth.
    pub fn start(opts: &KernelOptions) -> Result<Self, BenchError> {
        if !netns::is_root() {
            return Err(BenchError::Setup(
                "--baseline kernel creates network namespaces and a veth pair: run as root".into(),
            ));
        }
        if !(68..=65535).contains(&opts.mtu) {
            return Err(BenchError::Setup(format!(
                "kernel baseline: MTU {} is outside 68..=65535",
                opts.mtu
            )));
        }
        let id = netns::unique_name("");
        let host = Netns::create(&format!("{NETNS_PREFIX}{id}-host"))?;
        let srv = Netns::create(&format!("{NETNS_PREFIX}{id}-srv"))?;
        let host_if = format!("slb{id}h");
        let srv_if = format!("slb{id}s");
        let mut baseline = KernelBaseline {
            server: None,
            stdin: None,
            pid: 0,
            veth: host_if.clone(),
            mtu: opts.mtu,
            host: Some(host),
            srv: Some(srv),
        };
        let (host, srv) = (
            baseline.host.as_ref().expect("set above"),
            baseline.srv.as_ref().expect("set above"),
        );
        let mtu = opts.mtu.to_string();
        host.ip([
            "link",
            "add",
            &host_if,
            "type",
            "veth",
            "peer",
            "name",
            &srv_if,
            "netns",
            srv.name(),
        ])?;
        let v4 = |ip: Ipv4Addr| format!("{ip}/{}", DEFAULT_IPV4.prefix_len());
        let v6 = |ip| format!("{ip}/{}", DEFAULT_IPV6.prefix_len());
        for (ns, ifname, ip4, ip6) in [
            (host, &host_if, v4(HOST_IPV4), v6(HOST_IPV6)),
            (
                srv,
                &srv_if,
                v4(DEFAULT_IPV4.address()),
                v6(DEFAULT_IPV6.address()),
            ),
        ] {
            ns.ip(["link", "set", "dev", ifname, "mtu", &mtu])?;
            ns.ip(["addr", "add", &ip4, "dev", ifname])?;
            ns.ip(["addr", "add", &ip6, "dev", ifname, "nodad"])?;
            ns.ip(["link", "set", "dev", ifname, "up"])?;
        }

        let program = match &opts.program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| command_error("cannot find this program to re-execute", e))?,
        };
        let mut child = srv
            .command(&program)
            .arg(SERVER_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| command_error(&format!("cannot start {}", program.display()), e))?;
        baseline.pid = child.id();
        cleanup::register_pid(baseline.pid);
        baseline.stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        baseline.server = Some(child);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(READY_LINE) {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = baseline.try_wait() {
                return Err(command_error(
                    "the server exited during start-up",
                    format!("{status}; see its messages above"),
                ));
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {}
                Err(_) => {
                    return Err(command_error(
                        "the server did not say it was ready",
                        format!("waited {START_TIMEOUT:?}"),
                    ))
                }
            }
        }
        // Across the veth, as the bench will talk to it.
        let target = baseline.target();
        match wait_for_hello(&target.net, target.lab_addr(), deadline, || {
            Ok::<(), std::convert::Infallible>(())
        }) {
            Ok(()) => Ok(baseline),
            Err(HelloWait::Stopped(never)) => match never {},
            Err(HelloWait::TimedOut { last_error, .. }) => {
                Err(command_error("no HELLO across the veth", last_error))
            }
        }
    }

    /// What the bench talks to.
    pub fn target(&self) -> Target {
        let host = self.host.as_ref().expect("namespaces live until drop");
        Target {
            name: "kernel".into(),
            description: format!(
                "Linux TCP over a veth pair (MTU {}), std server pid {} in namespace {}",
                self.mtu,
                self.pid,
                self.srv.as_ref().map(Netns::name).unwrap_or_default()
            ),
            board: BOARD.into(),
            net: HostNet::Netns(host.name().to_owned()),
            ip: DEFAULT_IPV4.address().into(),
            forwarded: Vec::new(),
            pid: Some(self.pid),
            mtu: Some(self.mtu),
            lab_slots: None,
            bulk_buffers: None,
        }
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.server.as_mut()?.try_wait().ok().flatten()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 2 s) and reaps it.
    fn stop_server(&mut self) {
        self.stdin = None;
        let Some(mut child) = self.server.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            // The child is ours and not reaped: its PID cannot have been reused.
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                thread::sleep(Duration::from_millis(10));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
        cleanup::unregister_pid(self.pid);
    }
}

impl Drop for KernelBaseline {
    fn drop(&mut self) {
        self.stop_server();
        if let Some(host) = &self.host {
            if let Err(e) = host.ip(["link", "del", "dev", &self.veth]) {
                eprintln!("socklab: could not delete veth {}: {e}", self.veth);
            }
        }
        // The namespaces delete themselves, server side first.
        drop(self.srv.take());
        drop(self.host.take());
    }
}

/// Serves echo, discard, chargen and a minimal lab on `bind` (all ports
/// of `socklab_app::protocol`), prints [`READY_LINE`], and runs until its
/// stdin reaches end of file (the bench that started it is gone) or it is
/// killed.
pub fn serve(bind: Ipv4Addr) -> io::Result<()> {
    let listen = |port: u16| -> io::Result<TcpListener> {
        let addr = SocketAddr::from((bind, port));
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket
            .bind(&addr.into())
            .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        socket.listen(BACKLOG)?;
        Ok(socket.into())
    };
    let services: [(u16, fn(TcpStream)); 4] = [
        (ECHO_PORT, echo),
        (DISCARD_PORT, discard),
        (CHARGEN_PORT, chargen),
        (LAB_PORT, lab),
    ];
    ChargenPattern::get();
    for (port, serve_one) in services {
        let listener = listen(port)?;
        thread::Builder::new()
            .name(format!("accept {port}"))
            .spawn(move || accept_loop(listener, serve_one))?;
    }
    println!("{READY_LINE} pid={}", std::process::id());
    io::stdout().flush()?;
    // Until the parent closes our stdin (or dies).
    let mut sink = [0u8; 64];
    let mut stdin = io::stdin();
    while !matches!(stdin.read(&mut sink), Ok(0) | Err(_)) {}
    Ok(())
}

/// Idle workers kept waiting in `accept` per service.
const SPARE_WORKERS: usize = 2;

/// Serves `listener` with a pool of worker threads that each accept and then
/// serve one connection at a time: no thread is created on the way from
/// `accept` to the first byte. A worker that takes a connection while fewer
/// than [`SPARE_WORKERS`] others wait starts another one first, so the pool
/// grows to the number of connections held at once (and stays there).
fn accept_loop(listener: TcpListener, serve_one: fn(TcpStream)) {
    let pool = Arc::new(AcceptWorkers {
        listener,
        serve_one,
        idle: AtomicUsize::new(0),
    });
    for _ in 0..SPARE_WORKERS {
        pool.clone().spawn_worker();
    }
    // This thread only keeps the pool alive.
    loop {
        thread::park();
    }
}

struct AcceptWorkers {
    listener: TcpListener,
    serve_one: fn(TcpStream),
    /// Workers waiting in `accept`.
    idle: AtomicUsize,
}

impl AcceptWorkers {
    fn spawn_worker(self: Arc<Self>) {
        self.idle.fetch_add(1, Ordering::SeqCst);
        let pool = self.clone();
        let spawned = thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || pool.work());
        if let Err(e) = spawned {
            self.idle.fetch_sub(1, Ordering::SeqCst);
            eprintln!("socklab kernel-server: cannot start a thread: {e}");
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.idle.fetch_sub(1, Ordering::SeqCst) <= SPARE_WORKERS {
                        self.clone().spawn_worker();
                    }
                    (self.serve_one)(stream);
                    self.idle.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("socklab kernel-server: accept: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// RFC 862: everything back; closes after the client's FIN.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; WRITE_CHUNK];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// RFC 863: everything dropped; closes after the client's FIN.
fn discard(mut stream: TcpStream) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// RFC 864: the pattern until the client goes away.
fn chargen(mut stream: TcpStream) {
    let pattern = ChargenPattern::get();
    let mut pos = 0u64;
    loop {
        match stream.write(pattern.at(pos, WRITE_CHUNK)) {
            Ok(0) => return,
            Ok(n) => pos += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Lab slots in use, like the device's pool (but unbounded).
static SLOTS: Mutex<Vec<bool>> = Mutex::new(Vec::new());

struct Slot(usize);

impl Slot {
    fn take() -> Slot {
        let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        let index = match slots.iter().position(|used| !used) {
            Some(i) => i,
            None => {
                slots.push(false);
                slots.len() - 1
            }
        };
        slots[index] = true;
        Slot(index)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        SLOTS.lock().unwrap_or_else(|p| p.into_inner())[self.0] = false;
    }
}

/// The lab protocol's `HELLO`, `ECHO`, `SAY` (no one else hears it), `INFO`
/// (the board only) and `QUIT`; long lines as the device treats them.
fn lab(mut stream: TcpStream) {
    let slot = Slot::take();
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let hello = Hello {
        version: VERSION,
        slot: slot.0,
        management: false,
        peer,
        local,
    };
    let mut out = format!("{hello}\n").into_bytes();
    if stream.write_all(&out).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE + 2);
    let mut too_long = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        out.clear();
        let mut quit = false;
        for &byte in &buf[..n] {
            if byte != b'\n' {
                if too_long {
                    continue;
                }
                line.push(byte);
                // One more byte may be the CR of a CRLF.
                if line.len() > MAX_LINE + 1 {
                    too_long = true;
                    line.clear();
                    out.extend_from_slice(ERR_TOO_LONG.as_bytes());
                    out.push(b'\n');
                }
                continue;
            }
            if too_long {
                too_long = false;
                continue;
            }
            let text = line.strip_suffix(b"\r").unwrap_or(&line);
            if text.len() > MAX_LINE {
                out.extend_from_slice(ERR_TOO_LONG.as_bytes());
                out.push(b'\n');
            } else {
                match LabCommand::parse(text) {
                    LabCommand::Echo(text) => {
                        out.extend_from_slice(text);
                        out.push(b'\n');
                    }
                    LabCommand::Say(_) => out.extend_from_slice(format!("{OK}\n").as_bytes()),
                    LabCommand::Info => out.extend_from_slice(
                        format!("{}={BOARD}\n{END}\n", protocol::info::BOARD).as_bytes(),
                    ),
                    LabCommand::Quit => {
                        out.extend_from_slice(format!("{BYE}\n").as_bytes());
                        quit = true;
                    }
                    LabCommand::Empty => {}
                    LabCommand::Who
                    | LabCommand::Netstat
                    | LabCommand::Ifconfig
                    | LabCommand::Events(_)
                    | LabCommand::Unknown => {
                        out.extend_from_slice(ERR_UNKNOWN.as_bytes());
                        out.push(b'\n');
                    }
                }
            }
            line.clear();
            if quit {
                break;
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if quit {
            // Like the device: BYE, then close.
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Checks that a server answers like the device on the lab port (used by
/// the tests; the bench itself checks with [`LabClient`]).
pub fn check_lab(addr: SocketAddr) -> Result<(), crate::client::ClientError> {
    let mut client = LabClient::connect(addr, Duration::from_secs(2))?;
    let answer = client.echo("kernel check")?;
    if answer != "kernel check" {
        return Err(crate::client::ClientError::Protocol {
            addr,
            during: "checking ECHO".into(),
            line: answer,
            reason: "expected the text back".into(),
        });
    }
    client.quit()
}

#[cfg(test)]
mod test {
    use super::*;

    /// The lab server speaks the protocol the client expects (on 127.0.0.1,
    /// an ephemeral port).
    #[test]
    fn lab_server_speaks_the_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || accept_loop(listener, lab));
        check_lab(addr).unwrap();
        let mut a = LabClient::connect(addr, Duration::from_secs(2)).unwrap();
        let b = LabClient::connect(addr, Duration::from_secs(2)).unwrap();
        assert_ne!(a.greeting().slot, b.greeting().slot);
        assert_eq!(a.greeting().peer, a.local_addr().unwrap());
        a.send_raw(&[b'x'; 600]).unwrap();
        a.send_raw(b"\r\nECHO  two spaces\r\n").unwrap();
        assert_eq!(a.read_line().unwrap(), ERR_TOO_LONG);
        assert_eq!(a.read_line().unwrap(), " two spaces");
        a.say("hi").unwrap();
        assert_eq!(a.info().unwrap().get("board"), Some(BOARD));
        a.send_line("WHAT").unwrap();
        assert_eq!(a.read_line().unwrap(), ERR_UNKNOWN);
        a.quit().unwrap();
        b.quit().unwrap();
    }

    #[test]
    fn bulk_services_behave() {
        let start = |serve_one: fn(TcpStream)| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            thread::spawn(move || accept_loop(listener, serve_one));
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        };
        // Echo: back, then closed after our FIN.
        let mut s = start(echo);
        s.write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");
        // Discard: nothing back, closed after our FIN.
        let mut s = start(discard);
        s.write_all(&[7; 100_000]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
        // Chargen: the RFC 864 stream from its start.
        let mut s = start(chargen);
        let mut got = vec![0u8; 20_000];
        s.read_exact(&mut got).unwrap();
        assert_eq!(ChargenPattern::get().mismatch(0, &got), None);
        assert_eq!(&got[..4], b" !\"#");
    }
}
