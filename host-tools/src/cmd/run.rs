//! `socklab run tap`: start a device and keep it running until Ctrl-C, then
//! remove what was created for it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use socklab_app::protocol::{CHARGEN_PORT, DISCARD_PORT, ECHO_PORT};
use socklab_host::launch::{Device, DeviceLog, NetnsChoice, TapDevice, TapOptions};
use socklab_host::netns;

use super::Global;

/// The board to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Board {
    /// `socklab-tap`: the firmware as a Linux process on a TAP interface.
    Tap,
}

/// Arguments of `socklab run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which device to run.
    #[arg(value_enum)]
    pub board: Board,

    /// Attach to this TAP (created if missing, with the host-side addresses). Without it
    /// and as root, the device gets a private network namespace and TAP of its own, so
    /// your real network is never touched; without it and not root, `tap0`.
    #[arg(long, value_name = "TAP")]
    pub name: Option<String>,

    /// Device log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Options for the device itself, after `--`: `--pcap FILE`, `--drop-chance PCT`,
    /// `--corrupt-chance PCT`, `--rate-limit PKTS`, `--mac`, `--ip`, `--ip6`, ...
    #[arg(last = true, value_name = "DEVICE OPTIONS")]
    pub device_args: Vec<OsString>,
}

/// Runs `socklab run`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let Board::Tap = args.board;
    let netns = match (&global.netns, &args.name) {
        (Some(ns), _) => NetnsChoice::Named(ns.clone()),
        (None, None) if netns::is_root() => NetnsChoice::Private,
        (None, _) => NetnsChoice::Current,
    };
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    eprintln!("socklab: starting socklab-tap ...");
    let opts = TapOptions {
        netns,
        tap: args.name,
        tap_user: None,
        device_args: args.device_args,
        log_level: args.log_level,
        log: DeviceLog::Inherit,
        ready_timeout: global.timeout().max(Duration::from_secs(10)),
        binary: None,
    };
    let mut device = TapDevice::start(opts)?;
    print_how_to_reach(&device);

    let code = loop {
        if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            eprintln!("socklab: stopping the device ...");
            break ExitCode::SUCCESS;
        }
        if let Some(status) = device.try_wait()? {
            // A Ctrl-C in the terminal reaches the device too: that is a stop.
            if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                break ExitCode::SUCCESS;
            }
            eprintln!("socklab: the device exited: {status}");
            break ExitCode::FAILURE;
        }
    };
    let netns = device
        .netns()
        .filter(|ns| ns.is_owned())
        .map(|ns| ns.name().to_owned());
    let tap = device
        .tap()
        .is_owned()
        .then(|| device.tap().name().to_owned());
    device.stop()?;
    match (netns, tap) {
        (Some(ns), _) => {
            eprintln!("socklab: device stopped; network namespace {ns} and its TAP removed")
        }
        (None, Some(tap)) => eprintln!("socklab: device stopped; TAP {tap} removed"),
        (None, None) => eprintln!("socklab: device stopped"),
    }
    Ok(code)
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
        "  lab {}, echo {ECHO_PORT}, discard {DISCARD_PORT}, chargen {CHARGEN_PORT}; ping answered",
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
    println!("press Ctrl-C to stop it");
}
