//! `socklab demo`: starts a device, connects three clients, and walks a
//! newcomer through the life of a TCP socket — address, port, listen,
//! connect, accept, one socket per client, talking, a refused connect, ping,
//! a checked transfer, goodbye — checking each step (✔/✘) as it goes.
//!
//! The step engine (sections, explanations, checked steps, the score,
//! `--pause`) is in `engine`; the lifecycle script, the story told with it, in
//! `lifecycle`.

mod engine;
mod lifecycle;
mod networks;

use std::process::ExitCode;

use anyhow::anyhow;
use socklab_host::board::{BoardArg, BoardKind, NetArg};
use socklab_host::launch::Machine;
use socklab_host::netns;

use super::Global;
use engine::{Demo, Stopped};

/// Arguments of `socklab demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wait for Enter (a line on stdin) before each section: for a classroom.
    #[arg(long)]
    pub pause: bool,

    /// Go on after a failed step (steps that need what failed are skipped).
    #[arg(long)]
    pub keep_going: bool,

    /// Where the device runs: tap (`socklab-tap` on a TAP in a private network namespace,
    /// needs root) or qemu (a firmware image in QEMU: on a TAP in a private network
    /// namespace as root, every step; else on QEMU's user networking, no ping, no IPv6).
    #[arg(long, value_enum, default_value_t = BoardArg::Tap)]
    pub board: BoardArg,

    /// --board qemu: the network (default: tap as root, else user).
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,

    /// --board qemu: the QEMU machine.
    #[arg(long, value_enum, default_value_t = Machine::default())]
    pub machine: Machine,

    /// Network interfaces of the device, 1 or 2 (tap, and riscv-virt on a TAP): with 2,
    /// the demo ends with "one device, two networks".
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub networks: u8,

    /// Bytes sent through the echo service in the transfer step.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub transfer: usize,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab demo`; fails if any step failed.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    // Ctrl-C (or SIGTERM, SIGHUP): stop the device and delete the namespace before exiting.
    ctrlc::set_handler(|| {
        eprintln!("\nsocklab: interrupted; removing the device and its namespace");
        socklab_host::cleanup::emergency_cleanup();
        std::process::exit(130);
    })?;
    let default_net = if netns::is_root() {
        NetArg::Tap
    } else {
        NetArg::User
    };
    let board = BoardKind::choose(args.board, args.net, args.machine, default_net)
        .map_err(|e| anyhow!("{e}: give --net with --board qemu"))?;
    if global.netns.is_some() {
        eprintln!("socklab: note: the demo makes a namespace of its own; --netns is ignored");
    }
    let mut demo = Demo::new(args.keep_going, args.pause);
    let result = demo.run(board, &args, global.timeout());
    println!();
    let steps = demo.passed + demo.failed + demo.skipped;
    let summary = format!(
        "{steps} step{}: {} passed, {} failed{}",
        if steps == 1 { "" } else { "s" },
        demo.passed,
        demo.failed,
        if demo.skipped > 0 {
            format!(", {} skipped", demo.skipped)
        } else {
            String::new()
        }
    );
    println!("{summary}");
    match result {
        Err(Stopped) => {
            println!("stopped at the first failure (--keep-going runs every step)");
            Ok(ExitCode::FAILURE)
        }
        Ok(()) if demo.failed > 0 => Ok(ExitCode::FAILURE),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}
