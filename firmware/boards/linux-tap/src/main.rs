//! The linux-tap board: socklab's application as a Linux process attached to a
//! TAP interface, sleeping on the TAP's fd until the application's next poll.
//!
//! A board supplies three things and its sizes: a `phy::Device` (the TAP,
//! optionally wrapped in a pcap writer and a fault injector), a millisecond
//! clock (`std::time::Instant`), and a `log` sink (stderr).

mod logger;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Instant as StdInstant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::smoltcp::phy::{
    self, Device, FaultInjector, Medium, PcapMode, PcapWriter, TunTapInterface,
};
use socklab_app::smoltcp::time::{Duration, Instant};
use socklab_app::smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};
use socklab_app::{config, App, Config, LabSlot, Sizes, Storage};

/// The linux-tap pool: 64 lab clients at once, and bulk sockets with buffers
/// big enough for window scaling.
pub const SIZES: Sizes = Sizes {
    lab_slots: 64,
    lab_rx: 1024,
    lab_tx: 4096,
    bulk_slots: 4,
    bulk_rx: 256 * 1024,
    bulk_tx: 256 * 1024,
};

/// Interval over which `--rate-limit` counts packets.
const RATE_BUCKET: Duration = Duration::from_millis(100);

/// socklab's TCP server on a Linux TAP interface.
///
/// Attach to an existing TAP (`socklab tap up`, or
/// `ip tuntap add tap0 mode tap user $USER`); the device then answers on
/// 192.168.69.1 / fdaa::1: lab 6666, echo 7, discard 9, chargen 19, ping.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TAP interface to attach to.
    #[arg(long, default_value = "tap0")]
    tap: String,
    /// Device IPv4 address with prefix.
    #[arg(long, default_value_t = config::DEFAULT_IPV4, value_parser = parse_with::<Ipv4Cidr>)]
    ip: Ipv4Cidr,
    /// Device IPv6 address with prefix.
    #[arg(long, default_value_t = config::DEFAULT_IPV6, value_parser = parse_with::<Ipv6Cidr>)]
    ip6: Ipv6Cidr,
    /// IPv4 default gateway.
    #[arg(long)]
    gateway: Option<std::net::Ipv4Addr>,
    /// IPv6 default gateway.
    #[arg(long)]
    gateway6: Option<std::net::Ipv6Addr>,
    /// Device Ethernet address, e.g. 02:00:00:00:00:01.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    mac: EthernetAddress,
    /// Write every frame in and out to this pcap file (Wireshark, tcpdump -r).
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,
    /// Percentage of frames to drop, each way (0-100).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    drop_chance: u8,
    /// Percentage of frames to corrupt, each way (0-100).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    corrupt_chance: u8,
    /// Most frames per second, each way (0: unlimited).
    #[arg(long, default_value_t = 0, value_name = "PKTS_PER_SEC")]
    rate_limit: u64,
    /// Seed for the fault injector, so a failing run can be replayed.
    #[arg(long, default_value_t = 1)]
    seed: u32,
    /// Idle lab clients get `BYE idle` after this many milliseconds.
    #[arg(long, default_value_t = config::IDLE_TIMEOUT_MS)]
    idle_timeout_ms: u64,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
}

/// Parses with a smoltcp `FromStr` (whose error says nothing) and explains.
fn parse_with<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an address with prefix, e.g. 192.168.69.1/24 or fdaa::1/64")
    })
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a log level: off, error, warn, info, debug, trace"))
}

fn parse_mac(text: &str) -> Result<EthernetAddress, String> {
    let mut bytes = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in bytes.iter_mut() {
        let part = parts
            .next()
            .ok_or("a MAC has six bytes, e.g. 02:00:00:00:00:01")?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| format!("`{part}` is not a hex byte"))?;
    }
    if parts.next().is_some() {
        return Err("a MAC has six bytes, e.g. 02:00:00:00:00:01".into());
    }
    let mac = EthernetAddress(bytes);
    if !mac.is_unicast() {
        return Err("the device's MAC must be unicast (first byte even)".into());
    }
    Ok(mac)
}

fn main() {
    let args = Args::parse();
    logger::init(args.log_level);
    if let Err(error) = run(args) {
        eprintln!("socklab-tap: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let tap = TunTapInterface::new(&args.tap, Medium::Ethernet).with_context(|| {
        format!(
            "cannot attach to TAP `{}`: create it first (`socklab tap up --name {0}` or \
             `ip tuntap add {0} mode tap user $USER && ip link set {0} up`)",
            args.tap
        )
    })?;
    let fd = tap.as_raw_fd();
    let faults = args.drop_chance > 0 || args.corrupt_chance > 0 || args.rate_limit > 0;
    let pcap = match &args.pcap {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create pcap file {}", path.display()))?,
        ),
        None => None,
    };
    match (faults, pcap) {
        (false, None) => serve(&args, tap, fd),
        (false, Some(file)) => serve(&args, PcapWriter::new(tap, file, PcapMode::Both), fd),
        (true, pcap) => {
            let mut injector = FaultInjector::new(tap, args.seed);
            injector.set_drop_chance(args.drop_chance);
            injector.set_corrupt_chance(args.corrupt_chance);
            if args.rate_limit > 0 {
                let per_bucket = (args.rate_limit * RATE_BUCKET.total_millis() / 1000).max(1);
                injector.set_bucket_interval(RATE_BUCKET);
                injector.set_max_tx_rate(per_bucket);
                injector.set_max_rx_rate(per_bucket);
            }
            match pcap {
                // The capture shows the frames as the application sees them.
                Some(file) => serve(&args, PcapWriter::new(injector, file, PcapMode::Both), fd),
                None => serve(&args, injector, fd),
            }
        }
    }
}

/// Leaks `len` copies of `value`: the pool's storage lives as long as the process.
fn leak<T>(len: usize, value: impl Fn() -> T) -> &'static mut [T] {
    (0..len).map(|_| value()).collect::<Vec<_>>().leak()
}

fn serve<D: Device>(args: &Args, mut device: D, fd: i32) -> Result<()> {
    let started = StdInstant::now();
    let now = || Instant::from_micros(started.elapsed().as_micros() as i64);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32;
    let config = Config {
        board: "linux-tap",
        mac: args.mac,
        ipv4: args.ip,
        ipv6: args.ip6,
        gateway4: args.gateway,
        gateway6: args.gateway6,
        dhcp: false,
        random_seed: seed,
        timeouts: socklab_app::Timeouts {
            idle_ms: args.idle_timeout_ms,
            ..Default::default()
        },
    };
    let storage = Storage {
        sockets: leak(SIZES.sockets(), || SocketStorage::EMPTY),
        lab: leak(SIZES.lab_slots, || LabSlot::EMPTY),
        buffers: leak(SIZES.buffer_bytes(), || 0u8),
    };
    let mut app = match App::new(config, SIZES, storage, &mut device, now()) {
        Ok(app) => app,
        Err(error) => bail!("the pool's storage does not fit its sizes: {error}"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "socklab-tap ready tap={} ipv4={} ipv6={} mac={}",
        args.tap,
        args.ip,
        args.ip6,
        args.mac.to_string().replace('-', ":")
    )?;
    out.flush()?;
    drop(out);
    loop {
        let delay = app.poll(now(), &mut device);
        phy::wait(fd, delay).context("waiting on the TAP")?;
    }
}
