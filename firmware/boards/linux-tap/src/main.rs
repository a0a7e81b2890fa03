//! The linux-tap board: socklab's application as a Linux process attached to a
//! TAP interface, sleeping on the TAP's fd until the application's next poll.
//!
//! A board supplies three things and its sizes: a `phy::Device` (the TAP,
//! optionally wrapped in a pcap writer and a fault injector), a millisecond
//! clock (`std::time::Instant`), and a `log` sink (stderr).

mod capture;
mod clock;
mod logger;
mod tap;
mod vnet;

use std::io::Write;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};
use clap::Parser;
use socklab_app::badlink::{self, BadLink, Faults};

use crate::capture::CaptureView;
use crate::clock::Clock;
use crate::tap::Tap;
use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::smoltcp::phy::{self, Device, FaultInjector, PcapMode, PcapWriter};
use socklab_app::smoltcp::time::Duration;
use socklab_app::smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};
use socklab_app::{
    config, App, BacklogPolicy, ClosingSocket, Config, LabSlot, Sizes, Storage, UdpPacketMetadata,
};

/// The default pool: 64 lab clients at once and 16 more waiting, 32
/// lab-sized sockets that finish closes, and bulk sockets with buffers big
/// enough for window scaling at MTU 1500 (about 15.4 MB in all).
///
/// The closing pool bounds the connection rate: a closed connection holds
/// its pool socket in TIME-WAIT, and when every one is busy the oldest is
/// recycled once it is 2 ms old, so at most 32 / 2 ms = 16,000 connections a
/// second. More closing sockets would raise that bound but cost every poll:
/// smoltcp walks every socket on every poll (256 of them put the pinned
/// 64-byte echo at 21-26 µs instead of 15).
pub const DEFAULT_POOL: Sizes = Sizes {
    lab_slots: 64,
    lab_backlog: 16,
    lab_rx: 1024,
    lab_tx: 4096,
    bulk_slots: 4,
    bulk_rx: 256 * 1024,
    bulk_tx: 256 * 1024,
    iperf3_sockets: IPERF3_SOCKETS,
    iperf3_rx: 256 * 1024,
    iperf3_tx: 256 * 1024,
    iperf2_sockets: 4,
    iperf2_rx: 256 * 1024,
    lab_closing: 32,
    bulk_closing: 4,
};

/// iperf3 sockets: a control connection, one spare to answer "busy", and 8
/// streams (`-P 8`, or `--bidir -P 4`).
const IPERF3_SOCKETS: usize = 10;

/// The jumbo pool, for a TAP with an MTU up to 65535: 4 MiB bulk buffers each
/// way (window scaling), two sockets per bulk service (about 50 MB in all).
pub const JUMBO_POOL: Sizes = Sizes {
    bulk_slots: 2,
    bulk_rx: 4 * 1024 * 1024,
    bulk_tx: 4 * 1024 * 1024,
    ..DEFAULT_POOL
};

/// The large pool: 1024 lab clients at once, 64 more waiting (about 11 MB in all).
pub const LARGE_POOL: Sizes = Sizes {
    lab_slots: 1024,
    lab_backlog: 64,
    lab_rx: 1024,
    lab_tx: 2048,
    lab_closing: 256,
    ..DEFAULT_POOL
};

/// What a lab client meets when every slot is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backlog {
    /// Wait in the backlog, in arrival order, until a slot frees.
    Wait,
    /// Refused (RST).
    Refuse,
    /// Accepted, told `ERR busy`, closed.
    Busy,
}

/// Which pool the device runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Pool {
    /// 64 lab slots, 256 KiB bulk buffers.
    Default,
    /// 4 MiB bulk buffers for a TAP MTU up to 65535.
    Jumbo,
    /// 1024 lab slots.
    Large,
}

impl Pool {
    fn sizes(self) -> Sizes {
        match self {
            Pool::Default => DEFAULT_POOL,
            Pool::Jumbo => JUMBO_POOL,
            Pool::Large => LARGE_POOL,
        }
    }
}

/// Checksum and segmentation offloads on the TAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Offload {
    /// Frames up to 64 KB each way with partial checksums, where the kernel
    /// accepts it (the bad link and the rate limit turn it off).
    On,
    /// One MTU-sized frame per system call, every checksum in software.
    Off,
}

/// What `INFO` shows as `offload` when the TAP offloads.
const OFFLOAD_ON: &str = "on";

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
    /// Socket pool: default (64 lab slots), jumbo (big buffers for a TAP MTU
    /// up to 65535), large (1024 lab slots).
    #[arg(long, value_enum, default_value_t = Pool::Default)]
    pool: Pool,
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
    /// Percentage of frames to drop, each way (0-100, fractions allowed).
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    drop_chance: f32,
    /// Percentage of frames to corrupt (one bit flipped past the Ethernet header).
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    corrupt_chance: f32,
    /// Percentage of frames to deliver twice.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    duplicate_chance: f32,
    /// Percentage of frames to hold back 2 ms so that later frames overtake them.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    reorder_chance: f32,
    /// Percentage of frames to delay by --delay-ms.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    delay_chance: f32,
    /// How long a delayed frame is held, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Most frames per second, each way (0: unlimited).
    #[arg(long, default_value_t = 0, value_name = "PKTS_PER_SEC")]
    rate_limit: u64,
    /// Seed of the bad link's dice: the same seed replays the same faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// When every lab slot is busy: wait (queue in the backlog), refuse (RST),
    /// or busy (accept, `ERR busy`, close).
    #[arg(long, value_enum, default_value_t = Backlog::Wait)]
    backlog: Backlog,
    /// Idle lab clients get `BYE idle` after this many milliseconds.
    #[arg(long, default_value_t = config::IDLE_TIMEOUT_MS)]
    idle_timeout_ms: u64,
    /// A client that leaves its output unread this long (while more waits) is
    /// disconnected, in milliseconds.
    #[arg(long, default_value_t = config::SLOW_READER_TIMEOUT_MS)]
    slow_reader_timeout_ms: u64,
    /// A handshake unfinished this long frees its socket, in milliseconds.
    #[arg(long, default_value_t = config::HANDSHAKE_TIMEOUT_MS)]
    handshake_timeout_ms: u64,
    /// Keep-alive probe interval on every connection, in milliseconds.
    #[arg(long, default_value_t = config::KEEP_ALIVE_MS)]
    keep_alive_ms: u64,
    /// A peer that acknowledges nothing this long is dropped, in milliseconds.
    #[arg(long, default_value_t = config::DEAD_PEER_MS)]
    dead_peer_ms: u64,
    /// Checksum and TCP segmentation offloads on the TAP: on (64 KB per
    /// system call where the kernel accepts it) or off (one frame per call).
    #[arg(long, value_enum, default_value_t = Offload::On)]
    offload: Offload,
    /// An HTTP request head unfinished this long gets 408, in milliseconds.
    #[arg(long, default_value_t = config::HTTP_REQUEST_TIMEOUT_MS)]
    http_request_timeout_ms: u64,
    /// An idle HTTP keep-alive connection is closed after this long, in milliseconds.
    #[arg(long, default_value_t = config::HTTP_IDLE_TIMEOUT_MS)]
    http_idle_timeout_ms: u64,
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

fn parse_percent(text: &str) -> Result<f32, String> {
    match text.trim_end_matches('%').parse::<f32>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a percentage between 0 and 100")),
    }
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a log level: off, error, warn, info, debug, trace"))
}

fn parse_mac(text: &str) -> Result<EthernetAddress, String> {
    let mac: EthernetAddress = text.parse().map_err(|()| {
        format!("`{text}` is not a MAC: six hex bytes joined by `:` or `-`, e.g. 02:00:00:00:00:01")
    })?;
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

/// Frames the bad link can hold back per direction.
const BAD_LINK_HELD: usize = 16;
/// Longest sleep while the bad link may hold frames: it releases them only
/// when polled. (A clean device sleeps until a frame or a timer.)
const BAD_LINK_TICK: Duration = Duration::from_millis(1);

impl Args {
    fn faults(&self) -> Faults {
        Faults {
            drop_ppm: Faults::ppm(self.drop_chance),
            corrupt_ppm: Faults::ppm(self.corrupt_chance),
            duplicate_ppm: Faults::ppm(self.duplicate_chance),
            reorder_ppm: Faults::ppm(self.reorder_chance),
            delay_ppm: Faults::ppm(self.delay_chance),
            delay: Duration::from_millis(self.delay_ms),
        }
    }
}

impl Args {
    /// Whether to ask the kernel for offloads, and if not, the word `INFO`
    /// shows for why. The bad link and the rate limit act on single frames,
    /// and a 64 KB super-frame is 44 of them.
    fn offload_request(&self) -> Result<(), &'static str> {
        if self.offload == Offload::Off {
            return Err("off");
        }
        if !self.faults().is_clean() {
            log::info!("offload off: the bad link drops, corrupts and delays single frames");
            return Err("off-bad-link");
        }
        if self.rate_limit != 0 {
            log::info!("offload off: the rate limit counts single frames");
            return Err("off-rate-limit");
        }
        Ok(())
    }
}

fn run(args: Args) -> Result<()> {
    let request = args.offload_request();
    let mut tap = Tap::open(&args.tap, request.is_ok()).with_context(|| {
        format!(
            "cannot attach to TAP `{}`: create it first (`socklab tap up --name {0}` or \
             `ip tuntap add {0} mode tap user $USER && ip link set {0} up`)",
            args.tap
        )
    })?;
    let offload = match request {
        Ok(()) if tap.offload() => OFFLOAD_ON,
        Ok(()) => "off-kernel",
        Err(word) => word,
    };
    log::info!("offload {offload}");
    tap.complete_tcp_checksums(args.pcap.is_some());
    let fd = tap.as_raw_fd();
    let pcap = match &args.pcap {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            PCAP_RECORD_BUFFER,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create pcap file {}", path.display()))?,
        )),
        None => None,
    };
    // TAP -> rate limit -> bad link -> pcap -> application; each layer only
    // when asked for, so a plain run has no middleware in its path.
    let serve = Serve {
        args: &args,
        fd,
        offload,
        clock: Clock::start(),
    };
    RateLayer(BadLinkLayer(PcapLayer(pcap, serve))).run(tap)
}

/// One optional layer of the device stack: wraps the device it is given (or
/// not) and hands it on.
trait Layer {
    fn run<D: Device>(self, device: D) -> Result<()>;
}

struct RateLayer<N>(N);
struct BadLinkLayer<N>(N);
struct PcapLayer<N>(Option<std::io::BufWriter<std::fs::File>>, N);

/// The capture's write buffer: bigger than any record (a 16-byte record
/// header and a frame of at most 65,535 + 18 bytes), so that the writer, which
/// flushes after every record, hands each record to the kernel in one write.
/// A device stopped by a signal then leaves whole records only, never a
/// capture cut short in the middle of a frame.
const PCAP_RECORD_BUFFER: usize = 128 * 1024;
struct Serve<'a> {
    args: &'a Args,
    fd: i32,
    offload: &'static str,
    clock: Clock,
}

impl<N: Layer + HasArgs> Layer for RateLayer<N> {
    fn run<D: Device>(self, device: D) -> Result<()> {
        let rate = self.0.args().rate_limit;
        if rate == 0 {
            return self.0.run(device);
        }
        let mut limited = FaultInjector::new(device, 0);
        let per_bucket = (rate * RATE_BUCKET.total_millis() / 1000).max(1);
        limited.set_bucket_interval(RATE_BUCKET);
        limited.set_max_tx_rate(per_bucket);
        limited.set_max_rx_rate(per_bucket);
        self.0.run(limited)
    }
}

impl<N: Layer + HasArgs> Layer for BadLinkLayer<N> {
    fn run<D: Device>(self, device: D) -> Result<()> {
        let args = self.0.args();
        let faults = args.faults();
        if faults.is_clean() {
            return self.0.run(device);
        }
        let frame = device.capabilities().max_transmission_unit;
        let storage = leak(badlink::storage_bytes(BAD_LINK_HELD, frame), || 0u8);
        let link = BadLink::new(device, faults, args.seed, BAD_LINK_HELD, frame, storage)
            .map_err(|e| anyhow::anyhow!("bad link: {e:?}"))?;
        log::info!("bad link: {faults:?}, seed {}", args.seed);
        self.0.run(link)
    }
}

impl Layer for PcapLayer<Serve<'_>> {
    fn run<D: Device>(self, device: D) -> Result<()> {
        match self.0 {
            // The capture shows the frames as the application sees them,
            // stamped with the time of day, checksums complete.
            Some(file) => {
                let view = CaptureView {
                    inner: PcapWriter::new(device, file, PcapMode::Both),
                    clock: self.1.clock,
                    complete_checksums: self.1.offload == OFFLOAD_ON,
                };
                self.1.run(view)
            }
            None => self.1.run(device),
        }
    }
}

impl Layer for Serve<'_> {
    fn run<D: Device>(self, device: D) -> Result<()> {
        serve(self, device)
    }
}

/// Layers that can see the options.
trait HasArgs {
    fn args(&self) -> &Args;
}

impl HasArgs for Serve<'_> {
    fn args(&self) -> &Args {
        self.args
    }
}

impl<N: HasArgs> HasArgs for PcapLayer<N> {
    fn args(&self) -> &Args {
        self.1.args()
    }
}

impl<N: HasArgs> HasArgs for BadLinkLayer<N> {
    fn args(&self) -> &Args {
        self.0.args()
    }
}

/// Leaks `len` copies of `value`: the pool's storage lives as long as the process.
fn leak<T>(len: usize, value: impl Fn() -> T) -> &'static mut [T] {
    (0..len).map(|_| value()).collect::<Vec<_>>().leak()
}

fn serve<D: Device>(serve: Serve<'_>, mut device: D) -> Result<()> {
    let Serve {
        args,
        fd,
        offload,
        clock,
    } = serve;
    let now = || clock.now();
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
        backlog: match args.backlog {
            Backlog::Wait => BacklogPolicy::Wait,
            Backlog::Refuse => BacklogPolicy::Refuse,
            Backlog::Busy => BacklogPolicy::Busy,
        },
        timeouts: socklab_app::Timeouts {
            idle_ms: args.idle_timeout_ms,
            slow_reader_ms: args.slow_reader_timeout_ms,
            handshake_ms: args.handshake_timeout_ms,
            keep_alive_ms: args.keep_alive_ms,
            dead_peer_ms: args.dead_peer_ms,
            http_request_ms: args.http_request_timeout_ms,
            http_idle_ms: args.http_idle_timeout_ms,
            ..Default::default()
        },
        offload,
    };
    let sizes = args.pool.sizes();
    log::info!(
        "pool {:?}: {} lab slots, {} per bulk service; memory {} bytes ({} in socket buffers)",
        args.pool,
        sizes.lab_slots,
        sizes.bulk_slots,
        sizes.total_bytes(),
        sizes.buffer_bytes()
    );
    let storage = Storage {
        sockets: leak(sizes.sockets(), || SocketStorage::EMPTY),
        lab: leak(sizes.lab_sockets(), || LabSlot::EMPTY),
        closing: leak(sizes.closing_sockets(), || ClosingSocket::EMPTY),
        buffers: leak(sizes.buffer_bytes(), || 0u8),
        udp: leak(sizes.udp_packets(), || UdpPacketMetadata::EMPTY),
    };
    let mut app = match App::new(config, sizes, storage, &mut device, now()) {
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
    let tick = (!args.faults().is_clean()).then_some(BAD_LINK_TICK);
    loop {
        let delay = app.poll(now(), &mut device);
        let delay = match (delay, tick) {
            (Some(d), Some(t)) => Some(d.min(t)),
            (d, t) => d.or(t),
        };
        phy::wait(fd, delay).context("waiting on the TAP")?;
    }
}
