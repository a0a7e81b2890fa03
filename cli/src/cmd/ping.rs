//! `socklab ping HOST`: ICMP echo requests to a device, with round-trip times
//! and a summary like ping(8)'s.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use socklab_host::ping::{random_payload, PingError, Pinger, ECHO_HEADER_LEN, PAYLOAD_LEN};

use super::Global;

/// Arguments of `socklab ping`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address on its TAP (a port, if given, is ignored: ICMP has none).
    #[arg(value_parser = super::parse_addr)]
    pub host: SocketAddr,

    /// How many requests to send.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,

    /// Seconds between requests (more than 0, at most 60).
    #[arg(short, long, default_value_t = 0.2, value_parser = parse_interval)]
    pub interval: f64,

    #[command(flatten)]
    pub wait: super::Wait,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    super::parse_seconds(s, 60.0)
}

/// Round-trip times seen so far.
#[derive(Debug, Default)]
struct Stats {
    sent: u32,
    rtts: Vec<Duration>,
}

impl Stats {
    /// ping(8)'s two summary lines.
    fn summary(&self, ip: IpAddr) -> String {
        let received = self.rtts.len() as u32;
        let loss = if self.sent == 0 {
            0.0
        } else {
            100.0 * f64::from(self.sent - received) / f64::from(self.sent)
        };
        let mut out = format!(
            "--- {ip} ping statistics ---\n{} packets transmitted, {received} received, {loss:.0}% packet loss\n",
            self.sent
        );
        if !self.rtts.is_empty() {
            let ms: Vec<f64> = self.rtts.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            let n = ms.len() as f64;
            let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ms.iter().copied().fold(0.0, f64::max);
            let avg = ms.iter().sum::<f64>() / n;
            let mdev = (ms.iter().map(|m| (m - avg).powi(2)).sum::<f64>() / n).sqrt();
            out.push_str(&format!(
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms\n"
            ));
        }
        out
    }
}

/// Runs `socklab ping`; fails if no request was answered.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let ip = args.host.ip();
    if ip.is_loopback() {
        bail!(
            "ping needs the TAP: {ip} is this machine, not a device. A device behind QEMU's user \
             networking or `socklab run`'s port forwarding is reached on 127.0.0.1 by TCP only; \
             ping a device on a TAP at its own address (`sudo socklab run tap` prints it, e.g. \
             `sudo socklab --netns NS ping 192.168.69.1`)"
        );
    }
    let timeout = global.timeout();
    let interval = Duration::from_secs_f64(args.interval);
    // Opened once, in the namespace: no root, no request, one message.
    let pinger = global.host_net().run(|| Pinger::open(ip))??;
    println!(
        "PING {ip}: {PAYLOAD_LEN} data bytes, {} requests, {} s apart",
        args.count, args.interval
    );
    let mut stats = Stats::default();
    for seq in 1..=args.count {
        if seq > 1 {
            std::thread::sleep(interval);
        }
        let payload = random_payload();
        // Sequence numbers wrap as ping(8)'s do.
        let result = pinger.echo(seq as u16, &payload, timeout);
        match result {
            Ok(rtt) => {
                stats.sent += 1;
                stats.rtts.push(rtt);
                println!(
                    "{} bytes from {ip}: icmp_seq={seq} time={:.3} ms",
                    ECHO_HEADER_LEN + PAYLOAD_LEN,
                    rtt.as_secs_f64() * 1e3
                );
            }
            Err(PingError::Timeout { .. }) => {
                stats.sent += 1;
                println!("no reply from {ip}: icmp_seq={seq} within {timeout:?}");
            }
            // Not sent (e.g. no route): say it once, with what was counted.
            Err(error) => {
                print!("{}", stats.summary(ip));
                return Err(error.into());
            }
        }
    }
    print!("{}", stats.summary(ip));
    Ok(if stats.rtts.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn summary_is_like_ping_8() {
        let stats = Stats {
            sent: 4,
            rtts: [100, 200, 300].map(Duration::from_micros).to_vec(),
        };
        assert_eq!(
            stats.summary("192.168.69.1".parse().unwrap()),
            "--- 192.168.69.1 ping statistics ---\n\
             4 packets transmitted, 3 received, 25% packet loss\n\
             rtt min/avg/max/mdev = 0.100/0.200/0.300/0.082 ms\n"
        );
        let none = Stats {
            sent: 2,
            rtts: vec![],
        };
        assert!(!none.summary("fdaa::1".parse().unwrap()).contains("rtt"));
    }
}
