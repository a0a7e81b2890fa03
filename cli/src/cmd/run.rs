//! `socklab run tap|qemu|riscv`: start a device and keep it running until Ctrl-C,
//! then remove what was created for it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::bail;
use socklab_app::protocol::{
    CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, HTTP_PORT, IPERF2_PORT, IPERF3_PORT, LAB_PORT, MGMT_PORT,
};
use socklab_app::services::{service_name, PORTS};
use socklab_host::board::{BoardArg, NetArg};
use socklab_host::forward::Forwarder;
use socklab_host::launch::{
    DeviceLog, Image, LaunchError, Machine, NetnsChoice, QemuDevice, QemuLink, QemuNet,
    QemuOptions, RunningBoard, TapDevice, TapOptions, DEFAULT_PORT_BASE, FORWARDED_PORTS,
    MAX_PORT_BASE, QEMU_CLOSED_PORT,
};
use socklab_host::netns;

use super::Global;

/// Arguments of `socklab run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which device to run: tap (`socklab-tap`, the firmware as a Linux process on a TAP),
    /// qemu (a firmware image in QEMU, `--machine`; the image is built first only if
    /// missing) or riscv (`qemu --machine riscv-virt`).
    #[arg(value_enum)]
    pub board: BoardArg,

    /// Attach to this TAP (created if missing, with the host-side addresses). Without it
    /// and as root, the device gets a private network namespace and TAP of its own, so
    /// your real network is never touched; without it and not root, `tap0`.
    #[arg(long, visible_alias = "tap", value_name = "TAP")]
    pub name: Option<String>,

    /// qemu: the network of the board's NIC (default: user, or tap with --tap).
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,

    /// qemu: the QEMU machine.
    #[arg(long, value_enum, default_value_t = Machine::default())]
    pub machine: Machine,

    /// qemu: boot this image (ELF) instead of the one built in the source tree.
    #[arg(long, value_name = "ELF", conflicts_with = "build")]
    pub image: Option<PathBuf>,

    /// qemu: build the image (cargo; does nothing if it is up to date) before booting it.
    /// Without it, an image already built is booted as it is.
    #[arg(long)]
    pub build: bool,

    /// Capture the device's Ethernet frames to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// qemu: write the firmware's UART log to this file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Host port = N + device port on 127.0.0.1 (default 10000: lab 16666, HTTP 10080,
    /// echo 10007, discard 10009, chargen 10019): qemu --net user's forwarding, and tap's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(..=i64::from(MAX_PORT_BASE)))]
    pub port_base: Option<u16>,

    /// qemu: one more argument for QEMU (repeat it: `--qemu-arg=-d
    /// --qemu-arg=guest_errors`).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_arg: Vec<OsString>,

    /// tap: the TAP's MTU, up to 65521 (use it with `-- --pool jumbo`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=65521))]
    pub mtu: Option<u32>,

    /// tap: do not forward the device's ports to 127.0.0.1 in this namespace.
    #[arg(long)]
    pub no_forward: bool,

    /// tap, riscv: network interfaces, 1 or 2. The second network gets its own TAP in its
    /// own network namespace (device 192.168.70.1 and fdab::1 there), so each network's
    /// clients reach only their own address: one device, two networks. The 127.0.0.1
    /// forwarding (and QEMU's user networking) reaches the first network only;
    /// mps2-an385 has one NIC.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub networks: u8,

    /// tap: device log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Options for the device itself, after `--`: `--drop-chance PCT`, `--corrupt-chance
    /// PCT`, ... (tap: also `--rate-limit PKTS`, `--mac`, `--ip`, `--ip6`; qemu: the
    /// image's boot options, handed over by semihosting).
    #[arg(last = true, value_name = "DEVICE OPTIONS")]
    pub device_args: Vec<OsString>,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab run`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let (board, max) = match args.board {
        BoardArg::Tap => ("linux-tap", socklab_app::MAX_NETS),
        BoardArg::Qemu => (
            args.machine.spec().board.as_str(),
            args.machine.spec().max_networks(),
        ),
        BoardArg::Riscv => ("riscv-virt", Machine::RiscvVirt.spec().max_networks()),
    };
    if usize::from(args.networks) > max {
        // A usage error, as clap reports its own: exit status 2.
        clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "--networks {}: {board} serves at most {max} (one network per NIC); \
                 riscv-virt and tap serve two\n",
                args.networks
            ),
        )
        .exit();
    }
    match args.board {
        BoardArg::Tap => run_tap(global, args),
        BoardArg::Qemu => {
            let machine = args.machine;
            run_qemu(global, args, machine)
        }
        BoardArg::Riscv => run_qemu(global, args, Machine::RiscvVirt),
    }
}

/// The namespace for a device on a TAP: `--netns`, else a private one as
/// root without `--tap`, else the caller's.
fn netns_choice(global: &Global, tap: &Option<String>) -> NetnsChoice {
    match (&global.netns, tap) {
        (Some(ns), _) => NetnsChoice::Named(ns.clone()),
        (None, None) if netns::is_root() => NetnsChoice::Private,
        (None, _) => NetnsChoice::Current,
    }
}

/// Ctrl-C (SIGINT, SIGTERM, SIGHUP) arrives on the returned channel.
fn stop_channel() -> anyhow::Result<mpsc::Receiver<()>> {
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    Ok(stop_rx)
}

fn run_tap(global: &Global, mut args: Args) -> anyhow::Result<ExitCode> {
    for (given, option) in [
        (args.net.is_some(), "--net"),
        (args.log.is_some(), "--log"),
        (!args.qemu_arg.is_empty(), "--qemu-arg"),
        (args.image.is_some(), "--image"),
        (args.build, "--build"),
    ] {
        if given {
            bail!("{option} is for `socklab run qemu`");
        }
    }
    if let Some(pcap) = args.pcap.take() {
        args.device_args
            .extend([OsString::from("--pcap"), pcap.into_os_string()]);
    }
    let netns = netns_choice(global, &args.name);
    let stop_rx = stop_channel()?;
    eprintln!("socklab: starting socklab-tap ...");
    let opts = TapOptions {
        netns,
        tap: args.name,
        tap_user: None,
        device_args: args.device_args,
        log_level: args.log_level,
        log: DeviceLog::Terminal,
        ready_timeout: global.timeout().max(Duration::from_secs(10)),
        binary: None,
        mtu: args.mtu,
        networks: usize::from(args.networks),
    };
    let device = TapDevice::start(opts)?;
    // The device's log waits until the banner is out.
    print_how_to_reach(&device);
    let _forwarder = if args.no_forward {
        None
    } else {
        start_forwarding(&device, args.port_base.unwrap_or(DEFAULT_PORT_BASE))?
    };
    println!("press Ctrl-C to stop it");
    device.process().release_terminal();

    let code = wait_for_stop(&device, &stop_rx, "the device", "");
    let netns = device
        .netns()
        .filter(|ns| ns.is_owned())
        .map(|ns| ns.name().to_owned());
    let tap = device
        .tap()
        .is_owned()
        .then(|| device.tap().name().to_owned());
    device.stop();
    report_stopped("device", netns, tap);
    Ok(code)
}

/// Runs until Ctrl-C (a success) or until the device exits by itself (a
/// failure, said with `crash_hint`).
fn wait_for_stop(
    device: &dyn RunningBoard,
    stop_rx: &mpsc::Receiver<()>,
    what: &str,
    crash_hint: &str,
) -> ExitCode {
    let mut boots = last_boot(&device.log()).map_or(1, |(count, _)| count);
    loop {
        if let Some((count, reason)) = last_boot(&device.log()).filter(|(n, _)| *n > boots) {
            boots = count;
            if reason == "watchdog" {
                eprintln!(
                    "socklab: {what}: the device's watchdog reset it (boot {count}): its serve \
                     loop stopped coming round; the UART log has the WATCHDOG line"
                );
            } else {
                eprintln!(
                    "socklab: {what}: the device reset and booted again (boot {count}, {reason})"
                );
            }
        }
        if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            eprintln!("socklab: stopping {what} ...");
            return ExitCode::SUCCESS;
        }
        if let Some(status) = device.exit_status() {
            // A Ctrl-C in the terminal reaches the device too: that is a stop.
            if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return ExitCode::SUCCESS;
            }
            eprintln!("socklab: {what} exited: {status}{crash_hint}");
            return ExitCode::FAILURE;
        }
    }
}

/// The last boot line of a bare-metal board's log (`boot 2 (watchdog), stack ...`):
/// the boot's count and reason.
fn last_boot(log: &str) -> Option<(u32, &str)> {
    log.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("] boot ")?;
        let (count, rest) = rest.split_once(" (")?;
        let (reason, _) = rest.split_once(')')?;
        Some((count.parse().ok()?, reason))
    })
}

/// Says what was stopped and which namespace or TAP went with it.
fn report_stopped(what: &str, netns: Option<String>, tap: Option<String>) {
    match (netns, tap) {
        (Some(ns), _) => {
            eprintln!("socklab: {what} stopped; network namespace {ns} and its TAP removed")
        }
        (None, Some(tap)) => eprintln!("socklab: {what} stopped; TAP {tap} removed"),
        (None, None) => eprintln!("socklab: {what} stopped"),
    }
}

fn run_qemu(global: &Global, args: Args, machine: Machine) -> anyhow::Result<ExitCode> {
    if args.mtu.is_some() {
        bail!("--mtu is for `socklab run tap`: the QEMU boards take 1500-byte frames");
    }
    let tap = match (args.net, &args.name) {
        (Some(NetArg::User), Some(_)) => bail!("--tap is for --net tap"),
        (Some(NetArg::Tap), _) | (None, Some(_)) => true,
        (Some(NetArg::User) | None, None) => false,
    };
    let net = if tap {
        if args.port_base.is_some() {
            bail!("--port-base is for --net user");
        }
        QemuNet::Tap {
            netns: netns_choice(global, &args.name),
            tap: args.name,
        }
    } else {
        if global.netns.is_some() {
            eprintln!("socklab: note: with --net user QEMU forwards ports on 127.0.0.1 here; --netns is ignored");
        }
        QemuNet::User {
            port_base: Some(args.port_base.unwrap_or(DEFAULT_PORT_BASE)),
        }
    };
    let firmware_args = args
        .device_args
        .into_iter()
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| anyhow::anyhow!("boot option {arg:?} is not UTF-8"))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let stop_rx = stop_channel()?;
    let board = &machine.spec().board;
    eprintln!(
        "socklab: starting the {board} image in QEMU ({}) ...",
        if tap { "on a TAP" } else { "user networking" }
    );
    let image = match (args.image, args.build) {
        (Some(path), _) => Image::Path(path),
        (None, true) => Image::Rebuilt,
        (None, false) => Image::Built,
    };
    let opts = QemuOptions {
        machine,
        net,
        pcap: args.pcap,
        log: args.log.map_or(DeviceLog::Terminal, DeviceLog::File),
        ready_timeout: global.timeout().max(Duration::from_secs(10)),
        image,
        firmware_args,
        qemu_args: args.qemu_arg,
        networks: usize::from(args.networks),
    };
    let device = QemuDevice::start(opts).map_err(|error| {
        let taken = matches!(&error, LaunchError::Exited { log, .. } if log.contains("host forwarding rule"));
        let error = anyhow::Error::from(error);
        if taken {
            error.context("a forwarded host port is taken (another `socklab run qemu`?): pick another --port-base")
        } else {
            error
        }
    })?;
    // The UART log waits until the banner is out.
    eprintln!("socklab: QEMU: {}", device.command_line());
    print_qemu(&device);
    device.process().release_terminal();

    let code = wait_for_stop(
        &device,
        &stop_rx,
        "QEMU",
        " (a firmware panic or fault exits with 1; see the UART log)",
    );
    let netns = device
        .netns()
        .filter(|ns| ns.is_owned())
        .map(|ns| ns.name().to_owned());
    let tap = device
        .tap()
        .filter(|tap| tap.is_owned())
        .map(|tap| tap.name().to_owned());
    let pcap = device.pcap().map(|p| p.display().to_string());
    device.stop();
    report_stopped("QEMU", netns, tap);
    if let Some(pcap) = pcap {
        eprintln!("socklab: capture in {pcap}");
    }
    Ok(code)
}

fn print_qemu(device: &QemuDevice) {
    let place = match device.netns() {
        Some(ns) => format!(" in network namespace {ns}"),
        None => String::new(),
    };
    let ready = format!(
        "HELLO {:.2} s after start",
        device.ready_after().as_secs_f64()
    );
    match device.link() {
        QemuLink::User { lease, .. } => {
            println!(
                "{} is running in QEMU (pid {}) on user networking; {ready}",
                device.board(),
                device.pid()
            );
            println!("  device  {lease} (DHCP lease from QEMU), mac 02:00:00:00:00:01");
            println!("  ports forwarded from 127.0.0.1 (nothing else reaches the device):");
            for port in FORWARDED_PORTS {
                let what = match port {
                    MGMT_PORT => "management: who, netstat, info on a full device",
                    HTTP_PORT => "HTTP: the device's page",
                    IPERF3_PORT => "iperf3 server (iperf3 -c 127.0.0.1 -p ...)",
                    IPERF2_PORT => "iperf2 server (iperf -c 127.0.0.1 -p ...)",
                    QEMU_CLOSED_PORT => "nothing listens: QEMU closes the connection at once",
                    _ => service_name(port),
                };
                let host = device.addr(port);
                println!("    {:<16} -> {port:<5} {what}", host.to_string());
            }
            println!("  page    http://{}/", device.addr(HTTP_PORT));
            println!("  no ping, no IPv6 through QEMU's user networking (--net tap has both)");
        }
        QemuLink::Tap => {
            let tap = device.tap().map(|t| t.name()).unwrap_or("?");
            println!(
                "{} is running in QEMU (pid {}){place}, on TAP {tap}; {ready}",
                device.board(),
                device.pid()
            );
            println!(
                "  device  {}  {}  mac 02:00:00:00:00:01",
                socklab_app::config::DEFAULT_IPV4,
                socklab_app::config::DEFAULT_IPV6
            );
            let ports: Vec<String> = PORTS
                .iter()
                .map(|p| format!("{} {}/{}", p.service, p.port, p.transport.name()))
                .collect();
            println!("  {}; ping answered", ports.join(", "));
        }
    }
    if let Some(pcap) = device.pcap() {
        println!("  capture  {} (pcap)", pcap.display());
    }
    if let Some(log) = device.log_path() {
        println!("  UART log {}", log.display());
    }
    let lab = device.lab_addr();
    let (prefix, target) = match (device.link(), device.host_net().netns_name()) {
        (QemuLink::User { .. }, _) => ("socklab".to_owned(), lab.to_string()),
        (QemuLink::Tap, Some(ns)) => (format!("socklab --netns {ns}"), lab.ip().to_string()),
        (QemuLink::Tap, None) => ("socklab".to_owned(), lab.ip().to_string()),
    };
    println!("talk to it:");
    println!("  {prefix} connect {target}");
    println!("  {prefix} netstat {target}");
    match (device.link(), device.host_net().netns_name()) {
        (QemuLink::User { .. }, _) => println!("  nc {} {}", lab.ip(), lab.port()),
        (QemuLink::Tap, Some(ns)) => {
            println!("  {prefix} ping {target}");
            println!("  sudo ip netns exec {ns} nc {} {}", lab.ip(), lab.port());
        }
        (QemuLink::Tap, None) => println!("  {prefix} ping {target}"),
    }
    if device.second_network().is_some() {
        if let QemuLink::User { .. } = device.link() {
            println!("QEMU's user networking forwards the first network only:");
        }
    }
    print_second_network(device);
    println!("press Ctrl-C to stop it");
}

/// Forwards the device's ports to 127.0.0.1 here when it sits in another
/// namespace, and says where; `None` when it is reachable as it is.
fn start_forwarding(device: &TapDevice, base: u16) -> anyhow::Result<Option<Forwarder>> {
    if device.host_net().netns_name().is_none() {
        println!("  page    http://{}/", device.addr(HTTP_PORT).ip());
        return Ok(None);
    }
    let forwarder = Forwarder::start(
        device.host_net(),
        device.addr(0).ip(),
        &FORWARDED_PORTS,
        base,
    )?;
    let at = |port| {
        forwarder
            .local(port)
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    println!(
        "forwarded to this namespace (loopback only; --no-forward turns it off):\n  \
         page    http://{}/\n  lab {}, management {}, echo {}, discard {}, chargen {}, iperf3 {}, iperf2 {}",
        at(HTTP_PORT),
        at(LAB_PORT),
        at(MGMT_PORT),
        at(ECHO_PORT),
        at(DISCARD_PORT),
        at(CHARGEN_PORT),
        at(IPERF3_PORT),
        at(IPERF2_PORT)
    );
    Ok(Some(forwarder))
}

fn print_how_to_reach(device: &TapDevice) {
    let ready = device.ready();
    let lab = device.lab_addr();
    let place = match device.netns() {
        Some(ns) => format!(" in network namespace {ns}"),
        None => String::new(),
    };
    println!(
        "socklab-tap is running (pid {}){place}, on TAP {}",
        device.pid(),
        device.tap().name()
    );
    println!(
        "  device  {}  {}  mac {}",
        ready.ipv4, ready.ipv6, ready.mac
    );
    println!(
        "  lab {}, echo {ECHO_PORT}, discard {DISCARD_PORT}, chargen {CHARGEN_PORT}, iperf3 {IPERF3_PORT}, iperf2 {IPERF2_PORT}; ping answered",
        lab.port()
    );
    let prefix = match device.host_net().netns_name() {
        Some(ns) => format!("socklab --netns {ns}"),
        None => "socklab".to_owned(),
    };
    println!("talk to it:");
    println!("  {prefix} connect {}", lab.ip());
    println!("  {prefix} netstat {}", lab.ip());
    println!("  {prefix} ping {}", lab.ip());
    if let Some(ns) = device.host_net().netns_name() {
        println!("  sudo ip netns exec {ns} nc {} {}", lab.ip(), lab.port());
    }
    print_second_network(device);
}

/// The banner's lines for a device's second network, if it has one.
fn print_second_network(device: &dyn RunningBoard) {
    if let Some(second) = device.second_network() {
        let ns = second.host_net.netns_name().unwrap_or_default();
        println!(
            "second network: TAP {} in network namespace {ns}, device {}  {}",
            second.tap, second.ipv4, second.ipv6
        );
        println!("  socklab --netns {ns} connect {}", second.ipv4);
        println!("  socklab --netns {ns} ifconfig {}", second.ipv4);
        println!(
            "  (from the first network, {} has no route: each network reaches only its own \
             address)",
            second.ipv4
        );
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_last_boot_line_gives_count_and_reason() {
        let log = "[     0.001 INFO  socklab_baremetal::boardstatus] boot 1 (power-on), stack 131072 B reserved\n\
                   WATCHDOG at 4002 ms: the serve loop did not come round in 4000 ms; reset\n\
                   [     0.001 INFO  socklab_baremetal::boardstatus] boot 2 (watchdog), stack 131072 B reserved\n\
                   [     0.200 INFO  socklab_app] lab client 10.0.2.2:5000 (boot time)\n";
        assert_eq!(last_boot(log), Some((2, "watchdog")));
        assert_eq!(last_boot("no boot line\n"), None);
    }

    #[test]
    fn qemu_options_parse() {
        let cli = Cli::try_parse_from([
            "run",
            "qemu",
            "--net",
            "tap",
            "--tap",
            "tap7",
            "--pcap",
            "x.pcap",
            "--log",
            "uart.log",
            "--qemu-arg",
            "-d",
            "--qemu-arg=guest_errors",
            "--",
            "--drop-chance",
            "5",
        ])
        .unwrap();
        assert!(matches!(cli.args.board, BoardArg::Qemu));
        assert_eq!(cli.args.net, Some(NetArg::Tap));
        assert_eq!(cli.args.name.as_deref(), Some("tap7"));
        assert_eq!(cli.args.pcap, Some(PathBuf::from("x.pcap")));
        assert_eq!(cli.args.log, Some(PathBuf::from("uart.log")));
        assert_eq!(cli.args.qemu_arg, ["-d", "guest_errors"]);
        assert_eq!(cli.args.device_args, ["--drop-chance", "5"]);
        let cli = Cli::try_parse_from(["run", "qemu", "--port-base", "20000"]).unwrap();
        assert_eq!(cli.args.port_base, Some(20000));
        assert!(Cli::try_parse_from(["run", "qemu", "--port-base", "60000"]).is_err());
    }
}
