//! The QEMU boards: a firmware image booted in QEMU ([`QemuMachine`]: mps2-an385
//! in `qemu-system-arm` with its LAN9118, or riscv-virt in `qemu-system-riscv32`
//! with virtio-net), its NIC on QEMU user networking (host ports forwarded on
//! 127.0.0.1) or on a TAP inside a private network namespace.
//!
//! Readiness, as measured on this board: the firmware logs
//! `listening on ...` about 2 ms after reset and `DHCP lease 10.0.2.15/24 ...`
//! about 6 ms after it on user networking. QEMU's slirp drops a host
//! connection made to a forwarded port before the guest has its lease and
//! retries only ~5 s later, and with user networking a host `connect()`
//! succeeds before the guest answers at all, so the launcher waits for the
//! UART line first, then for a `HELLO`, reconnecting every 250 ms.
//!
//! A watcher thread waits for QEMU's exit without reaping it first
//! (`waitid(WNOWAIT)`), so a crash (the firmware's panic and HardFault
//! handlers end QEMU with status 1 through semihosting) is seen at once and
//! the PID is never signalled after it could be reused.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6, DEFAULT_MAC};
use socklab_app::protocol::{
    CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, IPERF2_PORT, IPERF3_PORT, LAB_PORT,
};

use super::{source_root, Device, LaunchError, NetnsChoice, DEFAULT_READY_TIMEOUT, KEEP_LOGS_ENV};
use crate::cleanup;
use crate::netns::{self, HostNet, Netns, Tap};
use crate::ping::PingError;

/// The board's name, as `INFO` gives it.
pub const MPS2_BOARD: &str = "mps2-an385";
/// The QEMU program.
pub const QEMU_BIN: &str = "qemu-system-arm";
/// Environment variable naming a prebuilt mps2-an385 image (ELF) to boot
/// instead of building one.
pub const MPS2_ELF_ENV: &str = "SOCKLAB_MPS2_ELF";
/// Where `scripts/fw-cargo build --release` puts the image, from the source root.
pub const MPS2_ELF_PATH: &str =
    "firmware/boards/mps2-an385/target/thumbv7m-none-eabi/release/socklab-mps2";
/// The riscv-virt board's name, as `INFO` gives it.
pub const RISCV_BOARD: &str = "riscv-virt";
/// Environment variable naming a prebuilt riscv-virt image (ELF).
pub const RISCV_ELF_ENV: &str = "SOCKLAB_RISCV_ELF";
/// Where `scripts/fw-cargo --board riscv-virt build --release` puts the image.
pub const RISCV_ELF_PATH: &str =
    "firmware/boards/riscv-virt/target/riscv32imac-unknown-none-elf/release/socklab-riscv";

/// Which QEMU machine, and so which firmware image and NIC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QemuMachine {
    /// mps2-an385 (Cortex-M3) with its LAN9118, in `qemu-system-arm`.
    #[default]
    Mps2An385,
    /// virt (riscv32imac) with virtio-net over MMIO, in `qemu-system-riscv32`.
    RiscvVirt,
}

impl QemuMachine {
    /// The board's name, as `INFO` gives it.
    pub fn board(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => MPS2_BOARD,
            QemuMachine::RiscvVirt => RISCV_BOARD,
        }
    }

    /// The QEMU program.
    pub fn qemu_bin(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => QEMU_BIN,
            QemuMachine::RiscvVirt => "qemu-system-riscv32",
        }
    }

    /// The Debian package that has [`QemuMachine::qemu_bin`].
    fn qemu_package(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => "qemu-system-arm",
            QemuMachine::RiscvVirt => "qemu-system-misc",
        }
    }

    /// The image's name, its argv[0].
    fn elf_name(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => "socklab-mps2",
            QemuMachine::RiscvVirt => "socklab-riscv",
        }
    }

    /// The variable naming a prebuilt image.
    pub fn elf_env(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => MPS2_ELF_ENV,
            QemuMachine::RiscvVirt => RISCV_ELF_ENV,
        }
    }

    /// Where the build puts the image, from the source root.
    pub fn elf_path(self) -> &'static str {
        match self {
            QemuMachine::Mps2An385 => MPS2_ELF_PATH,
            QemuMachine::RiscvVirt => RISCV_ELF_PATH,
        }
    }

    /// `scripts/fw-cargo` arguments that build the image.
    fn build_args(self) -> &'static [&'static str] {
        match self {
            QemuMachine::Mps2An385 => &["build", "--release"],
            QemuMachine::RiscvVirt => &["--board", "riscv-virt", "build", "--release"],
        }
    }

    /// The machine and its CPU, and the NIC on netdev `n0` with the device's MAC.
    fn machine_args(self, mac: &str) -> Vec<String> {
        let words: Vec<String> = match self {
            QemuMachine::Mps2An385 => vec![
                "-machine".into(),
                "mps2-an385".into(),
                "-cpu".into(),
                "cortex-m3".into(),
                "-net".into(),
                format!("nic,netdev=n0,model=lan9118,macaddr={mac}"),
            ],
            // No firmware (-bios none): the ELF runs in machine mode from 0x8000_0000.
            // Without the event index (event_idx=off) QEMU's used-ring flag tells the
            // driver when not to notify: each notify is a trap through QEMU's global lock,
            // and with the event index the driver notified for nearly every receive
            // buffer it posted back (see the board's README).
            QemuMachine::RiscvVirt => vec![
                "-machine".into(),
                "virt".into(),
                "-bios".into(),
                "none".into(),
                "-device".into(),
                format!("virtio-net-device,netdev=n0,mac={mac},event_idx=off"),
            ],
        };
        words
    }
}
/// Host port = base + device port, on 127.0.0.1 (lab 16666, echo 10007, ...).
pub const DEFAULT_PORT_BASE: u16 = 10_000;
/// A device port where nothing listens, forwarded anyway so that a refusal can
/// be seen through QEMU's user networking.
pub const QEMU_CLOSED_PORT: u16 = LAB_PORT + 1;
/// The device ports forwarded to the host with user networking.
pub const FORWARDED_PORTS: [u16; 7] = [
    LAB_PORT,
    QEMU_CLOSED_PORT,
    ECHO_PORT,
    DISCARD_PORT,
    CHARGEN_PORT,
    IPERF3_PORT,
    IPERF2_PORT,
];
/// The greatest port base: every forwarded port must stay a valid port.
pub const MAX_PORT_BASE: u16 = u16::MAX - QEMU_CLOSED_PORT;
/// How long one `HELLO` attempt waits before reconnecting.
const HELLO_ATTEMPT: Duration = Duration::from_millis(250);
/// The UART line that says the firmware is up (static addresses in place).
const LISTENING_MARK: &str = "listening on ";
/// The UART line that says the device took a DHCP lease.
const LEASE_MARK: &str = "DHCP lease ";
/// Lines of UART log kept in memory when the log goes to the terminal.
const TAIL_LINES: usize = 400;
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

/// Where the firmware's UART log (QEMU's stdout and stderr) goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QemuLog {
    /// To a file in a temporary directory (removed on drop), read with
    /// [`Device::log`].
    #[default]
    Capture,
    /// To this file (kept).
    File(PathBuf),
    /// To this process's stderr, as it comes; the last lines are also kept
    /// for [`Device::log`].
    Terminal,
}

/// How to start a [`QemuDevice`].
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The machine (board) to boot.
    pub machine: QemuMachine,
    /// The network.
    pub net: QemuNet,
    /// Capture the NIC's frames to this pcap file (QEMU's `filter-dump`).
    pub pcap: Option<PathBuf>,
    /// Where the UART log goes.
    pub log: QemuLog,
    /// How long to wait for the `HELLO`.
    pub ready_timeout: Duration,
    /// The ELF to boot; `None`: see [`find_image`].
    pub image: Option<PathBuf>,
    /// Boot options for the firmware (`--drop-chance 5`, ...), handed over as
    /// its semihosting command line; an image that does not know an option
    /// stops with a panic that names it.
    pub firmware_args: Vec<String>,
    /// More arguments for QEMU (before `-kernel`).
    pub qemu_args: Vec<OsString>,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            machine: QemuMachine::default(),
            net: QemuNet::user(),
            pcap: None,
            log: QemuLog::Capture,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            image: None,
            firmware_args: Vec::new(),
            qemu_args: Vec::new(),
        }
    }
}

/// The network of a running [`QemuDevice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuLink {
    /// User networking: host port = `port_base` + device port, on 127.0.0.1.
    User {
        /// The port base.
        port_base: u16,
        /// The device's DHCP lease (10.0.2.15 on QEMU's default network).
        lease: Ipv4Addr,
    },
    /// A TAP: the device at its static addresses.
    Tap,
}

/// A board's image running in QEMU, reachable and answering `HELLO`.
///
/// Dropping it stops QEMU (SIGTERM, then SIGKILL after 2 s; by PID, always
/// reaped), and deletes the TAP and namespace it created, and its captured
/// log (unless `SOCKLAB_KEEP_LOGS` is set or the thread is panicking).
#[derive(Debug)]
pub struct QemuDevice {
    machine: QemuMachine,
    process: Process,
    image: PathBuf,
    link: QemuLink,
    host_net: HostNet,
    command_line: String,
    ready_after: Duration,
    log_path: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    pcap: Option<PathBuf>,
    // Dropped in this order after QEMU is stopped: TAP, then namespace.
    tap: Option<Tap>,
    netns: Option<Netns>,
}

impl QemuDevice {
    /// Builds the image if needed, boots it in QEMU on the chosen network and
    /// waits until a lab client gets `HELLO`.
    pub fn start(opts: QemuOptions) -> Result<Self, LaunchError> {
        let image = match &opts.image {
            Some(image) => image.clone(),
            None => find_image(opts.machine)?,
        };
        if !image.is_file() {
            return Err(LaunchError::Image(format!(
                "{} is not a file",
                image.display()
            )));
        }
        find_qemu(opts.machine)?;
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
        let id = netns::unique_name("");
        let (link, netns, tap) = match &opts.net {
            QemuNet::User { .. } => {
                let base = port_base.unwrap_or(DEFAULT_PORT_BASE);
                if base > MAX_PORT_BASE {
                    return Err(LaunchError::Ports(format!(
                        "port base {base} is too big: {base} + {QEMU_CLOSED_PORT} is no port \
                         (at most {MAX_PORT_BASE})"
                    )));
                }
                let link = QemuLink::User {
                    port_base: base,
                    lease: Ipv4Addr::new(10, 0, 2, 15),
                };
                (link, None, None)
            }
            QemuNet::Tap { netns: choice, tap } => {
                let tap_name = match (tap, choice) {
                    (Some(name), _) => name.clone(),
                    (None, NetnsChoice::Private) => format!("sl{id}"),
                    (None, _) => "tap0".to_owned(),
                };
                // Only attaching to an existing TAP in our own namespace works
                // unprivileged (and only if the TAP belongs to this user).
                let needs_root = *choice != NetnsChoice::Current || !Tap::exists(&tap_name, None);
                if needs_root && !netns::is_root() {
                    return Err(LaunchError::NotRoot);
                }
                let netns = match choice {
                    NetnsChoice::Private => Some(Netns::create(&format!("socklab-{id}"))?),
                    NetnsChoice::Named(name) => Some(Netns::open_or_create(name)?),
                    NetnsChoice::Current => None,
                };
                let tap = if Tap::exists(&tap_name, netns.as_ref().map(Netns::name)) {
                    Tap::open(&tap_name, netns.as_ref())?
                } else {
                    Tap::create(&tap_name, netns.as_ref(), None)?
                };
                (QemuLink::Tap, netns, Some(tap))
            }
        };
        let host_net = HostNet::from_option(netns.as_ref().map(Netns::name));

        let remove_log_dir = |dir: &Option<PathBuf>| {
            if let Some(dir) = dir {
                cleanup::unregister_dir(dir);
                let _ = fs::remove_dir_all(dir);
            }
        };
        let (log_dir, log_path, terminal) = match &opts.log {
            QemuLog::Capture => {
                let dir = std::env::temp_dir().join(format!("socklab-log-{id}"));
                fs::create_dir_all(&dir).map_err(LaunchError::Log)?;
                cleanup::register_dir(&dir);
                let path = dir.join("uart.log");
                (Some(dir), Some(path), false)
            }
            QemuLog::File(path) => (None, Some(path.clone()), false),
            QemuLog::Terminal => (None, None, true),
        };
        let file = match log_path.as_deref().map(File::create).transpose() {
            Ok(file) => file,
            Err(error) => {
                remove_log_dir(&log_dir);
                return Err(LaunchError::Log(error));
            }
        };
        let pcap = opts.pcap.as_deref().map(absolute);

        let args = qemu_args(
            opts.machine,
            &link,
            tap.as_ref().map(Tap::name),
            pcap.as_deref(),
            &opts.firmware_args,
        );
        let qemu_bin = opts.machine.qemu_bin();
        let mut command = match &netns {
            Some(ns) => ns.command(qemu_bin),
            None => Command::new(qemu_bin),
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
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                remove_log_dir(&log_dir);
                return Err(LaunchError::Spawn {
                    binary: qemu_bin.into(),
                    error,
                });
            }
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let process = Process::watch(child, LogSink::new(file, terminal));
        process.read_stream(stdout, true);
        process.read_stream(stderr, false);

        let mut device = QemuDevice {
            machine: opts.machine,
            process,
            image: image.to_owned(),
            link,
            host_net,
            command_line,
            ready_after: Duration::ZERO,
            log_path,
            log_dir,
            pcap,
            tap,
            netns,
        };
        device.wait_ready(started, opts.ready_timeout)?;
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
        let mut attempts = 0u32;
        let mut last_error = String::from("no attempt");
        while Instant::now() < deadline {
            self.check_alive()?;
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.host_net.lab_client(addr, left.min(HELLO_ATTEMPT)) {
                Ok(client) => {
                    client.close();
                    self.ready_after = started.elapsed();
                    return Ok(());
                }
                Err(e) => last_error = e.to_string(),
            }
            thread::sleep(Duration::from_millis(20).min(left));
        }
        self.check_alive()?;
        Err(not_ready(
            self,
            format!("no HELLO on {addr} after {attempts} attempts ({last_error})"),
        ))
    }

    fn check_alive(&self) -> Result<(), LaunchError> {
        match self.process.status() {
            Some(status) => Err(LaunchError::Exited {
                status,
                log: self.log(),
            }),
            None => Ok(()),
        }
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
        self.log_path.as_deref()
    }

    /// The pcap file, if one is written.
    pub fn pcap(&self) -> Option<&Path> {
        self.pcap.as_deref()
    }

    /// The namespace QEMU and its TAP live in (`None`: the caller's).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// The TAP the NIC is attached to (`None` with user networking).
    pub fn tap(&self) -> Option<&Tap> {
        self.tap.as_ref()
    }

    /// Has QEMU exited? How, if so (it is reaped already).
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.process.status()
    }

    /// Stops QEMU and removes what was created, reporting how QEMU ended.
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.process.stop()
    }
}

impl Device for QemuDevice {
    fn board(&self) -> &str {
        self.machine.board()
    }

    fn host_net(&self) -> &HostNet {
        &self.host_net
    }

    /// With user networking, 127.0.0.1 and the forwarded port; a port that
    /// is not forwarded maps to port 0 (and [`Device::connect`] refuses it).
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
        self.process.pid
    }

    fn log(&self) -> String {
        // After an exit, let the readers write QEMU's last words first.
        if self.process.status().is_some() {
            self.process
                .wait_until(Instant::now() + Duration::from_secs(1), |s| {
                    s.open_streams == 0
                });
        }
        match &self.log_path {
            Some(path) => fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default(),
            None => self.process.with(|state| {
                let mut log = String::new();
                for line in &state.sink.tail {
                    log.push_str(line);
                    log.push('\n');
                }
                log
            }),
        }
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

impl Drop for QemuDevice {
    fn drop(&mut self) {
        self.process.stop();
        if let Some(dir) = &self.log_dir {
            cleanup::unregister_dir(dir);
            if std::env::var_os(KEEP_LOGS_ENV).is_some() || thread::panicking() {
                eprintln!(
                    "socklab: QEMU's UART log kept in {}",
                    dir.join("uart.log").display()
                );
            } else {
                let _ = fs::remove_dir_all(dir);
            }
        }
        // `tap` and `netns` drop next, in that order.
    }
}

/// QEMU's arguments up to (not including) the extra ones and `-kernel`.
fn qemu_args(
    machine: QemuMachine,
    link: &QemuLink,
    tap: Option<&str>,
    pcap: Option<&Path>,
    firmware_args: &[String],
) -> Vec<OsString> {
    let m = DEFAULT_MAC.0;
    let mac = format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let netdev = match (link, tap) {
        (QemuLink::User { port_base, .. }, _) => {
            let mut netdev = "user,id=n0".to_owned();
            for port in FORWARDED_PORTS {
                let _ = write!(
                    netdev,
                    ",hostfwd=tcp:127.0.0.1:{}-:{port}",
                    port_base + port
                );
            }
            netdev
        }
        // Without the virtio-net header on the TAP (vnet_hdr=off), a filter-dump
        // capture holds plain Ethernet frames.
        (QemuLink::Tap, Some(tap)) => {
            format!("tap,id=n0,ifname={tap},script=no,downscript=no,vnet_hdr=off")
        }
        (QemuLink::Tap, None) => unreachable!("a TAP link has a TAP"),
    };
    // Semihosting: the exit status of a panic or fault, and the command line
    // (argv[0] first; QEMU reads `,,` as a comma inside a value).
    let mut semihosting = format!("enable=on,target=native,arg={}", machine.elf_name());
    for arg in firmware_args {
        let _ = write!(semihosting, ",arg={}", arg.replace(',', ",,"));
    }
    // A named netdev and a NIC on it rather than `-nic`: `filter-dump` needs the name.
    let mut args: Vec<OsString> = ["-nographic", "-semihosting-config", &semihosting]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend(["-netdev".into(), netdev.into()]);
    args.extend(machine.machine_args(&mac).into_iter().map(OsString::from));
    if let Some(pcap) = pcap {
        let mut object = OsString::from("filter-dump,id=d0,netdev=n0,file=");
        object.push(pcap);
        args.push("-object".into());
        args.push(object);
    }
    args
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

/// Fails early, with the fix, when QEMU is not installed.
fn find_qemu(machine: QemuMachine) -> Result<PathBuf, LaunchError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(machine.qemu_bin()))
        .find(|candidate| candidate.is_file())
        .ok_or(LaunchError::NoQemu {
            binary: machine.qemu_bin(),
            package: machine.qemu_package(),
        })
}

/// A port base whose forwarded ports are all free on 127.0.0.1 (bind-probed).
///
/// Bases step by 32 from 11000 (so no two bases this process hands out share
/// a port: the forwarded ports differ by 1, 2, 10, 12, 6647..6660, never by a
/// multiple of 32) and stay below 32768, the start of Linux's ephemeral range.
pub fn free_port_base() -> Option<u16> {
    const FIRST: u32 = 11_000;
    const STEP: u32 = 32;
    const SLOTS: u32 = (32_768 - FIRST - QEMU_CLOSED_PORT as u32) / STEP;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SLOTS;
    for _ in 0..SLOTS {
        let slot = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SLOTS;
        let base = u16::try_from(FIRST + slot * STEP).ok()?;
        let free = FORWARDED_PORTS
            .iter()
            .all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, base + port)).is_ok());
        if free {
            return Some(base);
        }
    }
    None
}

/// The mps2-an385 image; see [`find_image`].
pub fn find_mps2_image() -> Result<PathBuf, LaunchError> {
    find_image(QemuMachine::Mps2An385)
}

/// The mps2-an385 image, built; see [`build_image`].
pub fn build_mps2_image() -> Result<PathBuf, String> {
    build_image(QemuMachine::Mps2An385)
}

/// A machine's image: `$SOCKLAB_MPS2_ELF` / `$SOCKLAB_RISCV_ELF`, else built (or found
/// up to date) with `scripts/fw-cargo` in this source tree, once per process and
/// machine; cargo's progress goes to stderr.
pub fn find_image(machine: QemuMachine) -> Result<PathBuf, LaunchError> {
    let env = machine.elf_env();
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LaunchError::Image(format!(
                "{env}={} is not a file",
                path.display()
            )))
        };
    }
    static MPS2: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static RISCV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = match machine {
        QemuMachine::Mps2An385 => &MPS2,
        QemuMachine::RiscvVirt => &RISCV,
    };
    built
        .get_or_init(|| build_image(machine))
        .clone()
        .map_err(LaunchError::Image)
}

/// Runs `scripts/fw-cargo [--board B] build --release`; returns the ELF's path.
pub fn build_image(machine: QemuMachine) -> Result<PathBuf, String> {
    let root = source_root();
    let script = root.join("scripts/fw-cargo");
    let elf = root.join(machine.elf_path());
    let env = machine.elf_env();
    let board = machine.board();
    let command = format!("scripts/fw-cargo {}", machine.build_args().join(" "));
    if !script.is_file() {
        return Err(format!(
            "the source tree {} is gone, so it cannot be built; set {env}",
            root.display()
        ));
    }
    eprintln!("socklab: building the {board} image ({command}) ...");
    let status = Command::new(&script)
        .args(machine.build_args())
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "`{command}` failed ({status}); see the errors above \
             (scripts/setup installs the toolchain), or set {env} to a prebuilt image"
        ));
    }
    if !elf.is_file() {
        return Err(format!("the build made no {}", elf.display()));
    }
    Ok(elf)
}

/// Where QEMU's output goes: a file, the terminal, and (without a file) a
/// tail kept in memory.
#[derive(Debug)]
struct LogSink {
    file: Option<File>,
    terminal: bool,
    tail: VecDeque<String>,
}

impl LogSink {
    fn new(file: Option<File>, terminal: bool) -> Self {
        LogSink {
            file,
            terminal,
            tail: VecDeque::new(),
        }
    }

    fn line(&mut self, line: &str, to_terminal: bool) {
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{line}");
        } else {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.to_owned());
        }
        if self.terminal && to_terminal {
            eprintln!("{line}");
        }
    }
}

/// What the watcher and the readers know about QEMU.
#[derive(Debug)]
struct State {
    /// The child; reaped (by the watcher) only under the lock.
    child: Child,
    status: Option<ExitStatus>,
    /// Readers of stdout and stderr still running.
    open_streams: usize,
    /// UART lines that matter for readiness.
    marks: Vec<String>,
    sink: LogSink,
}

/// QEMU's process: watched by a thread that notices its exit at once.
#[derive(Debug)]
struct Process {
    pid: u32,
    shared: Arc<(Mutex<State>, Condvar)>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl Process {
    fn watch(child: Child, sink: LogSink) -> Self {
        let pid = child.id();
        cleanup::register_pid(pid);
        let shared = Arc::new((
            Mutex::new(State {
                child,
                status: None,
                open_streams: 0,
                marks: Vec::new(),
                sink,
            }),
            Condvar::new(),
        ));
        let watched = Arc::clone(&shared);
        let watcher = thread::Builder::new()
            .name(format!("qemu {pid} watcher"))
            .spawn(move || {
                wait_exited_unreaped(pid);
                let (lock, changed) = &*watched;
                let mut state = lock_state(lock);
                let status = state.child.wait().ok();
                state.status = status;
                cleanup::unregister_pid(pid);
                changed.notify_all();
                // Write the exit after QEMU's last lines (bounded wait).
                let deadline = Instant::now() + Duration::from_secs(1);
                while state.open_streams > 0 && Instant::now() < deadline {
                    state = changed
                        .wait_timeout(state, Duration::from_millis(50))
                        .map(|(s, _)| s)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                if let Some(status) = status {
                    state
                        .sink
                        .line(&format!("[socklab: QEMU exited, {status}]"), false);
                }
                changed.notify_all();
            })
            .expect("spawn the QEMU watcher thread");
        Process {
            pid,
            shared,
            watcher: Some(watcher),
        }
    }

    /// Copies QEMU's stdout (the UART) or stderr into the log, line by line.
    fn read_stream(&self, stream: impl Read + Send + 'static, uart: bool) {
        let shared = Arc::clone(&self.shared);
        self.with(|state| state.open_streams += 1);
        let spawned = thread::Builder::new()
            .name(format!(
                "qemu {} {}",
                self.pid,
                if uart { "uart" } else { "stderr" }
            ))
            .spawn(move || {
                let (lock, changed) = &*shared;
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']);
                    let mut state = lock_state(lock);
                    state.sink.line(line, true);
                    if uart && (line.contains(LEASE_MARK) || line.contains(LISTENING_MARK)) {
                        state.marks.push(line.to_owned());
                        changed.notify_all();
                    }
                }
                lock_state(lock).open_streams -= 1;
                changed.notify_all();
            });
        if spawned.is_err() {
            self.with(|state| state.open_streams -= 1);
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock_state(&self.shared.0))
    }

    fn status(&self) -> Option<ExitStatus> {
        self.with(|state| state.status)
    }

    /// Waits until `done` holds or `deadline` passes; true if it holds.
    fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&State) -> bool) -> bool {
        let (lock, changed) = &*self.shared;
        let mut state = lock_state(lock);
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = changed
                .wait_timeout(state, left.min(Duration::from_millis(100)))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Sends `signal` unless QEMU is reaped already (then its PID may be
    /// someone else's).
    fn signal(&self, signal: libc::c_int) {
        let state = lock_state(&self.shared.0);
        if state.status.is_none() {
            if let Ok(pid) = libc::pid_t::try_from(self.pid) {
                // SAFETY: kill has no memory-safety preconditions; the child is
                // not reaped (the watcher reaps only under this lock), so the
                // PID is still QEMU's.
                unsafe { libc::kill(pid, signal) };
            }
        }
    }

    /// SIGTERM (QEMU exits cleanly, flushing its pcap), up to 2 s, then
    /// SIGKILL; waits for the watcher to reap it.
    fn stop(&mut self) -> Option<ExitStatus> {
        let Some(watcher) = self.watcher.take() else {
            return self.status();
        };
        self.signal(libc::SIGTERM);
        if !self.wait_until(Instant::now() + Duration::from_secs(2), |s| {
            s.status.is_some()
        }) {
            self.signal(libc::SIGKILL);
            self.wait_until(Instant::now() + Duration::from_secs(5), |s| {
                s.status.is_some()
            });
        }
        if self.status().is_some() {
            let _ = watcher.join();
        } else {
            eprintln!(
                "socklab: QEMU (pid {}) did not exit after SIGKILL",
                self.pid
            );
        }
        self.status()
    }
}

fn lock_state(lock: &Mutex<State>) -> MutexGuard<'_, State> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Blocks until process `pid` (a child of ours) has exited, without reaping it.
fn wait_exited_unreaped(pid: u32) {
    let id = libc::id_t::from(pid);
    loop {
        // SAFETY: `info` is a valid siginfo_t to write to; waitid only reads
        // the state of our own child.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
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
    fn user_args_forward_every_port_on_loopback() {
        let link = QemuLink::User {
            port_base: DEFAULT_PORT_BASE,
            lease: Ipv4Addr::new(10, 0, 2, 15),
        };
        let args: Vec<String> = qemu_args(QemuMachine::Mps2An385, &link, None, None, &[])
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let netdev = &args[args.iter().position(|a| a == "-netdev").unwrap() + 1];
        for (host, device) in [
            (16666, 6666),
            (16667, 6667),
            (10007, 7),
            (10009, 9),
            (10019, 19),
            (15201, 5201),
            (15001, 5001),
        ] {
            assert!(
                netdev.contains(&format!("hostfwd=tcp:127.0.0.1:{host}-:{device}")),
                "{netdev}"
            );
        }
        assert!(args.iter().any(|a| a.contains("macaddr=02:00:00:00:00:01")));
        assert!(!args.iter().any(|a| a.contains("filter-dump")));
    }

    #[test]
    fn tap_args_name_the_tap_the_capture_and_the_boot_options() {
        let args: Vec<String> = qemu_args(
            QemuMachine::Mps2An385,
            &QemuLink::Tap,
            Some("sl1-0"),
            Some(Path::new("/tmp/x.pcap")),
            &["--drop-chance".to_owned(), "5".to_owned(), "a,b".to_owned()],
        )
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
        assert!(args
            .contains(&"tap,id=n0,ifname=sl1-0,script=no,downscript=no,vnet_hdr=off".to_owned()));
        assert!(args.contains(&"filter-dump,id=d0,netdev=n0,file=/tmp/x.pcap".to_owned()));
        assert!(args.contains(
            &"enable=on,target=native,arg=socklab-mps2,arg=--drop-chance,arg=5,arg=a,,b".to_owned()
        ));
    }

    #[test]
    fn riscv_args_boot_virt_with_virtio_net() {
        let link = QemuLink::User {
            port_base: DEFAULT_PORT_BASE,
            lease: Ipv4Addr::new(10, 0, 2, 15),
        };
        let args: Vec<String> = qemu_args(QemuMachine::RiscvVirt, &link, None, None, &[])
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-machine virt -bios none"), "{joined}");
        assert!(
            joined.contains(
                "-device virtio-net-device,netdev=n0,mac=02:00:00:00:00:01,event_idx=off"
            ),
            "{joined}"
        );
        assert!(joined.contains("arg=socklab-riscv"), "{joined}");
        assert!(
            joined.contains("hostfwd=tcp:127.0.0.1:16666-:6666"),
            "{joined}"
        );
    }

    #[test]
    fn free_bases_do_not_overlap() {
        let a = free_port_base().unwrap();
        let b = free_port_base().unwrap();
        let ports = |base: u16| FORWARDED_PORTS.map(|p| base + p);
        assert!(ports(a).iter().all(|p| !ports(b).contains(p)));
        assert!(ports(a).iter().chain(&ports(b)).all(|&p| p < 32_768));
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
