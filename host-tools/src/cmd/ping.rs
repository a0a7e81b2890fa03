//! `socklab ping HOST`: ICMP echo requests to a device, with round-trip times.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use socklab_host::ping::ping;

use super::Global;

/// Arguments of `socklab ping`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (a port, if given, is ignored: ICMP has none).
    #[arg(value_parser = super::parse_addr)]
    pub host: SocketAddr,

    /// How many requests to send.
    #[arg(short, long, default_value_t = 4)]
    pub count: u32,

    /// Seconds between requests.
    #[arg(short, long, default_value_t = 0.2)]
    pub interval: f64,
}

/// Runs `socklab ping`; fails if no request was answered.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let ip = args.host.ip();
    let net = global.host_net();
    let timeout = global.timeout();
    let interval = Duration::from_secs_f64(args.interval.clamp(0.0, 60.0));
    let mut answered = 0;
    for seq in 0..args.count {
        if seq > 0 {
            std::thread::sleep(interval);
        }
        match net.run(|| ping(ip, timeout))? {
            Ok(rtt) => {
                answered += 1;
                println!(
                    "reply from {ip}: seq={seq} time={:.3} ms",
                    rtt.as_secs_f64() * 1e3
                );
            }
            Err(e) => println!("no reply from {ip}: seq={seq}: {e}"),
        }
    }
    println!("{} sent, {answered} answered", args.count);
    Ok(if answered > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
