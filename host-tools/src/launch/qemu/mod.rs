//! The QEMU launcher: a firmware image booted in QEMU on a [`Machine`]
//! (mps2-an385: the Cortex-M3 and its LAN9118), its NIC on QEMU user
//! networking (host ports forwarded on 127.0.0.1) or on a TAP inside a
//! private network namespace. The command line is built once, in
//! `command.rs`, from the board's table; `socklab run qemu` and the board's
//! cargo runner use it.
//!
//! Readiness, as measured on this board: the firmware logs
//! `listening on ...` about 2 ms after reset and `DHCP lease 10.0.2.15/24 ...`
//! about 6 ms after it on user networking. QEMU's slirp drops a host
//! connection made to a forwarded port before the guest has its lease and
//! retries only ~5 s later, and with user networking a host `connect()`
//! succeeds before the guest answers at all, so the launcher waits for the
//! UART line first, then for a `HELLO`, reconnecting every 250 ms.
//!
//! A crash (the firmware's panic and HardFault handlers end QEMU with status 1
//! through semihosting) is seen at once: see `supervise.rs`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6};

use crate::launch::artifacts::{find_image, find_qemu, Image};
use crate::launch::hostnet::{HostSide, SecondSide};
use crate::launch::machine::Machine;
use crate::launch::ports::{
    free_port_base, DEFAULT_PORT_BASE, FORWARDED_PORTS, HIGHEST_FORWARDED_PORT, MAX_PORT_BASE,
};
use crate::launch::supervise::{await_hello, DeviceLog, Process, Stream};
use crate::launch::{LaunchError, NetnsChoice, Network, RunningBoard, DEFAULT_READY_TIMEOUT};
use crate::netns::{self, HostNet, Netns, Tap};
use crate::ping::PingError;

mod command;

pub use command::{mac_text, qemu_args, QemuLink};
/// The UART line that says the firmware is up (static addresses in place).
const LISTENING_MARK: &str = "listening on ";
/// The UART line that says the device took a DHCP lease.
const LEASE_MARK: &str = "DHCP lease ";
/// QEMU's complaint when a forwarded host port is taken.
const HOSTFWD_BUSY: &str = "host forwarding rule";

/// How the board's NIC reaches the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuNet {
    /// QEMU user networking (no root needed): the device takes a DHCP lease
    /// (10.0.2.15) and each of [`FORWARDED_PORTS`] is forwarded from
    /// 127.0.0.1:`base + port`. `None`: a free base is picked (for tests that
    /// run side by side).
    User {
        /// The port base; [`DEFAULT_PORT_BASE`] for the documented ports.
        port_base: Option<u16>,
    },
    /// A TAP with the host-side addresses; the device keeps its static
    /// 192.168.69.1/24 and fdaa::1/64 (no DHCP server answers there).
    Tap {
        /// The namespace the TAP and QEMU live in.
        netns: NetnsChoice,
        /// The TAP; created if missing. `None`: a fresh name in a private
        /// namespace, `tap0` otherwise.
        tap: Option<String>,
    },
}

impl QemuNet {
    /// User networking on the documented ports (lab 16666, echo 10007, ...).
    pub fn user() -> Self {
        QemuNet::User {
            port_base: Some(DEFAULT_PORT_BASE),
        }
    }

    /// User networking on a free port base (bind-probed on 127.0.0.1).
    pub fn user_any_ports() -> Self {
        QemuNet::User { port_base: None }
    }

    /// A TAP of its own in a private namespace (needs root).
    pub fn private_tap() -> Self {
        QemuNet::Tap {
            netns: NetnsChoice::Private,
            tap: None,
        }
    }
}

/// How to start a [`QemuDevice`].
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The machine.
    pub machine: Machine,
    /// The network.
    pub net: QemuNet,
    /// Capture the NIC's frames to this pcap file (QEMU's `filter-dump`).
    pub pcap: Option<PathBuf>,
    /// Where the UART log (QEMU's stdout and stderr) goes.
    pub log: DeviceLog,
    /// How long to wait for the `HELLO`.
    pub ready_timeout: Duration,
    /// The ELF to boot.
    pub image: Image,
    /// Boot options for the firmware (`--drop-chance 5`, ...), handed over as
    /// its semihosting command line; an image that does not know an option
    /// stops with a panic that names it.
    pub firmware_args: Vec<String>,
    /// More arguments for QEMU (before `-kernel`).
    pub qemu_args: Vec<OsString>,
    /// Network interfaces, 1 up to the machine's `networks`: the second is a NIC
    /// on a TAP of its own in a namespace of its own (192.168.70.1, fdab::1); QEMU's
    /// user networking, when chosen, is the first network's only.
    pub networks: usize,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            machine: Machine::default(),
            net: QemuNet::user(),
            pcap: None,
            log: DeviceLog::Capture,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            image: Image::default(),
            firmware_args: Vec::new(),
            qemu_args: Vec::new(),
            networks: 1,
        }
    }
}

/// A firmware image running in QEMU, reachable and answering `HELLO`.
///
/// Dropping it stops QEMU (SIGTERM, then SIGKILL after 2 s; by PID, always
/// reaped), and deletes the TAP and namespace it created, and its captured
/// log (unless `SOCKLAB_KEEP_LOGS` is set or the thread is panicking).
#[derive(Debug)]
pub struct QemuDevice {
    // Dropped in this order: the process (stopped), the TAP, the namespace.
    process: Process,
    machine: Machine,
    image: PathBuf,
    link: QemuLink,
    host_net: HostNet,
    command_line: String,
    ready_after: Duration,
    pcap: Option<PathBuf>,
    host: Option<HostSide>,
    /// The second network's TAP and namespace (dropped after the first's).
    second: Option<SecondSide>,
}

/// Runs the images' own boot-option parser on `args`, so that an option an
/// image would refuse (an unknown one, a timeout out of its range) is an error
/// here, with the parser's message, instead of a firmware that stops at boot.
fn check_boot_options(args: &[String]) -> Result<(), LaunchError> {
    // The image sees its program name first, then the options.
    let line = format!("socklab {}", args.join(" "));
    let mut config = socklab_app::Config::default();
    socklab_app::bootopts::parse(&line, &mut config)
        .map(drop)
        .map_err(|error| LaunchError::BootOptions(error.to_string()))
}

impl QemuDevice {
    /// Finds (or builds) the image, boots it in QEMU on the chosen network
    /// and waits until a lab client gets `HELLO`.
    pub fn start(opts: QemuOptions) -> Result<Self, LaunchError> {
        check_boot_options(&opts.firmware_args)?;
        find_qemu(opts.machine)?;
        let image = find_image(opts.machine, &opts.image)?;
        match opts.net {
            QemuNet::User { port_base: None } => {
                // Another process may take a probed port before QEMU binds it:
                // then QEMU exits at once, and another base is tried.
                let mut tries = 0;
                loop {
                    tries += 1;
                    let base = free_port_base().ok_or_else(|| {
                        LaunchError::Ports("no free set of ports on 127.0.0.1 below 32768".into())
                    })?;
                    match Self::boot(&opts, &image, Some(base)) {
                        Err(LaunchError::Exited { log, .. })
                            if tries < 5 && log.contains(HOSTFWD_BUSY) => {}
                        result => return result,
                    }
                }
            }
            QemuNet::User { port_base } => Self::boot(&opts, &image, port_base),
            QemuNet::Tap { .. } => Self::boot(&opts, &image, None),
        }
    }

    /// Starts a device with the default options for tests: user networking
    /// on a free port base, the log captured.
    pub fn start_user() -> Result<Self, LaunchError> {
        Self::start(QemuOptions {
            net: QemuNet::user_any_ports(),
            ..QemuOptions::default()
        })
    }

    /// Starts a device on a TAP in a private namespace, the log captured
    /// (needs root).
    pub fn start_tap() -> Result<Self, LaunchError> {
        Self::start(QemuOptions {
            net: QemuNet::private_tap(),
            ..QemuOptions::default()
        })
    }

    fn boot(opts: &QemuOptions, image: &Path, port_base: Option<u16>) -> Result<Self, LaunchError> {
        let spec = opts.machine.spec();
        let id = netns::unique_name("");
        let (link, host) = match &opts.net {
            QemuNet::User { .. } => {
                let base = port_base.unwrap_or(DEFAULT_PORT_BASE);
                if base > MAX_PORT_BASE {
                    return Err(LaunchError::Ports(format!(
                        "port base {base} is too big: {base} + {HIGHEST_FORWARDED_PORT} is no port \
                         (at most {MAX_PORT_BASE})"
                    )));
                }
                let link = QemuLink::User {
                    port_base: base,
                    lease: Ipv4Addr::new(10, 0, 2, 15),
                };
                (link, None)
            }
            QemuNet::Tap { netns, tap } => {
                let host = HostSide::attach(netns, tap.as_deref(), &id, None, None)?;
                (QemuLink::Tap, Some(host))
            }
        };
        let host_net = host.as_ref().map(HostSide::host_net).unwrap_or_default();
        let max = spec.max_networks();
        if !(1..=max).contains(&opts.networks) {
            return Err(LaunchError::Networks(format!(
                "--networks {}: {} serves at most {max} (one network per NIC)",
                opts.networks, spec.board
            )));
        }
        // The second network's TAP starts where QEMU opens it and moves to a
        // namespace of its own once the device answers.
        let qemu_netns = host.as_ref().and_then(|h| h.netns.as_ref());
        let second_tap = if opts.networks == 2 {
            Some(Tap::create_bare(&format!("sl{id}b"), qemu_netns, None)?)
        } else {
            None
        };
        let pcap = opts.pcap.as_deref().map(absolute);
        let args = qemu_args(
            spec,
            &link,
            host.as_ref().map(|h| h.tap.name()),
            second_tap.as_ref().map(Tap::name),
            pcap.as_deref(),
            &opts.firmware_args,
        );
        let mut command = match host.as_ref().and_then(|h| h.netns.as_ref()) {
            Some(ns) => ns.command(&spec.qemu),
            None => Command::new(&spec.qemu),
        };
        command
            .args(&args)
            .args(&opts.qemu_args)
            .arg("-kernel")
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command_line = shell_words(&command);
        let started = Instant::now();
        let process = Process::spawn(command, "QEMU", &opts.log, &id, "uart.log")?;
        if let Some(stdout) = process.take_stdout() {
            let uart = Stream {
                log: true,
                mark: |line| line.contains(LEASE_MARK) || line.contains(LISTENING_MARK),
            };
            process.read(stdout, uart);
        }
        if let Some(stderr) = process.take_stderr() {
            process.read(
                stderr,
                Stream {
                    log: true,
                    mark: |_| false,
                },
            );
        }
        let mut device = QemuDevice {
            process,
            machine: opts.machine,
            image: image.to_owned(),
            link,
            host_net,
            command_line,
            ready_after: Duration::ZERO,
            pcap,
            host,
            second: None,
        };
        device.wait_ready(started, opts.ready_timeout)?;
        if let Some(tap) = second_tap {
            device.second = Some(SecondSide::attach(tap, &id)?);
            let second = device.second.as_ref().expect("just attached");
            second.await_hello(opts.ready_timeout, || device.check_alive(), || device.log())?;
        }
        Ok(device)
    }

    /// Waits for the UART line that says the device is up, then for a `HELLO`.
    fn wait_ready(&mut self, started: Instant, timeout: Duration) -> Result<(), LaunchError> {
        let deadline = started + timeout;
        let user = matches!(self.link, QemuLink::User { .. });
        let (mark, what) = if user {
            (LEASE_MARK, "no DHCP lease line on the UART")
        } else {
            (LISTENING_MARK, "the firmware never logged `listening on`")
        };
        let not_ready = |device: &Self, reason: String| LaunchError::NotReady {
            timeout,
            reason,
            log: device.log(),
        };
        let seen = self.process.wait_until(deadline, |state| {
            state.status.is_some() || state.marks.iter().any(|line| line.contains(mark))
        });
        self.check_alive()?;
        if !seen {
            return Err(not_ready(self, what.to_owned()));
        }
        if user {
            let lease = self.process.with(|state| {
                state
                    .marks
                    .iter()
                    .find_map(|line| parse_lease(line))
                    .unwrap_or(Ipv4Addr::new(10, 0, 2, 15))
            });
            if let QemuLink::User { lease: l, .. } = &mut self.link {
                *l = lease;
            }
        }
        let addr = self.lab_addr();
        await_hello(
            &self.host_net,
            addr,
            deadline,
            || self.check_alive(),
            |reason| not_ready(self, reason),
        )?;
        self.ready_after = started.elapsed();
        Ok(())
    }

    fn check_alive(&self) -> Result<(), LaunchError> {
        self.process.alive(|| self.log())
    }

    /// How the device is connected.
    pub fn link(&self) -> &QemuLink {
        &self.link
    }

    /// With user networking: the host port base.
    pub fn port_base(&self) -> Option<u16> {
        match self.link {
            QemuLink::User { port_base, .. } => Some(port_base),
            QemuLink::Tap => None,
        }
    }

    /// The host port a device port is forwarded from (user networking, and
    /// only for [`FORWARDED_PORTS`]).
    pub fn forwarded_port(&self, port: u16) -> Option<u16> {
        match self.link {
            QemuLink::User { port_base, .. } if FORWARDED_PORTS.contains(&port) => {
                Some(port_base + port)
            }
            _ => None,
        }
    }

    /// How long it took from starting QEMU to the first `HELLO`.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The image that runs.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The QEMU command line, quoted for a shell.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Where the UART log is written (`None`: to the terminal).
    pub fn log_path(&self) -> Option<&Path> {
        self.process.log_path()
    }

    /// The machine QEMU runs.
    pub fn machine(&self) -> Machine {
        self.machine
    }

    /// The QEMU process: its log, its terminal output, its exit.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The pcap file, if one is written.
    pub fn pcap(&self) -> Option<&Path> {
        self.pcap.as_deref()
    }

    /// The namespace QEMU and its TAP live in (`None`: the caller's).
    pub fn netns(&self) -> Option<&Netns> {
        self.host.as_ref()?.netns.as_ref()
    }

    /// The TAP the NIC is attached to (`None` with user networking).
    pub fn tap(&self) -> Option<&Tap> {
        self.host.as_ref().map(|h| &h.tap)
    }

    /// Has QEMU exited? How, if so (it is reaped already).
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.process.status()
    }

    /// Stops QEMU and removes what was created, reporting how QEMU ended. The
    /// connections to the device end first (see [`QemuDevice::end_connections`]).
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.end_connections();
        self.process.stop()
    }

    /// Ends every TCP connection to the device before QEMU goes. The firmware
    /// cannot be told to reset them (QEMU stops a guest like a power cut), so
    /// the host ends them with the kernel's socket destroy (`ss -K`), and no
    /// client is left waiting on a device that is gone:
    ///
    /// * user networking: the host-side sockets QEMU accepted on the forwarded
    ///   ports are destroyed, which sends each client an RST (its read fails
    ///   with ECONNRESET);
    /// * a TAP: the sockets in the device's namespace connected to the
    ///   device's addresses are destroyed (their owner's read fails with
    ///   ECONNABORTED).
    ///
    /// Without `ss` or a kernel with `CONFIG_INET_DIAG_DESTROY` nothing is
    /// ended, and the clients learn of the stop from their own timeouts.
    pub fn end_connections(&self) {
        let filter = match self.link {
            QemuLink::User { .. } => {
                let ports: Vec<String> = FORWARDED_PORTS
                    .iter()
                    .filter_map(|&port| self.forwarded_port(port))
                    .map(|port| format!("sport = :{port}"))
                    .collect();
                format!("src 127.0.0.1 and ( {} )", ports.join(" or "))
            }
            QemuLink::Tap => format!(
                "( dst {} or dst [{}] )",
                DEFAULT_IPV4.address(),
                DEFAULT_IPV6.address()
            ),
        };
        let mut command = match (&self.link, self.host_net.netns_name()) {
            (QemuLink::Tap, Some(ns)) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, "ss"]);
                command
            }
            _ => Command::new("ss"),
        };
        command
            .args(["-K", "-t", "-n", "state", "connected"])
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Best effort: a stop goes on whatever `ss` says.
        let _ = command.status();
    }
}

impl RunningBoard for QemuDevice {
    fn board(&self) -> &str {
        &self.machine.spec().board
    }

    fn second_network(&self) -> Option<&Network> {
        self.second.as_ref().map(|second| &second.network)
    }

    fn host_net(&self) -> &HostNet {
        &self.host_net
    }

    /// With user networking, 127.0.0.1 and the forwarded port; a port that
    /// is not forwarded maps to port 0 (and [`RunningBoard::connect`] refuses it).
    fn addr(&self, port: u16) -> SocketAddr {
        match self.link {
            QemuLink::User { .. } => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                self.forwarded_port(port).unwrap_or(0),
            ),
            QemuLink::Tap => SocketAddr::new(IpAddr::V4(DEFAULT_IPV4.address()), port),
        }
    }

    fn addr6(&self, port: u16) -> Option<SocketAddr> {
        match self.link {
            QemuLink::User { .. } => None,
            QemuLink::Tap => Some(SocketAddr::new(IpAddr::V6(DEFAULT_IPV6.address()), port)),
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn tap_name(&self) -> Option<&str> {
        self.tap().map(Tap::name)
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn connect(&self, port: u16) -> io::Result<TcpStream> {
        if matches!(self.link, QemuLink::User { .. }) && self.forwarded_port(port).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "device port {port} is not forwarded by QEMU's user networking \
                     (forwarded: {FORWARDED_PORTS:?})"
                ),
            ));
        }
        self.connect_addr(self.addr(port))
    }

    fn ping4(&self) -> Result<Duration, PingError> {
        match self.link {
            QemuLink::User { .. } => Err(PingError::Unsupported(
                "QEMU's user networking forwards TCP ports only; boot it on a TAP (--net tap) to ping",
            )),
            QemuLink::Tap => self.host_net.run(|| crate::ping::ping(
                IpAddr::V4(DEFAULT_IPV4.address()),
                crate::client::DEFAULT_TIMEOUT,
            ))
            .map_err(|e| PingError::Io {
                addr: IpAddr::V4(DEFAULT_IPV4.address()),
                error: e.into(),
            })?,
        }
    }

    fn ping6(&self) -> Result<Duration, PingError> {
        match self.link {
            QemuLink::User { .. } => Err(PingError::Unsupported(
                "QEMU's user networking gives the device no IPv6 address the host can reach; \
                 boot it on a TAP (--net tap)",
            )),
            QemuLink::Tap => self
                .host_net
                .run(|| {
                    crate::ping::ping(
                        IpAddr::V6(DEFAULT_IPV6.address()),
                        crate::client::DEFAULT_TIMEOUT,
                    )
                })
                .map_err(|e| PingError::Io {
                    addr: IpAddr::V6(DEFAULT_IPV6.address()),
                    error: e.into(),
                })?,
        }
    }

    fn how_to_connect(&self) -> String {
        let lab = self.lab_addr();
        match (&self.link, self.host_net.netns_name()) {
            (QemuLink::User { .. }, _) => format!("socklab connect {lab}"),
            (QemuLink::Tap, Some(ns)) => format!("socklab --netns {ns} connect {}", lab.ip()),
            (QemuLink::Tap, None) => format!("socklab connect {}", lab.ip()),
        }
    }

    fn behind_nat(&self) -> bool {
        matches!(self.link, QemuLink::User { .. })
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.process.status()
    }
}

/// `path`, absolute (QEMU may run with another working directory's view).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The command line as a person would type it.
fn shell_words(command: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@%".contains(c))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `DHCP lease 10.0.2.15/24 router ...` → 10.0.2.15.
fn parse_lease(line: &str) -> Option<Ipv4Addr> {
    let rest = &line[line.find(LEASE_MARK)? + LEASE_MARK.len()..];
    rest.split(['/', ' ']).next()?.parse().ok()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn lease_line_parses() {
        assert_eq!(
            parse_lease(
                "[     0.006 INFO  socklab_app] DHCP lease 10.0.2.15/24 router Some(10.0.2.2)"
            ),
            Some(Ipv4Addr::new(10, 0, 2, 15))
        );
        assert_eq!(
            parse_lease("DHCP lease lost: back to 192.168.69.1/24"),
            None
        );
    }

    #[test]
    fn shell_words_quote_what_needs_it() {
        let mut command = Command::new("qemu-system-arm");
        command.args(["-nic", "user,hostfwd=tcp:127.0.0.1:1-:2", "a b"]);
        assert_eq!(
            shell_words(&command),
            "qemu-system-arm -nic user,hostfwd=tcp:127.0.0.1:1-:2 'a b'"
        );
    }
}
