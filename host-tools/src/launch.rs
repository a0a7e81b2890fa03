//! Device launchers for the CLI, the demo and the integration tests: start a
//! device, wait until its lab service says `HELLO`, reach its services from
//! the right network, read its log, and remove everything on drop.
//!
//! Every launcher implements [`Device`], so code written against the trait
//! runs on any board: [`TapDevice`] (the `socklab-tap` process on a TAP inside
//! a private network namespace) and [`QemuDevice`] (the mps2-an385 image in
//! QEMU, on user networking or on a TAP; in `launch/qemu.rs`).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6, DEFAULT_MAC};
use socklab_app::protocol::LAB_PORT;

use crate::cleanup;
use crate::client::{ClientError, LabClient, DEFAULT_TIMEOUT};
use crate::netns::{self, HostNet, Netns, NetnsError, Tap};
use crate::ping::{ping, PingError};

mod qemu;
pub use qemu::{
    build_image, build_mps2_image, find_image, find_mps2_image, free_port_base, QemuDevice,
    QemuLink, QemuLog, QemuMachine, QemuNet, QemuOptions, DEFAULT_PORT_BASE, FORWARDED_PORTS,
    MAX_PORT_BASE, MPS2_BOARD, MPS2_ELF_ENV, MPS2_ELF_PATH, QEMU_BIN, QEMU_CLOSED_PORT,
    RISCV_BOARD, RISCV_ELF_ENV, RISCV_ELF_PATH,
};

/// Name of the linux-tap board's binary.
pub const TAP_BIN: &str = "socklab-tap";
/// Environment variable naming the `socklab-tap` binary to run.
pub const TAP_BIN_ENV: &str = "SOCKLAB_TAP_BIN";
/// Set (to anything) to keep device logs after the device is dropped.
pub const KEEP_LOGS_ENV: &str = "SOCKLAB_KEEP_LOGS";
/// How long [`TapDevice::start`] waits for the `HELLO` by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// What `socklab-tap` prints on stdout once it runs.
const READY_PREFIX: &str = "socklab-tap ready";

/// A running device, whatever the board: where its services are, how to reach
/// them from the host, and its log.
pub trait Device {
    /// The board's name (`linux-tap`, `mps2-an385`).
    fn board(&self) -> &str;

    /// The network the host side's sockets must be opened in.
    fn host_net(&self) -> &HostNet;

    /// Where the host reaches the device's TCP `port` over IPv4.
    fn addr(&self, port: u16) -> SocketAddr;

    /// Where the host reaches the device's TCP `port` over IPv6, if it can.
    fn addr6(&self, port: u16) -> Option<SocketAddr>;

    /// The device's process ID.
    fn pid(&self) -> u32;

    /// The device's log so far (empty if it goes straight to stderr).
    fn log(&self) -> String;

    /// The lab service's address (IPv4).
    fn lab_addr(&self) -> SocketAddr {
        self.addr(LAB_PORT)
    }

    /// Opens a TCP connection to the device's `port` (IPv4) from the host side.
    fn connect(&self, port: u16) -> io::Result<TcpStream> {
        self.connect_addr(self.addr(port))
    }

    /// Opens a TCP connection to `addr` from the host side.
    fn connect_addr(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.host_net().connect(addr, DEFAULT_TIMEOUT)
    }

    /// A lab client on the IPv4 lab address, `HELLO` read.
    fn lab_client(&self) -> Result<LabClient, ClientError> {
        self.lab_client_at(self.lab_addr())
    }

    /// A lab client on `addr`, `HELLO` read.
    fn lab_client_at(&self, addr: SocketAddr) -> Result<LabClient, ClientError> {
        self.host_net().lab_client(addr, DEFAULT_TIMEOUT)
    }

    /// Pings the device's IPv4 address; returns the round-trip time.
    fn ping4(&self) -> Result<Duration, PingError> {
        let ip = self.addr(0).ip();
        self.host_net()
            .run(|| ping(ip, DEFAULT_TIMEOUT))
            .map_err(|e| PingError::Io {
                addr: ip,
                error: e.into(),
            })?
    }

    /// Pings the device's IPv6 address; returns the round-trip time.
    fn ping6(&self) -> Result<Duration, PingError> {
        let ip = self
            .addr6(0)
            .ok_or(PingError::Unsupported(
                "no IPv6 address reachable from the host",
            ))?
            .ip();
        self.host_net()
            .run(|| ping(ip, DEFAULT_TIMEOUT))
            .map_err(|e| PingError::Io {
                addr: ip,
                error: e.into(),
            })?
    }

    /// How a person reaches the lab service with the `socklab` command.
    fn how_to_connect(&self) -> String {
        match self.host_net().netns_name() {
            Some(ns) => format!("socklab --netns {ns} connect {}", self.lab_addr().ip()),
            None => format!("socklab connect {}", self.lab_addr().ip()),
        }
    }

    /// True when the host reaches the device through a NAT (QEMU's user
    /// networking): a host `connect()` succeeds before the device answers, a
    /// refusal shows as a connection closed without a word, and the device
    /// sees another address pair than the host's socket.
    fn behind_nat(&self) -> bool {
        false
    }

    /// How the device ended, if it stopped by itself (a crash, an exit);
    /// `None` while it runs.
    fn exit_status(&self) -> Option<ExitStatus> {
        None
    }
}

/// Why a device could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Namespaces and TAPs need root.
    #[error(
        "creating a network namespace or a TAP for the device needs root. Run as root, or create a TAP \
         for your user once (`sudo socklab tap up --user $USER`) and attach to it \
         (`socklab run tap --name tap0`)"
    )]
    NotRoot,
    /// Creating the namespace or TAP failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// `socklab-tap` was not found and could not be built.
    #[error("cannot find the `socklab-tap` binary: {0}")]
    Binary(String),
    /// The mps2-an385 image was not found and could not be built.
    #[error("cannot get the mps2-an385 image: {0}")]
    Image(String),
    /// QEMU's user networking cannot forward the device's ports.
    #[error("cannot forward the device's ports: {0}")]
    Ports(String),
    /// The board's QEMU program is not installed.
    #[error(
        "{binary} is not on PATH: install it with scripts/setup (apt package {package}; \
         the script also settles Debian 12's qemu-utils conflict)"
    )]
    NoQemu {
        /// The program, e.g. `qemu-system-arm`.
        binary: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// The device process could not be started.
    #[error("cannot start {binary}: {error}")]
    Spawn {
        /// The program.
        binary: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The device exited while starting.
    #[error("the device exited during start-up ({status}); {}", log_excerpt(log))]
    Exited {
        /// How it ended.
        status: ExitStatus,
        /// Its log.
        log: String,
    },
    /// The device did not answer in time.
    #[error(
        "the device did not come up within {timeout:?}: {reason}; {}",
        log_excerpt(log)
    )]
    NotReady {
        /// How long we waited.
        timeout: Duration,
        /// What was missing.
        reason: String,
        /// Its log.
        log: String,
    },
    /// A temporary file for the log could not be made.
    #[error("cannot create the device log file: {0}")]
    Log(io::Error),
}

/// The last lines of a device log, for an error message.
fn log_excerpt(log: &str) -> String {
    const LINES: usize = 30;
    let lines: Vec<&str> = log.lines().collect();
    match lines.len() {
        0 => "it wrote no log (see the messages above, if any)".to_owned(),
        n => {
            let shown = &lines[n.saturating_sub(LINES)..];
            let what = if n > LINES {
                "the end of its log"
            } else {
                "its log"
            };
            format!("{what}:\n    {}", shown.join("\n    "))
        }
    }
}

/// Which network namespace a [`TapDevice`] runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetnsChoice {
    /// A fresh namespace of its own, deleted afterwards (needs root).
    #[default]
    Private,
    /// The named namespace, created (and deleted afterwards) if missing.
    Named(String),
    /// The caller's namespace: the TAP must exist or root must create it.
    Current,
}

/// Where the device's log (its stderr) goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceLog {
    /// To a file in a temporary directory, read with [`Device::log`].
    #[default]
    Capture,
    /// To this process's stderr.
    Inherit,
}

/// How to start a [`TapDevice`].
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// The namespace to run in.
    pub netns: NetnsChoice,
    /// The TAP to attach to; created if missing. `None`: a fresh name in a
    /// private namespace, `tap0` otherwise.
    pub tap: Option<String>,
    /// Owner of a TAP this launcher creates.
    pub tap_user: Option<String>,
    /// More options for `socklab-tap` (`--pcap FILE`, `--drop-chance 5`, ...).
    pub device_args: Vec<OsString>,
    /// `--log-level` for the device.
    pub log_level: String,
    /// Where the device's log goes.
    pub log: DeviceLog,
    /// How long to wait for the `HELLO`.
    pub ready_timeout: Duration,
    /// The binary; `None`: see [`find_tap_binary`].
    pub binary: Option<PathBuf>,
    /// The TAP's MTU (e.g. 65000 with the device's `--pool jumbo`); `None`:
    /// leave it (1500 for a new TAP).
    pub mtu: Option<u32>,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            netns: NetnsChoice::Private,
            tap: None,
            tap_user: None,
            device_args: Vec::new(),
            log_level: "info".to_owned(),
            log: DeviceLog::Capture,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            binary: None,
            mtu: None,
        }
    }
}

/// What `socklab-tap` announced on stdout once running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// The TAP it attached to.
    pub tap: String,
    /// Its IPv4 address with prefix.
    pub ipv4: String,
    /// Its IPv6 address with prefix.
    pub ipv6: String,
    /// Its Ethernet address.
    pub mac: String,
}

impl ReadyLine {
    /// Parses `socklab-tap ready tap=NAME ipv4=… ipv6=… mac=…`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix(READY_PREFIX)?;
        let mut ready = ReadyLine {
            tap: String::new(),
            ipv4: DEFAULT_IPV4.to_string(),
            ipv6: DEFAULT_IPV6.to_string(),
            mac: DEFAULT_MAC.to_string(),
        };
        for (key, value) in rest.split_whitespace().filter_map(|w| w.split_once('=')) {
            match key {
                "tap" => ready.tap = value.to_owned(),
                "ipv4" => ready.ipv4 = value.to_owned(),
                "ipv6" => ready.ipv6 = value.to_owned(),
                "mac" => ready.mac = value.to_owned(),
                _ => {}
            }
        }
        Some(ready)
    }

    /// The IPv4 address without its prefix.
    pub fn ipv4_addr(&self) -> Option<Ipv4Addr> {
        self.ipv4.split('/').next()?.parse().ok()
    }

    /// The IPv6 address without its prefix.
    pub fn ipv6_addr(&self) -> Option<Ipv6Addr> {
        self.ipv6.split('/').next()?.parse().ok()
    }
}

/// The linux-tap board: `socklab-tap` attached to a TAP, by default inside a
/// private network namespace with the host-side addresses on the TAP.
///
/// Dropping it stops the device (SIGTERM, then SIGKILL), and deletes the TAP
/// and namespace it created, and its log (unless `SOCKLAB_KEEP_LOGS` is set or
/// the thread is panicking, e.g. in a failing test).
#[derive(Debug)]
pub struct TapDevice {
    child: Option<Child>,
    pid: u32,
    binary: PathBuf,
    ready: ReadyLine,
    host_net: HostNet,
    log_dir: Option<PathBuf>,
    // Dropped in this order after the child is stopped: TAP, then namespace.
    tap: Tap,
    netns: Option<Netns>,
}

impl TapDevice {
    /// Creates the namespace and TAP, starts `socklab-tap` there and waits
    /// until a lab client gets `HELLO`.
    pub fn start(opts: TapOptions) -> Result<Self, LaunchError> {
        let binary = match &opts.binary {
            Some(binary) => binary.clone(),
            None => find_tap_binary()?,
        };
        // One suffix for everything this device gets: `socklab-<pid>-<n>`,
        // `sl<pid>-<n>` (IFNAMSIZ allows 15 characters).
        let id = netns::unique_name("");
        let tap_name = match (&opts.tap, &opts.netns) {
            (Some(name), _) => name.clone(),
            (None, NetnsChoice::Private) => format!("sl{id}"),
            (None, _) => "tap0".to_owned(),
        };
        // Only attaching to an existing TAP in our own namespace works unprivileged.
        let needs_root = opts.netns != NetnsChoice::Current || !Tap::exists(&tap_name, None);
        if needs_root && !netns::is_root() {
            return Err(LaunchError::NotRoot);
        }
        let netns = match &opts.netns {
            NetnsChoice::Private => Some(Netns::create(&format!("socklab-{id}"))?),
            NetnsChoice::Named(name) => Some(Netns::open_or_create(name)?),
            NetnsChoice::Current => None,
        };
        let tap = if Tap::exists(&tap_name, netns.as_ref().map(Netns::name)) {
            Tap::open(&tap_name, netns.as_ref())?
        } else {
            Tap::create(&tap_name, netns.as_ref(), opts.tap_user.as_deref())?
        };
        if let Some(mtu) = opts.mtu {
            tap.set_mtu(mtu)?;
        }
        let host_net = HostNet::from_option(netns.as_ref().map(Netns::name));

        let (log_dir, stderr) = match opts.log {
            DeviceLog::Capture => {
                let dir = std::env::temp_dir().join(format!("socklab-log-{id}"));
                fs::create_dir_all(&dir).map_err(LaunchError::Log)?;
                cleanup::register_dir(&dir);
                let file = File::create(dir.join("device.log")).map_err(LaunchError::Log)?;
                (Some(dir), Stdio::from(file))
            }
            DeviceLog::Inherit => (None, Stdio::inherit()),
        };
        let mut command = match &netns {
            Some(ns) => ns.command(&binary),
            None => Command::new(&binary),
        };
        command
            .arg("--tap")
            .arg(&tap_name)
            .arg("--log-level")
            .arg(&opts.log_level)
            .args(&opts.device_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().map_err(|error| {
            if let Some(dir) = &log_dir {
                cleanup::unregister_dir(dir);
                let _ = fs::remove_dir_all(dir);
            }
            LaunchError::Spawn {
                binary: binary.clone(),
                error,
            }
        })?;
        let pid = child.id();
        cleanup::register_pid(pid);
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut device = TapDevice {
            child: Some(child),
            pid,
            binary,
            ready: ReadyLine::parse(READY_PREFIX).expect("the prefix parses"),
            host_net,
            log_dir,
            tap,
            netns,
        };
        device.wait_ready(stdout, opts.ready_timeout)?;
        Ok(device)
    }

    /// Starts a device with the default options: a private namespace, the
    /// log captured.
    pub fn start_default() -> Result<Self, LaunchError> {
        Self::start(TapOptions::default())
    }

    /// Waits for the ready line, then for a `HELLO`.
    fn wait_ready(
        &mut self,
        stdout: std::process::ChildStdout,
        timeout: Duration,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::channel();
        // Reads the device's stdout for the whole run; only the ready line matters.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ready) = ReadyLine::parse(&line) {
                    let _ = tx.send(ready);
                }
            }
        });
        let not_ready = |device: &Self, reason: &str| LaunchError::NotReady {
            timeout,
            reason: reason.to_owned(),
            log: device.log(),
        };
        loop {
            self.check_alive()?;
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ready) => {
                    self.ready = ready;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(not_ready(self, "it never printed its ready line"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed: the device is exiting; report how.
                    thread::sleep(Duration::from_millis(200));
                    self.check_alive()?;
                    return Err(not_ready(self, "it closed its stdout without a ready line"));
                }
            }
        }
        let mut last_error = String::new();
        while Instant::now() < deadline {
            self.check_alive()?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .host_net
                .lab_client(self.lab_addr(), left.min(Duration::from_secs(1)))
            {
                Ok(client) => {
                    client.close();
                    return Ok(());
                }
                Err(e) => last_error = e.to_string(),
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(not_ready(
            self,
            &format!("no HELLO on the lab port ({last_error})"),
        ))
    }

    fn check_alive(&mut self) -> Result<(), LaunchError> {
        match self.try_wait() {
            Ok(Some(status)) => Err(LaunchError::Exited {
                status,
                log: self.log(),
            }),
            _ => Ok(()),
        }
    }

    /// What the device announced (its TAP and addresses).
    pub fn ready(&self) -> &ReadyLine {
        &self.ready
    }

    /// The namespace the device and its TAP live in (`None`: the caller's).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// The TAP the device is attached to.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Where the captured log is (`None` when it goes to stderr).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.log_dir.as_ref().map(|dir| dir.join("device.log"))
    }

    /// Runs `f` in the device's host-side network (see [`HostNet::run`]).
    pub fn run_in_net<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.host_net.run(f)
    }

    /// Has the device exited? (Reaps it if so.)
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    /// Stops the device and removes what was created, reporting how the
    /// device ended.
    pub fn stop(mut self) -> io::Result<Option<ExitStatus>> {
        self.stop_child()
    }

    /// SIGTERM, up to 2 s for it to exit, then SIGKILL; always reaps.
    fn stop_child(&mut self) -> io::Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let result = (|| {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            // SAFETY: kill has no memory-safety preconditions; the child is
            // not reaped yet, so its PID cannot have been reused.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait()? {
                    return Ok(Some(status));
                }
                thread::sleep(Duration::from_millis(10));
            }
            child.kill()?;
            child.wait().map(Some)
        })();
        cleanup::unregister_pid(self.pid);
        result
    }
}

impl Device for TapDevice {
    fn board(&self) -> &str {
        "linux-tap"
    }

    fn host_net(&self) -> &HostNet {
        &self.host_net
    }

    fn addr(&self, port: u16) -> SocketAddr {
        let ip = self.ready.ipv4_addr().unwrap_or(DEFAULT_IPV4.address());
        SocketAddr::new(IpAddr::V4(ip), port)
    }

    fn addr6(&self, port: u16) -> Option<SocketAddr> {
        let ip = self.ready.ipv6_addr().unwrap_or(DEFAULT_IPV6.address());
        Some(SocketAddr::new(IpAddr::V6(ip), port))
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn log(&self) -> String {
        match self.log_path() {
            Some(path) => fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default(),
            None => String::new(),
        }
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.child.as_ref().and_then(|_| peek_exit(self.pid))
    }
}

/// How child `pid` ended, if it has, without reaping it (`waitid` with
/// `WNOWAIT`): the owner's `try_wait` still works afterwards.
fn peek_exit(pid: u32) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let id = libc::id_t::from(pid);
    // SAFETY: `info` is a valid siginfo_t to write to; waitid only reads the
    // state of our own child.
    let info = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if rc != 0 {
            return None;
        }
        info
    };
    // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed: pid 0).
    let (child, status) = unsafe { (info.si_pid(), info.si_status()) };
    if child == 0 {
        return None; // Still running.
    }
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        _ => status,
    };
    Some(ExitStatus::from_raw(raw))
}

impl Drop for TapDevice {
    fn drop(&mut self) {
        if let Err(e) = self.stop_child() {
            eprintln!("socklab: could not stop the device (pid {}): {e}", self.pid);
        }
        if let Some(dir) = &self.log_dir {
            cleanup::unregister_dir(dir);
            if std::env::var_os(KEEP_LOGS_ENV).is_some() || thread::panicking() {
                eprintln!(
                    "socklab: device log kept in {}",
                    dir.join("device.log").display()
                );
            } else {
                let _ = fs::remove_dir_all(dir);
            }
        }
        // `tap` and `netns` drop next, in that order.
    }
}

/// Finds `socklab-tap`: `$SOCKLAB_TAP_BIN`, else next to the running
/// executable or in its parent directory (test binaries live in
/// `target/<profile>/deps`), else builds it with
/// `cargo build --release -p socklab-tap` in this source tree (progress on
/// stderr).
pub fn find_tap_binary() -> Result<PathBuf, LaunchError> {
    if let Some(path) = std::env::var_os(TAP_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LaunchError::Binary(format!(
                "{TAP_BIN_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        let candidates = exe.ancestors().skip(1).take(2).map(|dir| dir.join(TAP_BIN));
        for candidate in candidates {
            if candidate.is_file() {
                warn_if_stale(&candidate);
                return Ok(candidate);
            }
        }
    }
    build_tap_binary()
}

/// The source tree this crate was built from (the workspace root).
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Warns on stderr when `binary` is older than the device's sources in this
/// source tree: it would run yesterday's firmware.
fn warn_if_stale(binary: &Path) {
    let Ok(built) = fs::metadata(binary).and_then(|m| m.modified()) else {
        return;
    };
    let root = source_root();
    // Only what goes into the binary: cargo does not relink for tests or benches.
    let sources = ["firmware/app/src", "firmware/boards/linux-tap/src"].map(|dir| root.join(dir));
    let newest = sources
        .iter()
        .filter_map(|dir| newest_modification(dir, 4))
        .max();
    if newest.is_some_and(|newest| newest > built) {
        eprintln!(
            "socklab: warning: {} is older than the firmware sources; rebuild it \
             (`cargo build -p {TAP_BIN}`) or set {TAP_BIN_ENV}",
            binary.display()
        );
    }
}

/// The latest modification time of the files under `path`, `depth` levels deep.
fn newest_modification(path: &Path, depth: usize) -> Option<std::time::SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    if depth == 0 {
        return None;
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_modification(&entry.path(), depth - 1))
        .max()
}

/// Builds `socklab-tap` (release) from this source tree; returns its path.
pub fn build_tap_binary() -> Result<PathBuf, LaunchError> {
    let root = source_root();
    if !root.join("Cargo.toml").is_file() {
        return Err(LaunchError::Binary(format!(
            "not next to this program, and the source tree {} is gone; set {TAP_BIN_ENV}",
            root.display()
        )));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("socklab: building {TAP_BIN} (cargo build --release -p {TAP_BIN}) ...");
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            TAP_BIN,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            LaunchError::Binary(format!(
                "running cargo failed ({e}); is cargo on PATH? or set {TAP_BIN_ENV}"
            ))
        })?;
    if !output.status.success() {
        return Err(LaunchError::Binary(format!(
            "`cargo build --release -p {TAP_BIN}` failed ({}); see the errors above",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == TAP_BIN)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| LaunchError::Binary(format!("cargo built no {TAP_BIN} executable")))
}

#[cfg(test)]
mod test {
    use super::*;

    /// Needs root and a built `socklab-tap` (`$SOCKLAB_TAP_BIN` or next to
    /// the test binary); skipped otherwise rather than building it here.
    #[test]
    fn tap_device_starts_answers_and_cleans_up() {
        if !netns::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let found = std::env::var_os(TAP_BIN_ENV)
            .map(PathBuf::from)
            .or_else(|| {
                let exe = std::env::current_exe().ok()?;
                exe.ancestors().nth(2).map(|dir| dir.join(TAP_BIN))
            });
        let Some(binary) = found.filter(|path| path.is_file()) else {
            eprintln!("skipped: no {TAP_BIN} binary built");
            return;
        };
        let device = TapDevice::start(TapOptions {
            binary: Some(binary),
            ..TapOptions::default()
        })
        .unwrap();
        let ns = device.netns().unwrap().name().to_owned();
        assert!(Netns::exists(&ns));
        let mut client = device.lab_client().unwrap();
        assert_eq!(client.greeting().local, device.lab_addr());
        assert_eq!(client.echo("hi").unwrap(), "hi");
        client.quit().unwrap();
        let refused = device.connect(LAB_PORT + 1).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        device.ping4().unwrap();
        device.ping6().unwrap();
        let log_path = device.log_path().unwrap();
        assert!(log_path.is_file());
        let pid = device.pid();
        drop(device);
        assert!(!Netns::exists(&ns), "namespace {ns} left behind");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "device {pid} still running"
        );
        assert!(!log_path.exists(), "log left behind");
    }

    #[test]
    fn ready_line_parses() {
        let ready = ReadyLine::parse(
            "socklab-tap ready tap=sl1-0 ipv4=10.1.2.3/8 ipv6=fd00::5/64 mac=02:00:00:00:00:09",
        )
        .unwrap();
        assert_eq!(ready.tap, "sl1-0");
        assert_eq!(ready.ipv4_addr(), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(ready.ipv6_addr(), Some("fd00::5".parse().unwrap()));
        assert_eq!(ready.mac, "02:00:00:00:00:09");
        let bare = ReadyLine::parse("socklab-tap ready").unwrap();
        assert_eq!(bare.ipv4_addr(), Some(DEFAULT_IPV4.address()));
        assert!(ReadyLine::parse("something else").is_none());
    }
}
