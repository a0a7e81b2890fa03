//! `socklab bench`: measures a device, and optionally Linux's own TCP stack
//! in the same run, with the same workloads.
//!
//! * [`throughput`]: host→device (discard), device→host (chargen), both ways
//!   (echo), one stream each, over time;
//! * [`latency`]: 64-byte ping-pong on echo, percentiles, optionally pinned
//!   ([`pin`]);
//! * [`connect`]: connection rate with K parallel lab clients;
//! * [`concurrency`]: C lab clients held at once, each `ECHO`ing in a loop;
//! * [`kernel`]: the baseline — namespaces, a veth pair and a std server;
//! * [`stats`]: percentiles, medians, rates; [`report`]: the table and the
//!   JSON; [`svg`]: the chart.
//!
//! A [`Target`] is anything that serves the socklab ports at an address in
//! some network namespace; [`run`] measures every target for every workload,
//! `runs` times, interleaving targets so that a slow moment of the machine
//! hits both alike, and tells an [`Observer`] how far it has got.

pub mod concurrency;
pub mod connect;
pub mod kernel;
pub mod latency;
pub mod machine;
pub mod pin;
pub mod report;
pub mod stats;
pub mod svg;
pub mod throughput;

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use socklab_app::protocol::{info, CHARGEN_PORT, DISCARD_PORT, ECHO_PORT, LAB_PORT};

use crate::client::{ClientError, LabClient};
use crate::launch::{LaunchError, RunningBoard};
use crate::netns::{HostNet, NetnsError};

pub use self::concurrency::ConcurrencyRun;
pub use self::connect::ConnectRun;
pub use self::latency::LatencyRun;
pub use self::throughput::{Direction, ThroughputRun};

/// What went wrong; each message names the target and what to try.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A socket or system call failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done, and to which target.
        what: String,
        /// The kernel's error.
        error: io::Error,
    },
    /// A namespace could not be made or entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A lab client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The device could not be started.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// Setting up a target failed.
    #[error("{0}")]
    Setup(String),
    /// The options do not fit the target.
    #[error("{0}")]
    Invalid(String),
    /// A service sent bytes other than those expected.
    #[error(
        "{target}: {service} sent wrong data at byte {offset}: the stream is corrupted \
         (a bug in the service, or fault injection is on)"
    )]
    Corrupt {
        /// Which target.
        target: String,
        /// The service's address.
        service: SocketAddr,
        /// Offset of the first wrong byte in the stream.
        offset: u64,
    },
    /// A run did not finish within its bound.
    #[error("stuck: {what}")]
    Stuck {
        /// What did not finish.
        what: String,
    },
}

/// The workloads, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Bulk throughput each way.
    Throughput,
    /// Echo round-trip latency.
    Latency,
    /// Connection rate.
    Connect,
    /// Many lab clients at once.
    Concurrency,
}

impl Workload {
    /// All, in the order they run.
    pub const ALL: [Workload; 4] = [
        Workload::Throughput,
        Workload::Latency,
        Workload::Connect,
        Workload::Concurrency,
    ];

    /// The name on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Throughput => "throughput",
            Workload::Latency => "latency",
            Workload::Connect => "connect",
            Workload::Concurrency => "concurrency",
        }
    }

    /// Parses a name (`all` is handled by the caller).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long a throughput stream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// For this long.
    Duration(#[serde(serialize_with = "secs")] Duration),
    /// Until this many bytes have made it.
    Bytes(u64),
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// How much of the streams the host reads is compared with the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Nothing.
    None,
    /// The first 4 KiB of every read: a lost, duplicated or misplaced byte
    /// shifts the rest of the stream, so the next read shows it; costs
    /// almost nothing.
    Sample,
    /// Every byte (a `memcmp` per read: measurably slower on 2 vCPUs at
    /// 10+ Gbit/s).
    All,
}

/// What to measure, and how much.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Workloads, in the order they run.
    pub workloads: Vec<Workload>,
    /// Repetitions of every workload on every target.
    pub runs: usize,
    /// Length of a throughput stream.
    pub limit: Limit,
    /// Length of a connection-rate or concurrency run.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Timed round trips per latency run.
    pub count: usize,
    /// Untimed round trips before them.
    pub warmup: usize,
    /// Parallel clients of the connection-rate workload.
    pub clients: usize,
    /// Clients held at once by the concurrency workload.
    pub concurrency: usize,
    /// CPU for both ends of the latency ping-pong.
    pub pin: Option<usize>,
    /// Wait this long for a connection or an answer.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// How much of the chargen and echo streams to check.
    pub verify: Verify,
    /// Interval between points of a throughput series.
    #[serde(serialize_with = "secs")]
    pub sample: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workloads: Workload::ALL.to_vec(),
            runs: 5,
            limit: Limit::Duration(Duration::from_secs(2)),
            duration: Duration::from_secs(2),
            count: 20_000,
            warmup: 1_000,
            clients: 8,
            concurrency: 32,
            pin: None,
            timeout: Duration::from_secs(5),
            verify: Verify::Sample,
            sample: Duration::from_millis(100),
        }
    }
}

/// The ports the bench uses.
pub const SERVICE_PORTS: [u16; 4] = [LAB_PORT, ECHO_PORT, DISCARD_PORT, CHARGEN_PORT];

/// Something that serves socklab's ports: a device or the kernel baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Short name in tables and JSON: `device`, `kernel`.
    pub name: String,
    /// For people: what it is and where it runs.
    pub description: String,
    /// Its board name (`INFO board`; `linux-kernel` for the baseline).
    pub board: String,
    /// Where the bench opens its sockets.
    #[serde(serialize_with = "net_name")]
    pub net: HostNet,
    /// Its IP address.
    pub ip: IpAddr,
    /// Services reached elsewhere than `ip:port` (QEMU user networking
    /// forwards each port to 127.0.0.1:another): (port, address).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<(u16, SocketAddr)>,
    /// Its process, if known (for pinning).
    pub pid: Option<u32>,
    /// Its MTU, if known.
    pub mtu: Option<u32>,
    /// Lab clients it can hold at once, if limited.
    pub lab_slots: Option<usize>,
    /// Receive and transmit buffer of one bulk socket (discard, chargen,
    /// echo), bytes, if known (`INFO`; the kernel's autotune).
    pub bulk_buffers: Option<(u64, u64)>,
}

fn net_name<S: serde::Serializer>(net: &HostNet, s: S) -> Result<S::Ok, S::Error> {
    match net.netns_name() {
        Some(name) => s.serialize_str(name),
        None => s.serialize_none(),
    }
}

impl Target {
    /// The address of `port` on the target.
    pub fn addr(&self, port: u16) -> SocketAddr {
        self.forwarded
            .iter()
            .find(|(p, _)| *p == port)
            .map_or(SocketAddr::new(self.ip, port), |(_, addr)| *addr)
    }

    /// What the chart says of it under its name: MTU and socket pool.
    pub fn setup(&self) -> String {
        let mut parts = Vec::new();
        if let Some(mtu) = self.mtu {
            parts.push(format!("MTU {mtu}"));
        }
        match (self.lab_slots, self.bulk_buffers) {
            (Some(slots), Some((rx, tx))) => parts.push(format!(
                "pool: {slots} lab slots, bulk sockets {} rx / {} tx",
                report::format_bytes(rx),
                report::format_bytes(tx)
            )),
            (Some(slots), None) => parts.push(format!("pool: {slots} lab slots")),
            (None, Some((rx, tx))) => parts.push(format!(
                "bulk sockets {} rx / {} tx",
                report::format_bytes(rx),
                report::format_bytes(tx)
            )),
            (None, None) if self.board == kernel::BOARD => {
                parts.push("the kernel's autotuned socket buffers".into())
            }
            (None, None) => {}
        }
        parts.join(", ")
    }

    /// The lab service's address.
    pub fn lab_addr(&self) -> SocketAddr {
        self.addr(LAB_PORT)
    }

    /// A device reached at `ip` from `net` (PID if known, for pinning);
    /// board, MTU and pool size are read with `INFO`.
    pub fn device(
        net: HostNet,
        ip: IpAddr,
        pid: Option<u32>,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let mut target = Target::unprobed(net, ip, pid);
        target.probe(timeout)?;
        Ok(target)
    }

    fn unprobed(net: HostNet, ip: IpAddr, pid: Option<u32>) -> Self {
        Target {
            name: "device".into(),
            description: String::new(),
            board: "unknown".into(),
            net,
            ip,
            forwarded: Vec::new(),
            pid,
            mtu: None,
            lab_slots: None,
            bulk_buffers: None,
        }
    }

    /// Asks the device's lab service for `INFO`: board, MTU, pool size.
    fn probe(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let mut client = LabClient::connect_in(&self.net, self.lab_addr(), timeout)?;
        let answer = client.info()?;
        let _ = client.quit();
        self.board = answer.get(info::BOARD).unwrap_or("unknown").to_owned();
        self.mtu = answer.parse(info::MTU);
        self.lab_slots = answer.parse(info::LAB_SLOTS);
        self.bulk_buffers = answer
            .parse(info::BULK_RX_BUFFER)
            .zip(answer.parse(info::BULK_TX_BUFFER));
        let where_ = self
            .net
            .netns_name()
            .map(|ns| format!(" from namespace {ns}"))
            .unwrap_or_default();
        self.description = format!(
            "{} at {}{where_}{}{}{}",
            self.board,
            self.lab_addr(),
            self.mtu.map(|m| format!(", MTU {m}")).unwrap_or_default(),
            self.lab_slots
                .map(|n| format!(", {n} lab slots"))
                .unwrap_or_default(),
            self.pid.map(|p| format!(", pid {p}")).unwrap_or_default(),
        );
        Ok(())
    }

    /// A device started by a launcher (any board: its ports are wherever
    /// [`RunningBoard::addr`] says).
    pub fn from_device(device: &dyn RunningBoard, timeout: Duration) -> Result<Self, BenchError> {
        let ip = device.addr(LAB_PORT).ip();
        let forwarded = SERVICE_PORTS
            .into_iter()
            .map(|port| (port, device.addr(port)))
            .filter(|(port, addr)| *addr != SocketAddr::new(ip, *port))
            .collect();
        let mut target = Target {
            forwarded,
            ..Target::unprobed(device.host_net().clone(), ip, Some(device.pid()))
        };
        target.probe(timeout)?;
        Ok(target)
    }

    /// Checks that the options fit this target (its lab pool). More
    /// concurrency clients than lab slots is allowed: how a device meets
    /// them (the clients beyond its slots wait in its backlog for a slot that
    /// never frees during the run, or are refused) is what such a run
    /// measures, and each of them counts as an error.
    pub fn check(&self, opts: &Options) -> Result<(), BenchError> {
        let Some(slots) = self.lab_slots else {
            return Ok(());
        };
        let wants = |w| opts.workloads.contains(&w);
        if wants(Workload::Connect) && opts.clients > slots {
            return Err(BenchError::Invalid(format!(
                "--clients {} is more than the {} lab slots of the {} ({})",
                opts.clients, slots, self.name, self.board
            )));
        }
        Ok(())
    }
}

/// Every run of every workload on one target.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    /// Throughput runs, all directions.
    pub throughput: Vec<ThroughputRun>,
    /// Latency runs.
    pub latency: Vec<LatencyRun>,
    /// Connection-rate runs.
    pub connect: Vec<ConnectRun>,
    /// Concurrency runs.
    pub concurrency: Vec<ConcurrencyRun>,
}

/// What [`run`] reports while it measures, for a caller that shows it
/// (the `socklab` command draws progress bars). [`Quiet`] shows nothing.
pub trait Observer {
    /// The progress of one step.
    type Step: StepProgress;

    /// A step begins; `what` names the target, the workload and the run.
    fn step_started(&self, what: String) -> Self::Step;

    /// The step has ended (successfully or not).
    fn step_finished(&self, step: Self::Step);
}

/// How far one step has got, in its workload's own unit (milliseconds,
/// bytes or round trips). Workloads update it from their measuring thread.
pub trait StepProgress: Sync {
    /// The step is `len` units long.
    fn set_length(&self, len: u64);

    /// The step has done `pos` units.
    fn set_position(&self, pos: u64);
}

/// Reports nothing: for callers that only want the figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    type Step = Quiet;

    fn step_started(&self, _what: String) -> Quiet {
        Quiet
    }

    fn step_finished(&self, _step: Quiet) {}
}

impl StepProgress for Quiet {
    fn set_length(&self, _len: u64) {}

    fn set_position(&self, _pos: u64) {}
}

/// How many steps [`run`] takes for these options and targets.
pub fn steps(opts: &Options, targets: usize) -> u64 {
    let per_run: usize = opts
        .workloads
        .iter()
        .map(|w| match w {
            Workload::Throughput => Direction::ALL.len(),
            _ => 1,
        })
        .sum();
    (per_run * opts.runs * targets) as u64
}

/// Measures every target, `opts.runs` times, every workload in turn; the
/// targets take turns within each step; [`steps`] steps in all, each
/// reported to `observer`. Returns one [`Results`] per target.
pub fn run<O: Observer>(
    targets: &[Target],
    opts: &Options,
    observer: &O,
) -> Result<Vec<Results>, BenchError> {
    for target in targets {
        target.check(opts)?;
    }
    let mut results = vec![Results::default(); targets.len()];
    for run in 1..=opts.runs {
        for &workload in &opts.workloads {
            let directions: &[Direction] = match workload {
                Workload::Throughput => &Direction::ALL,
                _ => &[Direction::Echo],
            };
            for &direction in directions {
                for (target, results) in targets.iter().zip(results.iter_mut()) {
                    let what = match workload {
                        Workload::Throughput => direction.label().to_owned(),
                        other => other.name().to_owned(),
                    };
                    let step = observer
                        .step_started(format!("{}: {what}, run {run}/{}", target.name, opts.runs));
                    let outcome = target.net.run(|| -> Result<(), BenchError> {
                        match workload {
                            Workload::Throughput => results
                                .throughput
                                .push(throughput::run(target, direction, opts, &step)?),
                            Workload::Latency => {
                                results.latency.push(latency::run(target, opts, &step)?)
                            }
                            Workload::Connect => {
                                results.connect.push(connect::run(target, opts, &step)?)
                            }
                            Workload::Concurrency => results
                                .concurrency
                                .push(concurrency::run(target, opts, &step)?),
                        }
                        Ok(())
                    });
                    observer.step_finished(step);
                    outcome??;
                    // Let the last connections' closes finish before the next step.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    Ok(results)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn workloads_parse_by_name() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        assert_eq!(Workload::parse("LATENCY"), Some(Workload::Latency));
        assert_eq!(Workload::parse("all"), None);
    }

    #[test]
    fn steps_count_directions() {
        let opts = Options::default();
        assert_eq!(steps(&opts, 2), (3 + 1 + 1 + 1) * 5 * 2);
        let opts = Options {
            workloads: vec![Workload::Latency],
            runs: 5,
            ..Options::default()
        };
        assert_eq!(steps(&opts, 1), 5);
    }

    #[test]
    fn pool_size_bounds_the_clients() {
        let target = Target {
            name: "device".into(),
            description: String::new(),
            board: "linux-tap".into(),
            net: HostNet::Current,
            ip: "192.168.69.1".parse().unwrap(),
            forwarded: vec![(7, "127.0.0.1:10007".parse().unwrap())],
            pid: None,
            mtu: Some(1500),
            lab_slots: Some(64),
            bulk_buffers: Some((256 * 1024, 256 * 1024)),
        };
        target.check(&Options::default()).unwrap();
        assert_eq!(target.addr(7).to_string(), "127.0.0.1:10007");
        assert_eq!(target.lab_addr().to_string(), "192.168.69.1:6666");
        let too_many = Options {
            clients: 65,
            ..Options::default()
        };
        let message = target.check(&too_many).unwrap_err().to_string();
        assert!(message.contains("64 lab slots"), "{message}");
        let other_workload = Options {
            workloads: vec![Workload::Throughput],
            ..too_many
        };
        target.check(&other_workload).unwrap();
        // Concurrency clients beyond the slots are measured, as errors.
        let beyond = Options {
            concurrency: 4096,
            ..Options::default()
        };
        target.check(&beyond).unwrap();
    }
}
