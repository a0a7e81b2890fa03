//! `socklab info ADDR [--json]`: what the device says about itself.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::render::info_table;
use socklab_host::client::LabClient;

use super::Global;

/// Arguments of `socklab info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    /// Print a JSON object instead of `key  value` lines.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab info`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::print_answer(global, args.addr, args.json, LabClient::info, info_table)
}
