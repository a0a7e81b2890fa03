//! The subcommands, one module each, and the options they share.

pub mod bench;
pub mod connect;
pub mod demo;
pub mod ifconfig;
pub mod info;
pub mod netstat;
pub mod ping;
pub mod report;
pub mod run;
pub mod tap;
pub mod top;
pub mod who;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use socklab_app::protocol::{self, LAB_PORT, MGMT_PORT};
use socklab_app::services;
use socklab_host::client::{ClientError, LabClient};
use socklab_host::launch::DEFAULT_PORT_BASE;
use socklab_host::netns::HostNet;

/// What `main` hands every subcommand: the global `--netns`, and the
/// subcommand's own `--timeout` (the default for those that have none).
#[derive(Debug, Default)]
pub struct Global {
    /// `--netns NS`: where client sockets are opened (for `tap` and `run`:
    /// where the TAP and the device go).
    pub netns: Option<String>,

    /// `--timeout SECS` of the subcommand.
    pub timeout: f64,
}

/// Help of the global `--netns` option.
pub const NETNS_HELP: &str = "Network namespace to work in: `tap` and `run` put the TAP and the \
     device there (created if missing); `connect`, `netstat`, `info`, `who`, `ping`, `top` and `bench` \
     open their sockets there, to reach a device that `tap`/`run` put there; `demo` makes its own";

/// `--timeout`, for the subcommands that wait for a device.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Wait {
    /// Seconds to wait for the device to answer (more than 0, at most 3600).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS, value_parser = parse_timeout)]
    pub timeout: f64,
}

/// `--timeout` when it is not given.
pub const DEFAULT_TIMEOUT_SECS: f64 = 5.0;

/// A number of seconds in (0, 3600].
pub fn parse_timeout(s: &str) -> Result<f64, String> {
    parse_seconds(s, 3600.0)
}

/// A number of seconds greater than 0 and at most `max`.
pub fn parse_seconds(s: &str, max: f64) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds (e.g. 2 or 0.5)"))?;
    if secs.is_finite() && secs > 0.0 && secs <= max {
        Ok(secs)
    } else {
        Err(format!(
            "give a number of seconds greater than 0 and at most {max}"
        ))
    }
}

impl Global {
    /// Where client sockets are opened.
    pub fn host_net(&self) -> HostNet {
        HostNet::from_option(self.netns.as_deref())
    }

    /// `--timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        let secs = if self.timeout.is_finite() {
            self.timeout.clamp(0.001, 3600.0)
        } else {
            DEFAULT_TIMEOUT_SECS
        };
        Duration::from_secs_f64(secs)
    }

    /// A client for the read-only questions (`WHO`, `NETSTAT`, `INFO`) on
    /// the management port beside the lab at `addr` ([`management_addr`]):
    /// it answers on a full device too.
    pub fn query_client(&self, addr: SocketAddr) -> anyhow::Result<LabClient> {
        let addr = management_addr(addr);
        LabClient::connect_in(&self.host_net(), addr, self.timeout())
            .map_err(|error| explain(addr, error, "cannot talk to the device"))
    }
}

/// A client error with what the user can do about it: `what` failed at
/// `addr` (e.g. "cannot talk to the lab service"); a lab command that reached another service is told where the lab
/// is, and a refused connection on 127.0.0.1 where `socklab run` forwards.
pub fn explain(addr: SocketAddr, error: ClientError, what: &str) -> anyhow::Error {
    let what = format!("{what} at {addr}");
    let port = addr.port();
    let service = services::service_name(port);
    let no_hello = matches!(
        error,
        ClientError::Timeout { .. } | ClientError::Protocol { .. } | ClientError::Closed { .. }
    );
    let lab_like = port == LAB_PORT || port == MGMT_PORT;
    if !lab_like && no_hello && service != services::service_name(0) {
        return anyhow::anyhow!(
            "{what}: port {port} is the device's {service} service, not the lab: the lab \
             service is on port {LAB_PORT}, the default when ADDR has no port (give {})",
            addr.ip()
        );
    }
    if error.is_refused() {
        // The error names the address and the service ports already.
        if !addr.ip().is_loopback() {
            return error.into();
        }
        return anyhow::anyhow!(
            "{error}; on 127.0.0.1 `socklab run` forwards device port P to \
             {DEFAULT_PORT_BASE} + P (lab {}, echo {}): is it running, with another \
             --port-base?",
            DEFAULT_PORT_BASE + LAB_PORT,
            DEFAULT_PORT_BASE + protocol::ECHO_PORT
        );
    }
    anyhow::Error::new(error).context(what)
}

/// Where `who`, `netstat` and `info` ask: the management port
/// ([`MGMT_PORT`]) when `addr` names the lab's port, directly (6666) or as
/// `socklab run` forwards it by default (16666 -> 16668); any other port as
/// given.
pub fn management_addr(addr: SocketAddr) -> SocketAddr {
    let port = match addr.port() {
        LAB_PORT => MGMT_PORT,
        p if p == DEFAULT_PORT_BASE + LAB_PORT => DEFAULT_PORT_BASE + MGMT_PORT,
        p => p,
    };
    SocketAddr::new(addr.ip(), port)
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
    let mut client = global.query_client(addr)?;
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
    "The device: HOST, HOST:PORT or [IPV6]:PORT; without a port, 6666 (the lab service). \
     who, netstat and info ask its management port beside it (6668; 16668 beside a forwarded \
     16666), which answers on a full device too";

/// An `ADDR` argument: `host`, `host:port`, `[v6]:port`; port 6666 by default.
pub fn parse_addr(s: &str) -> Result<SocketAddr, socklab_host::addr::AddrError> {
    socklab_host::addr::parse_addr(s)
}
