//! The subcommands, one module each, and the options they share.

pub mod bench;
pub mod connect;
pub mod demo;
pub mod info;
pub mod netstat;
pub mod ping;
pub mod run;
pub mod tap;
pub mod who;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use socklab_host::client::LabClient;
use socklab_host::netns::HostNet;

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Open client sockets inside this network namespace (for `tap` and `run`: put the
    /// TAP and the device there).
    #[arg(long, global = true, value_name = "NS")]
    pub netns: Option<String>,

    /// Seconds to wait for the device to answer.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
}

impl Global {
    /// Where client sockets are opened.
    pub fn host_net(&self) -> HostNet {
        HostNet::from_option(self.netns.as_deref())
    }

    /// `--timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.clamp(0.001, 3600.0))
    }

    /// A lab client on `addr`, opened in the right namespace, `HELLO` read.
    pub fn lab_client(&self, addr: SocketAddr) -> anyhow::Result<LabClient> {
        LabClient::connect_in(&self.host_net(), addr, self.timeout())
            .with_context(|| format!("cannot talk to the lab service at {addr}"))
    }
}

/// Connects to the lab at `addr`, asks one question, says `QUIT`, and prints
/// the answer as pretty JSON or as `render` lays it out.
pub fn print_answer<T: serde::Serialize>(
    global: &Global,
    addr: SocketAddr,
    json: bool,
    ask: impl FnOnce(&mut LabClient) -> Result<T, socklab_host::client::ClientError>,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let mut client = global.lab_client(addr)?;
    let answer = ask(&mut client)?;
    let _ = client.quit();
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render(&answer));
    }
    ok()
}

/// Success.
pub fn ok() -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}

/// Help text of every `ADDR` argument (a constant: rustdoc would read the
/// brackets of a doc comment as links).
pub const ADDR_HELP: &str =
    "The device: HOST, HOST:PORT or [IPV6]:PORT; without a port, 6666 (the lab service)";

/// An `ADDR` argument: `host`, `host:port`, `[v6]:port`; port 6666 by default.
pub fn parse_addr(s: &str) -> Result<SocketAddr, socklab_host::addr::AddrError> {
    socklab_host::addr::parse_addr(s)
}
