//! The linux-tap launcher: `socklab-tap` attached to a TAP, by default
//! inside a private network namespace with the host-side addresses on the
//! TAP; ready once it printed its ready line and a lab client got `HELLO`.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6, DEFAULT_MAC};

use super::artifacts::find_tap_binary;
use super::hostnet::{HostSide, SecondSide};
use super::supervise::{await_hello, DeviceLog, Process, Stream};
use super::{LaunchError, NetnsChoice, Network, RunningBoard, DEFAULT_READY_TIMEOUT};
use crate::netns::{self, HostNet, Netns, NetnsError, Tap};
use socklab_app::MAX_NETS;

/// What `socklab-tap` prints on stdout once it runs.
const READY_PREFIX: &str = "socklab-tap ready";
/// The board's name, as `INFO` gives it.
pub const TAP_BOARD: &str = "linux-tap";

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
    /// Where the device's log (its stderr) goes.
    pub log: DeviceLog,
    /// How long to wait for the `HELLO`.
    pub ready_timeout: Duration,
    /// The binary; `None`: see [`find_tap_binary`].
    pub binary: Option<PathBuf>,
    /// The TAP's MTU (e.g. 65000 with the device's `--pool jumbo`); `None`:
    /// leave it (1500 for a new TAP).
    pub mtu: Option<u32>,
    /// Network interfaces, 1 or 2: the second is a TAP of its own in a namespace
    /// of its own (192.168.70.1, fdab::1), so each network's clients see only
    /// their own.
    pub networks: usize,
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
            networks: 1,
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
    // Dropped in this order: the process (stopped), the TAP, the namespace.
    process: Process,
    binary: PathBuf,
    ready: ReadyLine,
    host_net: HostNet,
    host: HostSide,
    /// The second network's TAP and namespace (dropped after the first's).
    second: Option<SecondSide>,
}

impl TapDevice {
    /// Creates the namespace and TAP, starts `socklab-tap` there and waits
    /// until a lab client gets `HELLO`.
    pub fn start(opts: TapOptions) -> Result<Self, LaunchError> {
        let binary = match &opts.binary {
            Some(binary) => binary.clone(),
            None => find_tap_binary()?,
        };
        let id = netns::unique_name("");
        let host = HostSide::attach(
            &opts.netns,
            opts.tap.as_deref(),
            &id,
            opts.tap_user.as_deref(),
            opts.mtu,
        )?;
        let host_net = host.host_net();
        if !(1..=MAX_NETS).contains(&opts.networks) {
            return Err(LaunchError::Networks(format!(
                "--networks {}: linux-tap serves 1 to {MAX_NETS} (one network per TAP)",
                opts.networks
            )));
        }
        // The second network's TAP starts beside the first, where the device opens
        // it, and moves to a namespace of its own once the device has it open.
        let second_tap = if opts.networks == 2 {
            let name = format!("{}b", host.tap.name());
            Some(Tap::create_bare(
                &name,
                host.netns.as_ref(),
                opts.tap_user.as_deref(),
            )?)
        } else {
            None
        };
        let mut command = match &host.netns {
            Some(ns) => ns.command(&binary),
            None => Command::new(&binary),
        };
        command.arg("--tap").arg(host.tap.name());
        if let Some(tap) = &second_tap {
            command.arg("--tap").arg(tap.name());
        }
        command
            .arg("--log-level")
            .arg(&opts.log_level)
            .args(&opts.device_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let process = Process::spawn(command, "socklab-tap", &opts.log, &id, "device.log")?;
        if let Some(stdout) = process.take_stdout() {
            let ready = Stream {
                log: false,
                mark: |line| line.starts_with(READY_PREFIX),
            };
            process.read(stdout, ready);
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
        let mut device = TapDevice {
            process,
            binary,
            ready: ReadyLine::parse(READY_PREFIX).expect("the prefix parses"),
            host_net,
            host,
            second: None,
        };
        device.wait_ready(started + opts.ready_timeout, opts.ready_timeout)?;
        if let Some(tap) = second_tap {
            device.second = Some(SecondSide::attach(tap, &id)?);
            let second = device.second.as_ref().expect("just attached");
            second.await_hello(opts.ready_timeout, || device.check_alive(), || device.log())?;
        }
        Ok(device)
    }

    /// Starts a device with the default options: a private namespace, the
    /// log captured.
    pub fn start_default() -> Result<Self, LaunchError> {
        Self::start(TapOptions::default())
    }

    /// Waits for the ready line, then for a `HELLO`.
    fn wait_ready(&mut self, deadline: Instant, timeout: Duration) -> Result<(), LaunchError> {
        let not_ready = |device: &Self, reason: String| LaunchError::NotReady {
            timeout,
            reason,
            log: device.log(),
        };
        let seen = self.process.wait_until(deadline, |state| {
            state.status.is_some() || !state.marks.is_empty() || state.open_streams == 0
        });
        self.check_alive()?;
        let ready = self
            .process
            .with(|state| state.marks.first().and_then(|line| ReadyLine::parse(line)));
        match (seen, ready) {
            (_, Some(ready)) => self.ready = ready,
            (false, None) => return Err(not_ready(self, "it never printed its ready line".into())),
            (true, None) => {
                // Its output closed: the device is exiting; report how.
                self.process
                    .wait_until(Instant::now() + Duration::from_millis(500), |s| {
                        s.status.is_some()
                    });
                self.check_alive()?;
                return Err(not_ready(
                    self,
                    "it closed its output without a ready line".into(),
                ));
            }
        }
        let addr = self.lab_addr();
        await_hello(
            &self.host_net,
            addr,
            deadline,
            || self.check_alive(),
            |reason| not_ready(self, reason),
        )
    }

    fn check_alive(&self) -> Result<(), LaunchError> {
        self.process.alive(|| self.log())
    }

    /// What the device announced (its TAP and addresses).
    pub fn ready(&self) -> &ReadyLine {
        &self.ready
    }

    /// The namespace the device and its TAP live in (`None`: the caller's).
    pub fn netns(&self) -> Option<&Netns> {
        self.host.netns.as_ref()
    }

    /// The TAP the device is attached to.
    pub fn tap(&self) -> &Tap {
        &self.host.tap
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Where the log is written (`None` when it goes to the terminal).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.process.log_path().map(Path::to_owned)
    }

    /// The device process: its log, its terminal output, its exit.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Runs `f` in the device's host-side network (see [`HostNet::run`]).
    pub fn run_in_net<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.host_net.run(f)
    }

    /// Has the device exited? How, if so (it is reaped already).
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.process.status()
    }

    /// Stops the device (SIGTERM; SIGKILL after 2 s) and removes what was
    /// created, reporting how the device ended.
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.process.stop()
    }
}

impl RunningBoard for TapDevice {
    fn board(&self) -> &str {
        TAP_BOARD
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
        self.process.pid()
    }

    fn tap_name(&self) -> Option<&str> {
        Some(self.host.tap.name())
    }

    fn second_network(&self) -> Option<&Network> {
        self.second.as_ref().map(|second| &second.network)
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.process.status()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::launch::artifacts::{built_tap_binary, TAP_BIN};
    use socklab_app::protocol::LAB_PORT;
    use std::io;

    /// Needs root and a built `socklab-tap` (`$SOCKLAB_TAP_BIN` or in the
    /// target directory: `cargo build --release --workspace --bins`).
    #[test]
    fn tap_device_starts_answers_and_cleans_up() {
        assert!(
            netns::is_root(),
            "this test needs root (a namespace and a TAP): run it with sudo"
        );
        let binary = std::env::var_os(super::super::TAP_BIN_ENV)
            .map(PathBuf::from)
            .or_else(built_tap_binary)
            .filter(|path| path.is_file())
            .unwrap_or_else(|| {
                panic!("no {TAP_BIN} binary: run `cargo build --release --workspace --bins` first")
            });
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
