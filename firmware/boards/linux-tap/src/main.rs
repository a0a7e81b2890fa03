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
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches};
use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use socklab_app::badlink::{self, BadLink, Faults, MAX_DELAY_MS};
use socklab_app::config::{TimeoutOption, TIMEOUT_OPTIONS};

use socklab_app::protocol::Mac;
use socklab_app::Optional;

use crate::capture::CaptureView;
use crate::clock::Clock;
use crate::tap::Tap;
use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::smoltcp::phy::{Device, FaultInjector, PcapMode, PcapWriter};
use socklab_app::smoltcp::time::Duration;
use socklab_app::smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};
use socklab_app::{
    config, App, BacklogPolicy, BoardStatus, BulkSizes, ClosingSizes, ClosingSocket, Config,
    Iperf2Sizes, Iperf3Sizes, LabSizes, LabSlot, NetConfig, Nets, Sizes, Storage,
    UdpPacketMetadata, MAX_NETS,
};

/// The default pool: 64 lab clients at once and 16 more waiting, 32
/// lab-sized sockets that finish closes, and bulk sockets with buffers big
/// enough for window scaling at MTU 1500 (about 15.4 MB in all).
///
/// A closed connection holds its closing socket in TIME-WAIT; when every one
/// is busy, the oldest whose last ACK has left is recycled, so the pool
/// bounds for how long a retransmitted FIN still gets its ACK, not the
/// connection rate. More closing sockets would cost every poll: smoltcp
/// walks every socket on every poll (256 of them put the pinned 64-byte
/// echo at 21-26 µs instead of 15).
pub const DEFAULT_POOL: Sizes = Sizes {
    lab: LabSizes {
        slots: 64,
        backlog: 16,
        rx: 1024,
        tx: 4096,
    },
    bulk: BulkSizes {
        slots: 4,
        rx: 256 * 1024,
        tx: 256 * 1024,
    },
    iperf3: Iperf3Sizes {
        sockets: IPERF3_SOCKETS,
        rx: 256 * 1024,
        tx: 256 * 1024,
    },
    iperf2: Iperf2Sizes {
        sockets: 4,
        rx: 256 * 1024,
    },
    closing: ClosingSizes { lab: 32, bulk: 4 },
};

/// iperf3 sockets: a control connection, one spare to answer "busy", and 8
/// streams (`-P 8`, or `--bidir -P 4`).
const IPERF3_SOCKETS: usize = 10;

/// The jumbo pool, for a TAP with an MTU up to 65535: 4 MiB bulk buffers each
/// way (window scaling), two sockets per bulk service (about 50 MB in all).
pub const JUMBO_POOL: Sizes = Sizes {
    bulk: BulkSizes {
        slots: 2,
        rx: 4 * 1024 * 1024,
        tx: 4 * 1024 * 1024,
    },
    ..DEFAULT_POOL
};

/// The large pool: 1024 lab clients at once, 64 more waiting (about 11 MB in
/// all), and the default pool's closing sockets: a closing socket is
/// recycled once its last ACK has left, so more of them would not raise the
/// connection rate, and every socket costs each poll's walk.
pub const LARGE_POOL: Sizes = Sizes {
    lab: LabSizes {
        slots: 1024,
        backlog: 64,
        rx: 1024,
        tx: 2048,
    },
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
enum PoolPreset {
    /// 64 lab slots, 256 KiB bulk buffers.
    Default,
    /// 4 MiB bulk buffers for a TAP MTU up to 65535.
    Jumbo,
    /// 1024 lab slots.
    Large,
}

impl PoolPreset {
    fn sizes(self) -> Sizes {
        match self {
            PoolPreset::Default => DEFAULT_POOL,
            PoolPreset::Jumbo => JUMBO_POOL,
            PoolPreset::Large => LARGE_POOL,
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

/// Frames the TAP's queue towards the device holds per lab socket (at least
/// the kernel's default of 1000 in all): every client may have a request
/// and its ACKs waiting, and a burst of clients beyond the sockets a SYN
/// each (4096 clients of the large pool's 1088 lab sockets).
const TAP_QUEUE_PER_LAB_SOCKET: usize = 8;

/// What `INFO` shows as `offload` when the TAP offloads.
const OFFLOAD_ON: &str = "on";

/// Interval over which `--rate-limit` counts packets.
const RATE_BUCKET: Duration = Duration::from_millis(100);

/// socklab's TCP server on a Linux TAP interface.
///
/// Attach to an existing TAP (`socklab tap up`, or
/// `ip tuntap add tap0 mode tap user $USER`); the device then answers on
/// 192.168.69.1 / fdaa::1: lab 6666, echo 7, discard 9, chargen 19, ping.
/// SIGTERM, SIGINT or SIGHUP resets every connection, then the device exits 0.
#[derive(clap::Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Socket pool: default (64 lab slots), jumbo (big buffers for a TAP MTU
    /// up to 65535), large (1024 lab slots).
    #[arg(long, value_enum, default_value_t = PoolPreset::Default)]
    pool: PoolPreset,
    /// TAP interface to attach to [default: tap0]. Give it again for a second network
    /// interface (at most 2); the --ip, --ip6, --mac, --gateway and --gateway6 that
    /// follow a --tap are that interface's.
    #[arg(long, action = clap::ArgAction::Append)]
    tap: Vec<String>,
    /// Device IPv4 address with prefix: a unicast host address of its subnet (not
    /// 0.0.0.0, 127.0.0.0/8, multicast, the subnet's network or broadcast address),
    /// prefix /1 to /32 [default: 192.168.69.1/24, 192.168.70.1/24 for the second].
    #[arg(long, value_parser = parse_ipv4, action = clap::ArgAction::Append)]
    ip: Vec<Ipv4Cidr>,
    /// Device IPv6 address with prefix: unicast (not ::, ::1, multicast, the
    /// subnet's all-zero address), prefix /1 to /128 [default: fdaa::1/64, fdab::1/64
    /// for the second].
    #[arg(long, value_parser = parse_ipv6, action = clap::ArgAction::Append)]
    ip6: Vec<Ipv6Cidr>,
    /// IPv4 default gateway: a unicast address in the interface's subnet.
    #[arg(long, action = clap::ArgAction::Append)]
    gateway: Vec<std::net::Ipv4Addr>,
    /// IPv6 default gateway: a unicast address.
    #[arg(long, action = clap::ArgAction::Append)]
    gateway6: Vec<std::net::Ipv6Addr>,
    /// Device Ethernet address, unicast and not all zero [default: 02:00:00:00:00:01,
    /// 02:00:00:00:00:02 for the second].
    #[arg(long, value_parser = parse_mac, action = clap::ArgAction::Append)]
    mac: Vec<EthernetAddress>,
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
    /// How long a delayed frame is held, in milliseconds (0 to 60000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(..=MAX_DELAY_MS))]
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
    #[arg(long, default_value_t = config::IDLE_TIMEOUT_MS, value_parser = timeout(&config::IDLE_TIMEOUT))]
    idle_timeout_ms: u64,
    /// A client that leaves its output unread this long (while more waits) is
    /// disconnected, in milliseconds.
    #[arg(long, default_value_t = config::SLOW_READER_TIMEOUT_MS, value_parser = timeout(&config::SLOW_READER_TIMEOUT))]
    slow_reader_timeout_ms: u64,
    /// A handshake unfinished this long frees its socket, in milliseconds.
    #[arg(long, default_value_t = config::HANDSHAKE_TIMEOUT_MS, value_parser = timeout(&config::HANDSHAKE_TIMEOUT))]
    handshake_timeout_ms: u64,
    /// After `BYE` (or the peer's FIN), a close unfinished this long is aborted,
    /// in milliseconds.
    #[arg(long, default_value_t = config::CLOSING_TIMEOUT_MS, value_parser = timeout(&config::CLOSING_TIMEOUT))]
    closing_timeout_ms: u64,
    /// Keep-alive probe interval on every connection, in milliseconds.
    #[arg(long, default_value_t = config::KEEP_ALIVE_MS, value_parser = timeout(&config::KEEP_ALIVE))]
    keep_alive_ms: u64,
    /// A peer that acknowledges nothing this long is dropped, in milliseconds.
    #[arg(long, default_value_t = config::DEAD_PEER_MS, value_parser = timeout(&config::DEAD_PEER))]
    dead_peer_ms: u64,
    /// Checksum and TCP segmentation offloads on the TAP: on (64 KB per
    /// system call where the kernel accepts it) or off (one frame per call).
    #[arg(long, value_enum, default_value_t = Offload::On)]
    offload: Offload,
    /// An HTTP request head unfinished this long gets 408, in milliseconds.
    #[arg(long, default_value_t = config::HTTP_REQUEST_TIMEOUT_MS, value_parser = timeout(&config::HTTP_REQUEST_TIMEOUT))]
    http_request_timeout_ms: u64,
    /// An idle HTTP keep-alive connection is closed after this long, in milliseconds.
    #[arg(long, default_value_t = config::HTTP_IDLE_TIMEOUT_MS, value_parser = timeout(&config::HTTP_IDLE_TIMEOUT))]
    http_idle_timeout_ms: u64,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
    /// The network interfaces the options above describe, grouped by [`interfaces`].
    #[arg(skip)]
    interfaces: Vec<Interface>,
}

/// Parses a device IPv4 address with smoltcp's `FromStr` (whose error says
/// nothing) and checks it with the application's rules.
fn parse_ipv4(text: &str) -> Result<Ipv4Cidr, String> {
    let cidr = text.parse().map_err(|_| {
        format!("`{text}` is not an IPv4 address with a prefix of /1 to /32, e.g. 192.168.69.1/24")
    })?;
    config::check_ipv4(cidr).map_err(|e| e.to_string())?;
    Ok(cidr)
}

/// Parses a device IPv6 address and checks it with the application's rules.
fn parse_ipv6(text: &str) -> Result<Ipv6Cidr, String> {
    let cidr = text.parse().map_err(|_| {
        format!("`{text}` is not an IPv6 address with a prefix of /1 to /128, e.g. fdaa::1/64")
    })?;
    config::check_ipv6(cidr).map_err(|e| e.to_string())?;
    Ok(cidr)
}

/// The parser of one timeout option: the application's range, its message.
fn timeout(option: &'static TimeoutOption) -> impl clap::builder::TypedValueParser<Value = u64> {
    move |text: &str| option.parse(text).map_err(|e| e.to_string())
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
    config::check_mac(mac).map_err(|e| e.to_string())?;
    Ok(mac)
}

/// The command line, with each timeout's range from the application's table in
/// its help.
fn parse_args() -> Args {
    let mut command = Args::command();
    for option in TIMEOUT_OPTIONS {
        command = command.mut_arg(option.name.replace('-', "_"), |arg| {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(format!("{help} ({} to {})", option.min_ms, option.max_ms))
        });
    }
    let matches = command.get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    args.interfaces = interfaces(&args, &matches).unwrap_or_else(|message| {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit()
    });
    args
}

/// One network interface of the device: the TAP it attaches to and its addresses.
#[derive(Debug, Clone)]
struct Interface {
    tap: String,
    net: NetConfig,
}

/// The interfaces the command line asks for: each --tap starts one, and the address
/// options after it (up to the next --tap) are its; options before the first --tap
/// belong to the first interface. No --tap: one interface on `tap0`. An option given
/// twice for one interface, the same TAP twice, more interfaces than [`MAX_NETS`], the
/// same MAC twice or overlapping subnets are refused with what to do.
fn interfaces(args: &Args, matches: &clap::ArgMatches) -> Result<Vec<Interface>, String> {
    let taps: Vec<usize> = matches
        .indices_of("tap")
        .map(Iterator::collect)
        .unwrap_or_default();
    if taps.len() > MAX_NETS {
        return Err(format!(
            "{} --tap options: linux-tap serves at most {MAX_NETS} network interfaces",
            taps.len()
        ));
    }
    let names = if args.tap.is_empty() {
        vec!["tap0".to_string()]
    } else {
        args.tap.clone()
    };
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!(
                "--tap {name} is given twice: each network interface needs its own TAP \
                 (e.g. --tap tap0 --tap tap1)"
            ));
        }
    }
    let mut list: Vec<Interface> = names
        .into_iter()
        .enumerate()
        .map(|(i, tap)| Interface {
            tap,
            net: NetConfig::default_for(i),
        })
        .collect();
    // Which interface an option at command-line position `at` belongs to.
    let owner = |at: usize| taps.iter().filter(|&&t| t < at).count().saturating_sub(1);
    let mut given = vec![[false; 5]; list.len()];
    let mut place = |id: &str, option: usize, set: &mut dyn FnMut(&mut NetConfig, usize)| {
        let positions: Vec<usize> = matches
            .indices_of(id)
            .map(Iterator::collect)
            .unwrap_or_default();
        for (value, at) in positions.into_iter().enumerate() {
            let i = owner(at);
            if std::mem::replace(&mut given[i][option], true) {
                return Err(format!(
                    "--{} is given twice for interface {} ({}): give each --tap its own, \
                     after it",
                    id.replace('_', "-"),
                    i + 1,
                    list[i].tap
                ));
            }
            set(&mut list[i].net, value);
        }
        Ok(())
    };
    place("ip", 0, &mut |n, v| n.ipv4 = args.ip[v])?;
    place("ip6", 1, &mut |n, v| n.ipv6 = args.ip6[v])?;
    place("mac", 2, &mut |n, v| n.mac = args.mac[v])?;
    place("gateway", 3, &mut |n, v| n.gateway4 = Some(args.gateway[v]))?;
    place("gateway6", 4, &mut |n, v| {
        n.gateway6 = Some(args.gateway6[v])
    })?;
    let mut nets = Nets::one(list[0].net);
    for interface in &list[1..] {
        let _ = nets.push(interface.net);
    }
    for net in nets.iter() {
        net.check().map_err(|e| e.to_string())?;
    }
    config::check_nets(&nets).map_err(|e| e.to_string())?;
    Ok(list)
}

fn main() {
    let args = parse_args();
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

impl Args {
    /// The application's configuration from the options; `offload` is the word
    /// `INFO` shows, `seed` the TCP sequence number seed.
    fn config(&self, offload: &'static str, seed: u64) -> Config {
        let mut timeouts = socklab_app::Timeouts::default();
        for (option, ms) in TIMEOUT_OPTIONS.iter().zip([
            self.idle_timeout_ms,
            self.slow_reader_timeout_ms,
            self.handshake_timeout_ms,
            self.closing_timeout_ms,
            self.keep_alive_ms,
            self.dead_peer_ms,
            self.http_request_timeout_ms,
            self.http_idle_timeout_ms,
        ]) {
            option.set(&mut timeouts, ms);
        }
        let mut nets = Nets::one(self.interfaces[0].net);
        for interface in &self.interfaces[1..] {
            let _ = nets.push(interface.net);
        }
        Config {
            board: "linux-tap",
            nets,
            max_nets: MAX_NETS,
            random_seed: seed,
            backlog: match self.backlog {
                Backlog::Wait => BacklogPolicy::Wait,
                Backlog::Refuse => BacklogPolicy::Refuse,
                Backlog::Busy => BacklogPolicy::Busy,
            },
            timeouts,
            offload,
            // A Linux process keeps no boot record, stack watch or watchdog: `none`.
            status: BoardStatus::default(),
        }
    }
}

/// Fails unless the interface `name` exists here: attaching to a missing TAP as
/// root would create a TAP without addresses, and the device would report
/// ready on a link nobody is on.
fn check_tap_exists(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
        bail!("`{name}` is not an interface name (1 to 15 bytes, no `/` or spaces)");
    }
    match nix::net::if_::if_nametoindex(name) {
        Ok(_) => Ok(()),
        Err(Errno::ENODEV) => bail!(
            "TAP `{name}` does not exist in this network namespace: create it first \
             (`socklab tap up --name {name}`, or `ip tuntap add {name} mode tap user $USER && \
             ip link set {name} up`), or let `socklab run tap` make one"
        ),
        Err(error) => Err(error).with_context(|| format!("cannot look up interface `{name}`")),
    }
}

/// The signals that stop the device: blocked, and read from a file descriptor
/// the poll loop waits on next to the TAP, so that a stop is never lost
/// between two waits.
fn stop_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block().context("blocking the stop signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("opening a signalfd for the stop signals")
}

fn run(args: Args) -> Result<()> {
    args.config("none", 0)
        .check()
        .context("the device cannot take these options")?;
    for interface in &args.interfaces {
        check_tap_exists(&interface.tap)?;
    }
    let stop = stop_signals()?;
    let request = args.offload_request();
    let mut taps = Vec::with_capacity(args.interfaces.len());
    for (index, interface) in args.interfaces.iter().enumerate() {
        let mut tap = Tap::open(&interface.tap, request.is_ok()).with_context(|| {
            format!(
                "cannot attach to TAP `{}`: create it first (`socklab tap up --name {0}` or \
                 `ip tuntap add {0} mode tap user $USER && ip link set {0} up`)",
                interface.tap
            )
        })?;
        // The capture (--pcap) records the first interface.
        tap.complete_tcp_checksums(index == 0 && args.pcap.is_some());
        taps.push(tap);
    }
    let offload = match request {
        Ok(()) if taps.iter().all(Tap::offload) => OFFLOAD_ON,
        Ok(()) => "off-kernel",
        Err(word) => word,
    };
    log::info!("offload {offload}");
    let queue = args.pool.sizes().lab.sockets() * TAP_QUEUE_PER_LAB_SOCKET;
    for interface in &args.interfaces {
        match tap::raise_queue(&interface.tap, queue) {
            Ok(len) => log::info!("TAP {} queue {len} frames", interface.tap),
            Err(error) => log::warn!("{error}: a burst beyond it is dropped"),
        }
    }
    let wake = Wake {
        taps: taps
            .iter()
            .map(|tap| tap.as_fd().try_clone_to_owned())
            .collect::<Result<_, _>>()
            .context("duplicating a TAP's descriptor")?,
        stop,
    };
    let mut pcap = match &args.pcap {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            PCAP_RECORD_BUFFER,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create pcap file {}", path.display()))?,
        )),
        None => None,
    };
    let clock = Clock::start();
    let faults = args.faults();
    if args.rate_limit == 0 && faults.is_clean() && pcap.is_none() {
        // A plain run: the TAPs themselves, no wrapper in the path of a frame.
        return serve(&args, wake, offload, clock, taps);
    }
    // TAP -> rate limit -> bad link -> capture -> application: each wrapper only when
    // asked for; an absent one passes frames straight through. Each interface has its
    // own rate limit and bad link (its dice seeded apart); the capture is the first's.
    let mut devices = Vec::with_capacity(taps.len());
    for (index, tap) in taps.into_iter().enumerate() {
        let limited = Optional::wrap_if(args.rate_limit != 0, tap, |tap| {
            rate_limited(tap, args.rate_limit)
        });
        let faulty = if faults.is_clean() {
            Optional::Off(limited)
        } else {
            Optional::On(bad_link(
                limited,
                faults,
                args.seed.wrapping_add(index as u64),
            )?)
        };
        // The capture shows the frames as the application sees them, stamped with the
        // time of day, checksums complete.
        devices.push(match pcap.take() {
            Some(file) => Optional::On(CaptureView {
                inner: PcapWriter::new(faulty, file, PcapMode::Both),
                clock,
                complete_checksums: offload == OFFLOAD_ON,
            }),
            None => Optional::Off(faulty),
        });
    }
    serve(&args, wake, offload, clock, devices)
}

/// The capture's write buffer: bigger than any record (a 16-byte record
/// header and a frame of at most 65,535 + 18 bytes), so that the writer, which
/// flushes after every record, hands each record to the kernel in one write.
/// A device stopped by a signal then leaves whole records only, never a
/// capture cut short in the middle of a frame.
const PCAP_RECORD_BUFFER: usize = 128 * 1024;

/// `device` sending and receiving at most `rate` frames a second each way
/// (`--rate-limit`), counted per [`RATE_BUCKET`].
fn rate_limited<D: Device>(device: D, rate: u64) -> FaultInjector<D> {
    let mut limited = FaultInjector::new(device, 0);
    let per_bucket = (rate * RATE_BUCKET.total_millis() / 1000).max(1);
    limited.set_bucket_interval(RATE_BUCKET);
    limited.set_max_tx_rate(per_bucket);
    limited.set_max_rx_rate(per_bucket);
    limited
}

/// `device` behind the bad link's `faults`, its dice seeded with `seed`.
fn bad_link<D: Device>(device: D, faults: Faults, seed: u64) -> Result<BadLink<'static, D>> {
    let frame = device.capabilities().max_transmission_unit;
    let storage = leak(badlink::storage_bytes(BAD_LINK_HELD, frame), || 0u8);
    let link = BadLink::new(device, faults, seed, BAD_LINK_HELD, frame, storage)
        .map_err(|e| anyhow::anyhow!("bad link: {e:?}"))?;
    log::info!("bad link: {faults:?}, seed {seed}");
    Ok(link)
}

/// Leaks `len` copies of `value`: the pool's storage lives as long as the process.
fn leak<T>(len: usize, value: impl Fn() -> T) -> &'static mut [T] {
    (0..len).map(|_| value()).collect::<Vec<_>>().leak()
}

/// Runs the application on `devices` (one per interface, the first first) until a
/// stop signal: announces readiness on stdout, polls, and sleeps on `wake` between
/// polls.
fn serve<D: Device>(
    args: &Args,
    wake: Wake,
    offload: &'static str,
    clock: Clock,
    mut devices: Vec<D>,
) -> Result<()> {
    let now = || clock.now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32;
    let config = args.config(offload, seed);
    let sizes = args.pool.sizes();
    log::info!(
        "pool {:?}: {} lab slots, {} per bulk service; memory {} bytes ({} in socket buffers)",
        args.pool,
        sizes.lab.slots,
        sizes.bulk.slots,
        sizes.total_bytes(),
        sizes.buffer_bytes()
    );
    let storage = Storage {
        sockets: leak(sizes.sockets(), || SocketStorage::EMPTY),
        lab: leak(sizes.lab_states(), || LabSlot::EMPTY),
        closing: leak(sizes.closing_sockets(), || ClosingSocket::EMPTY),
        buffers: leak(sizes.buffer_bytes(), || 0u8),
        udp: leak(sizes.udp_packets(), || UdpPacketMetadata::EMPTY),
    };
    let mut app = match App::new(config, sizes, storage, &mut devices, now()) {
        Ok(app) => app,
        Err(error) => bail!("the pool's storage does not fit its sizes: {error}"),
    };
    let mut out = std::io::stdout().lock();
    let first = &args.interfaces[0];
    writeln!(
        out,
        "socklab-tap ready tap={} ipv4={} ipv6={} mac={} interfaces={}",
        first.tap,
        first.net.ipv4,
        first.net.ipv6,
        Mac(first.net.mac),
        args.interfaces.len()
    )?;
    out.flush()?;
    drop(out);
    let tick = (!args.faults().is_clean()).then_some(BAD_LINK_TICK);
    loop {
        let delay = app.poll(now(), &mut devices);
        let delay = match (delay, tick) {
            (Some(d), Some(t)) => Some(d.min(t)),
            (d, t) => d.or(t),
        };
        if let Some(signal) = wake.wait(delay)? {
            log::info!("{signal}: resetting every connection before stopping");
            app.reset_all(now(), &mut devices);
            return Ok(());
        }
    }
}

/// What the poll loop sleeps on: each TAP's descriptor (a duplicate) and the stop
/// signals.
struct Wake {
    taps: Vec<OwnedFd>,
    stop: SignalFd,
}

impl Wake {
    /// Sleeps until a frame arrives on a TAP, `delay` passes, or a stop signal
    /// comes (returned).
    fn wait(&self, delay: Option<Duration>) -> Result<Option<Signal>> {
        let mut fds: Vec<PollFd> = std::iter::once(&self.stop)
            .map(|stop| PollFd::new(stop.as_fd(), PollFlags::POLLIN))
            .chain(
                self.taps
                    .iter()
                    .map(|tap| PollFd::new(tap.as_fd(), PollFlags::POLLIN)),
            )
            .collect();
        let timeout = delay.map(|d| TimeSpec::from_duration(d.into()));
        match ppoll(&mut fds, timeout, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error).context("waiting on the TAP"),
        }
        let signalled = fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLIN));
        if !signalled {
            return Ok(None);
        }
        match self.stop.read_signal() {
            Ok(Some(info)) => Ok(Some(
                Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGTERM),
            )),
            Ok(None) | Err(Errno::EAGAIN) => Ok(None),
            Err(error) => Err(error).context("reading the stop signal"),
        }
    }
}
