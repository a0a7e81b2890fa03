//! `socklab`: start a socklab device, talk to it, read its socket table, and
//! walk through the life of a TCP socket with `socklab demo`.
//!
//! One module per subcommand under `cmd/`; the work is done by the
//! `socklab_host` library. Results go to stdout, logs and progress to stderr.

mod cmd;

use clap::{Parser, Subcommand};

/// socklab: a TCP server firmware that needs no hardware, and the tool to talk to it.
///
/// Start here: `sudo socklab demo` starts a device in a private network namespace and
/// walks through the life of a TCP socket, step by step.
#[derive(Debug, Parser)]
#[command(name = "socklab", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a device, connect three clients and explain every step of a socket's life.
    Demo(cmd::demo::Args),
    /// Start a device and keep it running until Ctrl-C.
    Run(cmd::run::Args),
    /// Talk to a device line by line, like `nc`: stdin to the device, its lines to stdout.
    Connect(cmd::connect::Args),
    /// Show the device's socket table: every socket, listening ones included.
    Netstat(cmd::netstat::Args),
    /// Show what the device says about itself: addresses, pool sizes, counters.
    Info(cmd::info::Args),
    /// List the clients connected to the lab service.
    Who(cmd::who::Args),
    /// Send ICMP echo requests to a device and show the round-trip times (needs root).
    Ping(cmd::ping::Args),
    /// Create or delete a TAP interface with the host-side addresses (needs root).
    Tap(cmd::tap::Args),
    /// Measure a device's throughput, latency, connection rate and concurrency, optionally
    /// next to Linux's own TCP stack (`--baseline kernel`).
    Bench(cmd::bench::Args),
    /// The kernel baseline's server (started by `socklab bench --baseline kernel`).
    #[command(hide = true)]
    KernelServer(cmd::bench::ServerArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(&cli.global, args),
        Command::Run(args) => cmd::run::run(&cli.global, args),
        Command::Connect(args) => cmd::connect::run(&cli.global, args),
        Command::Netstat(args) => cmd::netstat::run(&cli.global, args),
        Command::Info(args) => cmd::info::run(&cli.global, args),
        Command::Who(args) => cmd::who::run(&cli.global, args),
        Command::Ping(args) => cmd::ping::run(&cli.global, args),
        Command::Tap(args) => cmd::tap::run(&cli.global, args),
        Command::Bench(args) => cmd::bench::run(&cli.global, args),
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
        assert_eq!(cli.global.netns.as_deref(), Some("x"));
        let cli =
            Cli::try_parse_from(["socklab", "--netns", "y", "connect", "[fdaa::1]:7"]).unwrap();
        assert_eq!(cli.global.netns.as_deref(), Some("y"));
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
