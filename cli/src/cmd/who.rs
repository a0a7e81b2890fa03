//! `socklab who ADDR`: the clients connected to the lab service.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::Global;

/// Arguments of `socklab who`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab who`, on the management port (the list does not include
/// this query) or, at another port, the lab (it does).
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut client = global.query_client(args.addr)?;
    // On the management port this query holds no lab slot.
    let greeting = client.greeting();
    let me = (!greeting.management).then_some(greeting.slot);
    let (rows, waiting) = client.who_and_queue()?;
    let _ = client.quit();
    println!("Slot  Client");
    for row in rows {
        let note = if Some(row.slot) == me {
            "  (this query)"
        } else {
            ""
        };
        println!("{:>4}  {}{note}", row.slot, row.peer);
    }
    if !waiting.is_empty() {
        println!("\nWaiting for a slot (the backlog), first served first:");
        for row in waiting {
            println!("{:>4}  {}", row.position, row.peer);
        }
    }
    super::ok()
}
