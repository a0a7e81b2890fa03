//! The boards socklab starts, named once: [`BoardKind`] is what `socklab
//! demo`, `run`, `bench` and the conformance suite choose from, and
//! [`BoardKind::start`] starts any of them with the same options.
//!
//! Adding a board: a variant here (or, for a QEMU machine, a
//! [`Machine`] variant), a launcher module under `launch/`, a board crate.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::launch::{
    DeviceLog, Image, LaunchError, Machine, NetnsChoice, QemuDevice, QemuNet, QemuOptions,
    RunningBoard, TapDevice, TapOptions, DEFAULT_READY_TIMEOUT, QEMU_CLOSED_PORT,
};

/// A board and the network the host reaches it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoardKind {
    /// `socklab-tap`: the app as a Linux process on a TAP interface.
    Tap,
    /// A QEMU machine on user networking, reached through ports forwarded
    /// on 127.0.0.1 (no root; no ping, no IPv6).
    QemuUser(Machine),
    /// A QEMU machine on a TAP in a network namespace (root): the device at
    /// its own addresses.
    QemuTap(Machine),
}

/// The board as a user names it on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BoardArg {
    /// `socklab-tap`: the firmware as a Linux process on a TAP interface.
    Tap,
    /// A firmware image in QEMU (`--machine`, default mps2-an385), on the network of `--net`.
    Qemu,
    /// The riscv-virt image in QEMU: short for `qemu --machine riscv-virt`.
    Riscv,
}

/// How a QEMU board's NIC reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetArg {
    /// QEMU user networking (no root): the device's ports are forwarded to 127.0.0.1.
    User,
    /// A TAP with the host-side addresses: the device at 192.168.69.1 and fdaa::1.
    Tap,
}

impl BoardKind {
    /// The mps2-an385 image in QEMU on user networking.
    pub const MPS2_USER: BoardKind = BoardKind::QemuUser(Machine::Mps2An385);
    /// The mps2-an385 image in QEMU on a TAP.
    pub const MPS2_TAP: BoardKind = BoardKind::QemuTap(Machine::Mps2An385);
    /// The riscv-virt image in QEMU on user networking.
    pub const RISCV_USER: BoardKind = BoardKind::QemuUser(Machine::RiscvVirt);
    /// The riscv-virt image in QEMU on a TAP.
    pub const RISCV_TAP: BoardKind = BoardKind::QemuTap(Machine::RiscvVirt);

    /// The board of `board` and `net`; `default_net` when `--net` is not
    /// given. `--net` with the TAP board is an error.
    pub fn choose(
        board: BoardArg,
        net: Option<NetArg>,
        machine: Machine,
        default_net: NetArg,
    ) -> Result<Self, String> {
        match (board, net.unwrap_or(default_net)) {
            (BoardArg::Tap, _) if net.is_some() => {
                Err("--net is for the QEMU board (`qemu`)".to_owned())
            }
            (BoardArg::Tap, _) => Ok(BoardKind::Tap),
            (BoardArg::Qemu, NetArg::User) => Ok(BoardKind::QemuUser(machine)),
            (BoardArg::Qemu, NetArg::Tap) => Ok(BoardKind::QemuTap(machine)),
            (BoardArg::Riscv, NetArg::User) => Ok(BoardKind::RISCV_USER),
            (BoardArg::Riscv, NetArg::Tap) => Ok(BoardKind::RISCV_TAP),
        }
    }

    /// The name `INFO` gives for this board.
    pub fn board_name(self) -> &'static str {
        match self {
            BoardKind::Tap => crate::launch::tap::TAP_BOARD,
            BoardKind::QemuUser(machine) | BoardKind::QemuTap(machine) => &machine.spec().board,
        }
    }

    /// The QEMU machine, if it is one.
    pub fn machine(self) -> Option<Machine> {
        match self {
            BoardKind::Tap => None,
            BoardKind::QemuUser(machine) | BoardKind::QemuTap(machine) => Some(machine),
        }
    }

    /// True when the host reaches the device at its own addresses, so both
    /// ends see the same address pair (not through QEMU's NAT), and ping and
    /// IPv6 work.
    pub fn has_real_addresses(self) -> bool {
        !matches!(self, BoardKind::QemuUser(_))
    }

    /// True when starting it needs root (a namespace or a TAP).
    pub fn needs_root(self) -> bool {
        self.has_real_addresses()
    }

    /// Device ports where nothing listens and that the host can reach.
    pub fn closed_ports(self) -> &'static [u16] {
        match self {
            BoardKind::Tap | BoardKind::QemuTap(_) => &[QEMU_CLOSED_PORT, 81, 22],
            // Only forwarded ports reach the device.
            BoardKind::QemuUser(_) => &[QEMU_CLOSED_PORT],
        }
    }

    /// Starts a device of this board.
    pub fn start(self, mut opts: StartOptions) -> Result<Box<dyn RunningBoard>, LaunchError> {
        Ok(match self {
            BoardKind::Tap if opts.pcap.is_some() => {
                let pcap = opts.pcap.take().expect("checked");
                opts.device_args
                    .extend([OsString::from("--pcap"), pcap.into_os_string()]);
                return self.start(opts);
            }
            BoardKind::Tap => Box::new(TapDevice::start(TapOptions {
                netns: opts.netns,
                device_args: opts.device_args,
                log_level: opts.log_level,
                log: opts.log,
                ready_timeout: opts.ready_timeout,
                mtu: opts.mtu,
                ..TapOptions::default()
            })?),
            BoardKind::QemuUser(machine) | BoardKind::QemuTap(machine) => {
                let net = match self {
                    BoardKind::QemuUser(_) => QemuNet::user_any_ports(),
                    _ => QemuNet::Tap {
                        netns: opts.netns,
                        tap: None,
                    },
                };
                let firmware_args = opts
                    .device_args
                    .into_iter()
                    .map(|arg| {
                        arg.into_string().map_err(|arg| {
                            LaunchError::Image(format!("boot option {arg:?} is not UTF-8"))
                        })
                    })
                    .collect::<Result<Vec<String>, _>>()?;
                Box::new(QemuDevice::start(QemuOptions {
                    machine,
                    net,
                    log: opts.log,
                    ready_timeout: opts.ready_timeout,
                    image: opts.image,
                    pcap: opts.pcap,
                    firmware_args,
                    ..QemuOptions::default()
                })?)
            }
        })
    }
}

impl fmt::Display for BoardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardKind::Tap => f.write_str("linux-tap"),
            BoardKind::QemuUser(machine) => {
                write!(f, "{} (QEMU, user networking)", machine.spec().board)
            }
            BoardKind::QemuTap(machine) => write!(f, "{} (QEMU, on a TAP)", machine.spec().board),
        }
    }
}

/// What [`BoardKind::start`] takes, the same for every board.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Device options: `socklab-tap`'s flags, which QEMU images take as boot
    /// options (e.g. `--idle-timeout-ms 2000`).
    pub device_args: Vec<OsString>,
    /// The namespace of a board on a TAP.
    pub netns: NetnsChoice,
    /// Where the device's log goes.
    pub log: DeviceLog,
    /// `--log-level` for `socklab-tap`.
    pub log_level: String,
    /// How long to wait for the `HELLO`.
    pub ready_timeout: Duration,
    /// The TAP's MTU (the TAP board only).
    pub mtu: Option<u32>,
    /// Where a QEMU image comes from.
    pub image: Image,
    /// Capture every frame in and out to this pcap file.
    pub pcap: Option<PathBuf>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            device_args: Vec::new(),
            netns: NetnsChoice::Private,
            log: DeviceLog::Capture,
            log_level: "info".to_owned(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            mtu: None,
            image: Image::default(),
            pcap: None,
        }
    }
}

impl StartOptions {
    /// The default options with these device options.
    pub fn with_args<S: Into<OsString>>(args: impl IntoIterator<Item = S>) -> Self {
        StartOptions {
            device_args: args.into_iter().map(Into::into).collect(),
            ..StartOptions::default()
        }
    }
}
