//! `socklab netstat ADDR [--json]`: the device's socket table.

use std::net::SocketAddr;
use std::process::ExitCode;

use socklab_host::client::LabClient;
use socklab_host::render::netstat_table;

use super::Global;

/// Arguments of `socklab netstat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `socklab netstat`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::print_answer(global, args.addr, args.json, LabClient::netstat, |rows| {
        netstat_table(rows)
    })
}
