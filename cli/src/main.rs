//! `socklab`: start a socklab device, talk to it, read its socket table, and
//! walk through the life of a TCP socket with `socklab demo`.
//!
//! One module per subcommand under `cmd/`; the work is done by the
//! `socklab_host` library. What only a person at a terminal needs lives
//! here: the tables of [`render`], the bench's progress bars in [`progress`],
//! `socklab top`'s terminal view and `socklab connect`'s line editing.
//! Results go to stdout, logs and progress to stderr.

// The library's `println!`, `print!` and `eprintln!`, which never panic on a
// closed stdout or stderr, in place of the standard ones in every module.
#[macro_use]
extern crate socklab_host;

mod cmd;
mod progress;
mod render;

use clap::{Parser, Subcommand};

/// socklab: a TCP server firmware that needs no hardware, and the tool to talk to it.
///
/// Start here: `sudo socklab demo` starts a device in a private network namespace and
/// walks through the life of a TCP socket, step by step.
#[derive(Debug, Parser)]
#[command(name = "socklab", version, propagate_version = true)]
struct Cli {
    #[arg(long, global = true, value_name = "NS", help = cmd::NETNS_HELP)]
    netns: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a device, connect three clients and explain every step of a socket's life.
    #[command(after_help = "Examples:\n  \
        sudo socklab demo                 the TAP board, in a private network namespace\n  \
        sudo socklab demo --pause         wait for Enter between steps (for a classroom)\n  \
        socklab demo --board qemu         QEMU's user networking, no root needed")]
    Demo(cmd::demo::Args),
    /// Start a device and keep it running until Ctrl-C.
    #[command(after_help = "Examples:\n  \
        sudo socklab run tap              a private namespace; ports forwarded to 127.0.0.1\n  \
        sudo socklab --netns lab run tap  the device in namespace `lab` (created if missing)\n  \
        socklab run qemu                  QEMU's user networking: lab on 127.0.0.1:16666")]
    Run(cmd::run::Args),
    /// Talk to a device line by line, like `nc`: stdin to the device, its lines to stdout.
    #[command(after_help = "Examples:\n  \
        socklab connect 127.0.0.1:16666   the lab of `socklab run`, forwarded to 127.0.0.1\n  \
        socklab --netns lab connect 192.168.69.1\n  \
        echo 'ECHO hi' | socklab connect 192.168.69.1")]
    Connect(cmd::connect::Args),
    /// Show the device's socket table: every socket, listening ones included.
    #[command(after_help = "Examples:\n  \
        socklab netstat 192.168.69.1      identical listening sockets on one row\n  \
        socklab netstat 192.168.69.1 --all\n  \
        socklab netstat 127.0.0.1:16666 --json")]
    Netstat(cmd::netstat::Args),
    /// Show what the device says about itself: addresses, pool sizes, counters.
    #[command(after_help = "Examples:\n  \
        socklab info 192.168.69.1\n  \
        socklab --netns lab info 192.168.69.1 --json")]
    Info(cmd::info::Args),
    /// Show the device's network interfaces: one address per interface, as `ip addr` does.
    #[command(after_help = "Examples:\n  \
        socklab ifconfig 192.168.69.1\n  \
        socklab ifconfig 192.168.70.1 --json      the second network of `run --networks 2`")]
    Ifconfig(cmd::ifconfig::Args),
    /// List the clients connected to the lab service.
    #[command(after_help = "Examples:\n  \
        socklab who 192.168.69.1\n  \
        socklab who 127.0.0.1:16666")]
    Who(cmd::who::Args),
    /// Send ICMP echo requests to a device and show the round-trip times (needs root).
    #[command(after_help = "Examples:\n  \
        sudo socklab ping 192.168.69.1\n  \
        sudo socklab --netns lab ping fdaa::1 --count 10")]
    Ping(cmd::ping::Args),
    /// Watch the device's sockets live in the terminal (its web page's JSON API, port 80).
    #[command(after_help = "Examples:\n  \
        socklab --netns socklab-1234-0 top 192.168.69.1\n  \
        socklab top 127.0.0.1:10080       through `socklab run tap`'s forwarder\n  \
        socklab top 192.168.69.1 --once   one frame as text on stdout")]
    Top(cmd::top::Args),
    /// Create or delete a TAP interface with the host-side addresses (needs root).
    #[command(after_help = "Examples:\n  \
        sudo socklab tap up               tap0, owned by you: then `socklab run tap --tap tap0`\n  \
        sudo socklab --netns lab tap up   tap0 in namespace `lab` (created if missing)\n  \
        sudo socklab tap down --name tap0")]
    Tap(cmd::tap::Args),
    /// Measure a device's throughput, latency, connection rate and concurrency, optionally
    /// next to Linux's own TCP stack (`--baseline kernel`).
    Bench(cmd::bench::Args),
    /// Print the Markdown table of a committed file of figures (as the docs show it).
    #[command(after_help = "Examples:\n  \
        socklab report docs/figures/page-cost-tap.json     what scripts/page-cost measured\n  \
        socklab report docs/bench/reference-tap.json       a socklab bench --json result")]
    Report(cmd::report::Args),
    /// The kernel baseline's server (started by `socklab bench --baseline kernel`).
    #[command(hide = true)]
    KernelServer(cmd::bench::ServerArgs),
}

impl Command {
    /// The subcommand's `--timeout`, for those that wait for a device.
    fn wait(&self) -> Option<cmd::Wait> {
        match self {
            Command::Demo(args) => Some(args.wait),
            Command::Run(args) => Some(args.wait),
            Command::Connect(args) => Some(args.wait),
            Command::Netstat(args) => Some(args.wait),
            Command::Info(args) => Some(args.wait),
            Command::Ifconfig(args) => Some(args.wait),
            Command::Who(args) => Some(args.wait),
            Command::Ping(args) => Some(args.wait),
            Command::Top(args) => Some(args.wait),
            Command::Bench(args) => Some(args.wait),
            Command::Tap(_) | Command::Report(_) | Command::KernelServer(_) => None,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let global = cmd::Global {
        netns: cli.netns,
        timeout: cli
            .command
            .wait()
            .map_or(cmd::DEFAULT_TIMEOUT_SECS, |wait| wait.timeout),
    };
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(&global, args),
        Command::Run(args) => cmd::run::run(&global, args),
        Command::Connect(args) => cmd::connect::run(&global, args),
        Command::Netstat(args) => cmd::netstat::run(&global, args),
        Command::Info(args) => cmd::info::run(&global, args),
        Command::Ifconfig(args) => cmd::ifconfig::run(&global, args),
        Command::Who(args) => cmd::who::run(&global, args),
        Command::Ping(args) => cmd::ping::run(&global, args),
        Command::Top(args) => cmd::top::run(&global, args),
        Command::Tap(args) => cmd::tap::run(&global, args),
        Command::Bench(args) => cmd::bench::run(&global, args),
        Command::Report(args) => cmd::report::run(args),
        Command::KernelServer(args) => cmd::bench::serve(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("socklab: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_netns_goes_anywhere() {
        let cli = Cli::try_parse_from([
            "socklab",
            "netstat",
            "192.168.69.1",
            "--netns",
            "x",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.netns.as_deref(), Some("x"));
        let cli =
            Cli::try_parse_from(["socklab", "--netns", "y", "connect", "[fdaa::1]:7"]).unwrap();
        assert_eq!(cli.netns.as_deref(), Some("y"));
        let Command::Connect(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.addr.port(), 7);
    }

    #[test]
    fn device_options_pass_through() {
        let cli = Cli::try_parse_from([
            "socklab",
            "run",
            "tap",
            "--",
            "--pcap",
            "x.pcap",
            "--drop-chance",
            "5",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.device_args, ["--pcap", "x.pcap", "--drop-chance", "5"]);
    }
}
