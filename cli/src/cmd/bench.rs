//! `socklab bench [ADDR] [WORKLOAD]...`: throughput, latency, connection rate
//! and concurrency of a device, optionally next to Linux's own TCP stack
//! (`--baseline kernel`); a table, `--json`, `--plot FILE.svg`.
//!
//! The work is done by `socklab_host::bench`; this module reads the command
//! line, starts what was asked for (a device with `--board`, the kernel
//! baseline) and prints. `socklab kernel-server` (hidden) is the baseline's
//! server process.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use socklab_host::bench::kernel::{self, KernelBaseline, KernelOptions};
use socklab_host::bench::report::{compare, markdown_from_json, Report};
use socklab_host::bench::{self, pin, Limit, Options, Target, Verify, Workload};
use socklab_host::board::{BoardArg, BoardKind, NetArg, StartOptions};
use socklab_host::launch::{DeviceLog, Image, Machine, NetnsChoice, RunningBoard};

use super::Global;
use crate::progress::Bars;

/// Baselines `--baseline` can measure in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// Linux's TCP stack: a std server in a namespace, across a veth pair.
    Kernel,
}

/// Arguments of `socklab bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sudo socklab bench --board tap --baseline kernel all
  socklab --netns NS bench 192.168.69.1 latency --device-pid 1234 --pin 1
  sudo socklab bench --board tap throughput --bytes 1G --json > tap.json
  sudo socklab bench --board tap --plot bench.svg -- --pool jumbo
  socklab bench --markdown-from tap.json >> README.md
  sudo socklab bench --board tap --compare docs/bench/reference-tap.json")]
pub struct Args {
    /// The device's address (HOST or HOST:PORT; the port is ignored: the bench uses
    /// 6666, 7, 9 and 19), then the workloads: throughput, latency, connect,
    /// concurrency or all (the default). Without ADDR, give --board.
    #[arg(value_name = "[ADDR] [WORKLOAD]")]
    pub words: Vec<String>,

    /// Start this device and measure it instead of one at ADDR: tap (needs root) or qemu
    /// (on a TAP in a private network namespace, needs root; `--net user`: QEMU's user
    /// networking, no root, slower and not comparable with a TAP).
    #[arg(long, value_enum)]
    pub board: Option<BoardArg>,

    /// --board qemu: the network of the board's NIC (default: tap).
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,

    /// --board qemu: the QEMU machine.
    #[arg(long, value_enum, default_value_t = Machine::default())]
    pub machine: Machine,

    /// Measure this baseline too, in the same run, and show device/baseline ratios.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,

    /// Repetitions of every workload on every target; the table shows medians.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// Seconds per throughput stream, connection-rate run and concurrency run.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub duration: f64,

    /// Throughput streams move this many bytes instead of running --duration
    /// (suffixes K, M, G = KiB, MiB, GiB; KB, MB, GB = powers of 1000).
    #[arg(long, value_name = "N", value_parser = parse_bytes)]
    pub bytes: Option<u64>,

    /// Timed 64-byte round trips per latency run (after 1000 untimed ones).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub count: u64,

    /// Parallel clients of the connection-rate workload [default: 8, or the device's lab
    /// slots if fewer].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub clients: Option<u64>,

    /// Lab clients held at once by the concurrency workload [default: 32, or the device's
    /// lab slots if fewer].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_535))]
    pub concurrency: Option<u64>,

    /// CPU for both ends of the latency ping-pong (the bench thread and each target's
    /// process): a CPU number, `none`, or `auto` (the last CPU, when every target's
    /// process is known: --board, --baseline, --device-pid).
    #[arg(long, value_name = "CPU|auto|none", default_value = "auto", value_parser = parse_pin)]
    pub pin: Pin,

    /// The process ID of the device at ADDR, so that --pin can pin it too.
    #[arg(long, value_name = "PID")]
    pub device_pid: Option<u32>,

    /// MTU of the kernel baseline's veth pair (default: the device's MTU from INFO, or 1500).
    #[arg(long, value_name = "MTU", value_parser = clap::value_parser!(u32).range(68..=65535))]
    pub kernel_mtu: Option<u32>,

    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Print the Markdown table (for the README) of a run saved with --json, and
    /// measure nothing.
    #[arg(long, value_name = "FILE.json", conflicts_with_all = ["board", "baseline", "json", "plot"])]
    pub markdown_from: Option<PathBuf>,

    /// Run the workloads of this `--json` run (unless others are given) against the
    /// kernel and print each figure's device/kernel ratio now against the file's,
    /// flagging a drop of more than 25 %; the exit status is 1 if any is flagged.
    #[arg(long, value_name = "FILE.json", conflicts_with_all = ["markdown_from", "json"])]
    pub compare: Option<PathBuf>,

    /// Write a chart (throughput over time, latency CDF) to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// No progress bars on stderr.
    #[arg(long)]
    pub no_progress: bool,

    /// How much of the chargen and echo streams to check against RFC 864's pattern:
    /// `sample` (the first 4 KiB of every read; a lost or extra byte shifts everything
    /// after it, so it shows), `all` (every byte; costs CPU the 2-vCPU machine then
    /// lacks), `none`.
    #[arg(long, value_enum, default_value = "sample")]
    pub verify: Verify,

    /// Log level of a device started with --board (a chatty device is a slower one).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub device_log_level: String,

    /// --board tap: the TAP's MTU, up to 65521 (with `-- --pool jumbo`); the
    /// kernel baseline's veth gets the device's MTU too.
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=65521))]
    pub mtu: Option<u32>,

    /// Options for the device started with --board, after `--` (e.g. jumbo or pool flags).
    #[arg(last = true, value_name = "DEVICE OPTIONS")]
    pub device_args: Vec<OsString>,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// `--pin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The last CPU, if every target's process is known.
    Auto,
    /// Not pinned.
    None,
    /// This CPU.
    Cpu(usize),
}

fn parse_pin(s: &str) -> Result<Pin, String> {
    match s {
        "auto" => Ok(Pin::Auto),
        "none" | "off" | "no" => Ok(Pin::None),
        _ => s
            .parse()
            .map(Pin::Cpu)
            .map_err(|_| format!("`{s}` is not a CPU number, `auto` or `none`")),
    }
}

/// Parses `--bytes`: a number with an optional unit.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write e.g. 500M, 1G or 1000000"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}`: use K, M, G, KB, MB or GB"
            ))
        }
    };
    let bytes = number * scale;
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("`{s}`: give between 1 byte and 1 PB"));
    }
    Ok(bytes as u64)
}

/// `[ADDR] [WORKLOAD]...` split into the address and the workloads.
fn split_words(words: &[String]) -> anyhow::Result<(Option<SocketAddr>, Vec<Workload>)> {
    let mut addr = None;
    let mut workloads = Vec::new();
    for word in words {
        if word.eq_ignore_ascii_case("all") {
            workloads.extend(Workload::ALL);
        } else if let Some(w) = Workload::parse(word) {
            workloads.push(w);
        } else if addr.is_some() {
            bail!(
                "`{word}` is neither a workload (throughput, latency, connect, concurrency, all) \
                 nor the only address (one is given already)"
            );
        } else {
            let parsed = super::parse_addr(word).with_context(|| {
                format!(
                    "`{word}` is neither a workload (throughput, latency, connect, concurrency, \
                     all) nor a device address"
                )
            })?;
            addr = Some(parsed);
        }
    }
    if workloads.is_empty() {
        workloads.extend(Workload::ALL);
    }
    workloads.sort();
    workloads.dedup();
    Ok((addr, workloads))
}

/// Runs `socklab bench`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let board = args
        .board
        .map(|board| BoardKind::choose(board, args.net, args.machine, NetArg::Tap))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if args.board.is_none() && args.net.is_some() {
        bail!("--net goes with --board qemu");
    }
    if args.mtu.is_some() && board != Some(BoardKind::Tap) {
        bail!(
            "--mtu sets the TAP of --board tap; for a running device, set its TAP's MTU yourself"
        );
    }
    if let Some(path) = &args.markdown_from {
        if !args.words.is_empty() {
            bail!("--markdown-from measures nothing: give no address or workload with it");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        print!(
            "{}",
            markdown_from_json(&json)
                .map_err(anyhow::Error::msg)
                .with_context(|| path.display().to_string())?
        );
        return super::ok();
    }
    let (addr, mut workloads) = split_words(&args.words)?;
    let reference = match &args.compare {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let named = |w: &String| w.eq_ignore_ascii_case("all") || Workload::parse(w).is_some();
            if !args.words.iter().any(named) {
                workloads = compare::reference_workloads(&json)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| path.display().to_string())?;
            }
            Some(json)
        }
        None => None,
    };
    match (addr, args.board) {
        (Some(_), Some(_)) => bail!("give either a device address or --board, not both"),
        (None, None) => bail!(
            "what to measure? give a device address (`socklab bench 192.168.69.1`) or start one \
             with --board tap"
        ),
        _ => {}
    }
    if args.board.is_none() && !args.device_args.is_empty() {
        bail!("device options after `--` need --board (they go to the device it starts)");
    }
    if args.board.is_some() && args.device_pid.is_some() {
        bail!("--device-pid is for a device at ADDR; with --board the bench knows its process");
    }
    if !(0.1..=600.0).contains(&args.duration) {
        bail!("--duration {} is outside 0.1..=600 seconds", args.duration);
    }
    if let Pin::Cpu(cpu) = args.pin {
        pin::check_cpu(cpu).map_err(anyhow::Error::msg)?;
    }
    let timeout = global.timeout();

    // Ctrl-C: stop what we started and delete the namespaces before exiting.
    ctrlc::set_handler(|| {
        eprintln!("\nsocklab: interrupted; removing the devices and namespaces the bench made");
        socklab_host::cleanup::emergency_cleanup();
        std::process::exit(130);
    })?;

    let device: Option<Box<dyn RunningBoard>> = match board {
        Some(board) => {
            if !args.no_progress {
                eprintln!("socklab: starting {board} ...");
            }
            let netns = match &global.netns {
                Some(ns) => NetnsChoice::Named(ns.clone()),
                None => NetnsChoice::Private,
            };
            Some(board.start(StartOptions {
                device_args: args.device_args.clone(),
                netns,
                log: DeviceLog::Capture,
                log_level: args.device_log_level.clone(),
                ready_timeout: timeout.max(Duration::from_secs(10)),
                mtu: args.mtu,
                image: Image::Built,
                pcap: None,
            })?)
        }
        None => None,
    };
    let device_target = match (&device, addr) {
        (Some(device), _) => Target::from_device(device.as_ref(), timeout)?,
        (None, Some(addr)) => {
            Target::device(global.host_net(), addr.ip(), args.device_pid, timeout)?
        }
        (None, None) => unreachable!("checked above"),
    };
    let baseline = match args
        .baseline
        .or(reference.as_ref().map(|_| Baseline::Kernel))
    {
        Some(Baseline::Kernel) => {
            let mtu = args.kernel_mtu.or(device_target.mtu).unwrap_or(1500);
            if !args.no_progress {
                eprintln!("socklab: starting the kernel baseline (veth MTU {mtu}) ...");
            }
            Some(KernelBaseline::start(&KernelOptions {
                mtu,
                program: None,
            })?)
        }
        None => None,
    };
    let mut targets = vec![device_target];
    targets.extend(baseline.as_ref().map(KernelBaseline::target));

    let pin = match args.pin {
        Pin::Cpu(cpu) => Some(cpu),
        Pin::None => None,
        Pin::Auto if targets.iter().all(|t| t.pid.is_some()) => {
            pin::allowed_cpus().ok().and_then(|c| c.last().copied())
        }
        Pin::Auto => {
            if workloads.contains(&Workload::Latency) {
                eprintln!(
                    "socklab: note: latency is not pinned (the device's process is unknown; \
                     give --device-pid PID, or --pin CPU to pin the bench side only)"
                );
            }
            None
        }
    };
    // Defaults shrink to the smallest lab pool; numbers given are checked.
    let defaults = Options::default();
    let slots = targets.iter().filter_map(|t| t.lab_slots).min();
    let fit = |n: usize| slots.map_or(n, |slots| n.min(slots));
    let opts = Options {
        workloads,
        runs: args.runs as usize,
        limit: match args.bytes {
            Some(n) => Limit::Bytes(n),
            None => Limit::Duration(Duration::from_secs_f64(args.duration)),
        },
        duration: Duration::from_secs_f64(args.duration),
        count: args.count as usize,
        clients: args.clients.map_or(fit(defaults.clients), |n| n as usize),
        concurrency: args
            .concurrency
            .map_or(fit(defaults.concurrency), |n| n as usize),
        pin,
        timeout,
        verify: args.verify,
        ..Options::default()
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let progress = Bars::new(!args.no_progress, bench::steps(&opts, targets.len()));
    let results = bench::run(&targets, &opts, &progress);
    progress.finish();
    let results = results?;
    // The command as a person would type it again: `socklab ...`, not the path.
    let mut argv: Vec<String> = std::env::args().collect();
    if let Some(name) = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
    {
        argv[0] = name.to_string_lossy().into_owned();
    }
    let command = argv.join(" ");
    let report = Report::new(command, started, opts, targets, results);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.header());
        println!();
        print!("{}", report.table());
        for line in report.first_errors() {
            println!("{line}");
        }
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, bench::svg::chart(&report))
            .with_context(|| format!("cannot write the chart to {}", path.display()))?;
        eprintln!("socklab: chart written to {}", path.display());
    }
    let flagged = match &reference {
        Some(reference) => {
            let comparison = compare::compare(reference, &serde_json::to_value(&report)?)
                .map_err(anyhow::Error::msg)?;
            println!();
            print!("{}", comparison.table());
            comparison.flagged().count()
        }
        None => 0,
    };
    // The baseline first (its namespaces), then the device.
    drop(baseline);
    drop(device);
    if flagged > 0 {
        return Ok(ExitCode::FAILURE);
    }
    super::ok()
}

/// Arguments of the hidden `socklab kernel-server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: Ipv4Addr,
}

/// Runs the kernel baseline's server until its stdin closes.
pub fn serve(args: ServerArgs) -> anyhow::Result<ExitCode> {
    kernel::serve(args.bind).context("kernel-server")?;
    super::ok()
}

#[cfg(test)]
mod test {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn words_split_into_address_and_workloads() {
        let (addr, w) = split_words(&words(&["192.168.69.1", "latency", "throughput"])).unwrap();
        assert_eq!(addr.unwrap().to_string(), "192.168.69.1:6666");
        assert_eq!(w, vec![Workload::Throughput, Workload::Latency]);
        let (addr, w) = split_words(&words(&["all"])).unwrap();
        assert!(addr.is_none());
        assert_eq!(w, Workload::ALL.to_vec());
        let (_, w) = split_words(&[]).unwrap();
        assert_eq!(w, Workload::ALL.to_vec());
        let e = split_words(&words(&["1.2.3.4", "5.6.7.8"])).unwrap_err();
        assert!(e.to_string().contains("one is given already"), "{e}");
        let e = split_words(&words(&["[fdaa::1"])).unwrap_err();
        assert!(format!("{e:#}").contains("neither a workload"), "{e:#}");
    }

    #[test]
    fn sizes_and_pins_parse() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("1.5M"), Ok(1_572_864));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1GB"), Ok(1_000_000_000));
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_bytes("0").is_err());
        assert_eq!(parse_pin("auto"), Ok(Pin::Auto));
        assert_eq!(parse_pin("none"), Ok(Pin::None));
        assert_eq!(parse_pin("1"), Ok(Pin::Cpu(1)));
        assert!(parse_pin("-1").is_err());
    }
}
