//! `socklab ifconfig ADDR [--json]`: the device's network interfaces, one address
//! each, laid out as `ip -s addr` does.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::render::ifconfig_table;
use socklab_host::client::LabClient;

use super::Global;

/// Arguments of `socklab ifconfig`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    /// Print a JSON array instead of the `ip addr` layout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab ifconfig`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::print_answer(
        global,
        args.addr,
        args.json,
        LabClient::ifconfig,
        |interfaces| ifconfig_table(interfaces),
    )
}
