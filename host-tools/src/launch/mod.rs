//! Device launchers for the CLI, the demo and the integration tests: start a
//! device, wait until its lab service says `HELLO`, reach its services from
//! the right network, read its log, and remove everything on drop.
//!
//! Every launcher implements [`RunningBoard`], so code written against the
//! trait runs on any board: [`TapDevice`] (the `socklab-tap` process on a TAP
//! inside a private network namespace, `tap.rs`) and [`QemuDevice`] (a
//! firmware image in QEMU, on user networking or on a TAP, `qemu/`; the
//! machine is a parameter, its facts are its board's table, `machine.rs`).
//! What they share has one module each: `hostnet.rs` (namespace and TAP),
//! `supervise.rs` (the process, its log, its exit, stopping it),
//! `artifacts.rs` (finding or building what runs), `ports.rs` (the ports
//! forwarded to 127.0.0.1). [`crate::board`] names the boards and starts any
//! of them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use socklab_app::protocol::LAB_PORT;

use crate::client::{ClientError, LabClient, DEFAULT_TIMEOUT};
use crate::netns::{HostNet, NetnsError};
use crate::ping::{ping, PingError};

pub mod artifacts;
pub mod hostnet;
pub mod machine;
pub mod ports;
pub mod qemu;
pub mod supervise;
pub mod tap;

pub use artifacts::{find_image, find_tap_binary, source_root, Image, TAP_BIN, TAP_BIN_ENV};
pub use machine::{Machine, MachineSpec};
pub use ports::{
    free_port_base, DEFAULT_PORT_BASE, FORWARDED_PORTS, MAX_PORT_BASE, QEMU_CLOSED_PORT,
};
pub use qemu::{QemuDevice, QemuLink, QemuNet, QemuOptions};
pub use supervise::DeviceLog;
pub use tap::{ReadyLine, TapDevice, TapOptions};

/// Set (to anything) to keep device logs after the device is dropped.
pub const KEEP_LOGS_ENV: &str = "SOCKLAB_KEEP_LOGS";
/// How long a launcher waits for the `HELLO` by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A device's second network, as its clients reach it: its own namespace and TAP
/// (`socklab run --networks 2`), apart from the first network's.
#[derive(Debug, Clone)]
pub struct Network {
    /// Where that network's clients open their sockets.
    pub host_net: HostNet,
    /// The TAP the device's second interface is on (in that namespace).
    pub tap: String,
    /// The device's IPv4 address there.
    pub ipv4: Ipv4Addr,
    /// The device's IPv6 address there.
    pub ipv6: Ipv6Addr,
}

/// A board that a launcher started and that runs, whatever the board: where
/// its services are, how to reach them from the host, and its log. (The
/// firmware's `smoltcp::phy::Device` is the NIC under the stack; this is the
/// host's handle on the whole device.)
pub trait RunningBoard {
    /// The board's name, as `INFO` gives it (`linux-tap`, `mps2-an385`).
    fn board(&self) -> &str;

    /// The network the host side's sockets must be opened in.
    fn host_net(&self) -> &HostNet;

    /// Where the host reaches the device's TCP `port` over IPv4.
    fn addr(&self, port: u16) -> SocketAddr;

    /// Where the host reaches the device's TCP `port` over IPv6, if it can.
    fn addr6(&self, port: u16) -> Option<SocketAddr>;

    /// The device's process ID.
    fn pid(&self) -> u32;

    /// The host side of the device's TAP (in [`RunningBoard::host_net`]), if it
    /// is on one.
    fn tap_name(&self) -> Option<&str> {
        None
    }

    /// The device's log so far (empty if it goes straight to stderr).
    fn log(&self) -> String;

    /// The device's second network, if it was started with one.
    fn second_network(&self) -> Option<&Network> {
        None
    }

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
        LabClient::connect_in(self.host_net(), addr, DEFAULT_TIMEOUT)
    }

    /// Pings the device's IPv4 address; returns the round-trip time.
    fn ping4(&self) -> Result<Duration, PingError> {
        ping_from(self.host_net(), self.addr(0).ip())
    }

    /// Pings the device's IPv6 address; returns the round-trip time.
    fn ping6(&self) -> Result<Duration, PingError> {
        let ip = self
            .addr6(0)
            .ok_or(PingError::Unsupported(
                "no IPv6 address reachable from the host",
            ))?
            .ip();
        ping_from(self.host_net(), ip)
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

/// One ICMP echo to `ip` from the host side `net` (the device's namespace, or
/// this one); returns the round-trip time.
fn ping_from(net: &HostNet, ip: IpAddr) -> Result<Duration, PingError> {
    net.run(|| ping(ip, DEFAULT_TIMEOUT))
        .map_err(|e| PingError::Io {
            addr: ip,
            error: e.into(),
        })?
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
    /// Boot options the image would refuse (checked by the image's own parser,
    /// before QEMU starts).
    #[error("the image cannot take these boot options: {0}")]
    BootOptions(String),
    /// The mps2-an385 image was not found and could not be built.
    #[error("cannot get the mps2-an385 image: {0}")]
    Image(String),
    /// QEMU's user networking cannot forward the device's ports.
    #[error("cannot forward the device's ports: {0}")]
    Ports(String),
    /// More networks than the board serves.
    #[error("{0}")]
    Networks(String),
    /// The machine's QEMU is not installed.
    #[error(
        "{program} is not on PATH: install it with scripts/setup, or \
         `apt-get install --no-install-recommends {package}`"
    )]
    NoQemu {
        /// The QEMU program.
        program: &'static str,
        /// Its Debian package.
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
