//! `socklab who ADDR`: the clients connected to the lab service.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::Global;

/// Arguments of `socklab who`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's lab service: host, host:port or [v6]:port (port 6666 by default).
    #[arg(value_parser = super::parse_addr)]
    pub addr: SocketAddr,
}

/// Runs `socklab who`. The list includes this very connection.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut client = global.lab_client(args.addr)?;
    let me = client.greeting().slot;
    let rows = client.who()?;
    let _ = client.quit();
    println!("Slot  Client");
    for row in rows {
        let note = if row.slot == me { "  (this query)" } else { "" };
        println!("{:>4}  {}{note}", row.slot, row.peer);
    }
    super::ok()
}
