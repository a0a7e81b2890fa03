//! The bench's results for people (a table) and machines (JSON): one
//! [`Figure`] per measured quantity, its value on every target (the median
//! of the runs, or the sum for error counts) and the ratio of the device to
//! the baseline.

use std::collections::BTreeMap;

use serde::Serialize;

use super::machine::{Driving, Machine};
use super::stats::{cdf_points, median};
use super::throughput::Direction;
use super::{Options, Results, Target, Workload};

/// Points of the CDFs kept in the JSON and the chart.
const CDF_POINTS: usize = 200;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput, rates.
    Higher,
    /// Latency, errors.
    Lower,
}

/// How the runs of a figure become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The median run.
    Median,
    /// All runs together (error counts).
    Sum,
}

/// One figure on one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    /// The runs' median (or sum, see [`Figure::aggregate`]).
    pub value: f64,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
    /// Every run, in order.
    pub runs: Vec<f64>,
}

impl Value {
    fn of(runs: Vec<f64>, aggregate: Aggregate) -> Option<Self> {
        let value = match aggregate {
            Aggregate::Median => median(&runs)?,
            Aggregate::Sum if runs.is_empty() => return None,
            Aggregate::Sum => runs.iter().sum(),
        };
        let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Value {
            value,
            min,
            max,
            runs,
        })
    }
}

/// One measured quantity across the targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The workload it belongs to.
    pub workload: Workload,
    /// Stable key, e.g. `throughput.host_to_device`, `latency.p99`.
    pub key: String,
    /// For people.
    pub label: String,
    /// `Gbit/s`, `µs`, `conn/s`, `req/s`, `count`.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// Median of the runs, or their sum.
    pub aggregate: Aggregate,
    /// Per target name.
    pub values: BTreeMap<String, Value>,
    /// `device / kernel` (the first target over the second), when both exist
    /// and the second is not zero.
    pub ratio: Option<f64>,
}

/// A target as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The target.
    #[serde(flatten)]
    pub target: Target,
    /// Every run.
    pub results: Results,
    /// Latency CDF of all latency runs together: (µs, fraction).
    pub latency_cdf: Vec<(f64, f64)>,
    /// Latency CDF of all concurrency requests together: (µs, fraction).
    pub concurrency_cdf: Vec<(f64, f64)>,
}

/// Everything `socklab bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Format version of this JSON.
    pub schema: u32,
    /// socklab's version.
    pub socklab_version: &'static str,
    /// The command line.
    pub command: String,
    /// When the bench started, seconds since 1970.
    pub started_unix_s: u64,
    /// Where it ran.
    pub machine: Machine,
    /// How every target was driven.
    pub driving: Driving,
    /// What was asked.
    pub options: Options,
    /// Per-target details, first the device.
    pub targets: Vec<TargetReport>,
    /// The table.
    pub figures: Vec<Figure>,
}

impl Report {
    /// Builds the figures from the runs.
    pub fn new(
        command: String,
        started_unix_s: u64,
        options: Options,
        targets: Vec<Target>,
        results: Vec<Results>,
    ) -> Self {
        let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        let mut figures = Vec::new();
        let mut add = |workload,
                       key: String,
                       label: String,
                       unit,
                       better,
                       aggregate,
                       per_target: &dyn Fn(&Results) -> Vec<f64>| {
            let values: BTreeMap<String, Value> = names
                .iter()
                .zip(&results)
                .filter_map(|(name, r)| Some((name.clone(), Value::of(per_target(r), aggregate)?)))
                .collect();
            if values.is_empty() {
                return;
            }
            let ratio = match (names.first(), names.get(1)) {
                (Some(a), Some(b)) => match (values.get(a), values.get(b)) {
                    (Some(a), Some(b)) => super::stats::ratio(a.value, b.value),
                    _ => None,
                },
                _ => None,
            };
            figures.push(Figure {
                workload,
                key,
                label,
                unit,
                better,
                aggregate,
                values,
                ratio,
            });
        };
        use Aggregate::{Median, Sum};
        use Better::{Higher, Lower};
        for direction in Direction::ALL {
            add(
                Workload::Throughput,
                format!("throughput.{}", direction.key()),
                direction.label().to_owned(),
                "Gbit/s",
                Higher,
                Median,
                &|r| {
                    r.throughput
                        .iter()
                        .filter(|t| t.direction == direction)
                        .map(|t| t.gbps)
                        .collect()
                },
            );
        }
        type Pick = fn(&super::stats::Percentiles) -> f64;
        let percentiles: [(&str, &str, Pick); 5] = [
            ("p50", "p50", |p| p.p50_us),
            ("p90", "p90", |p| p.p90_us),
            ("p99", "p99", |p| p.p99_us),
            ("p99_9", "p99.9", |p| p.p999_us),
            ("max", "max", |p| p.max_us),
        ];
        for (key, label, pick) in percentiles {
            add(
                Workload::Latency,
                format!("latency.{key}"),
                format!("echo 64 B round trip {label}"),
                "µs",
                Lower,
                Median,
                &|r| r.latency.iter().map(|l| pick(&l.percentiles)).collect(),
            );
        }
        add(
            Workload::Connect,
            "connect.rate".into(),
            format!("connections ({} clients)", options.clients),
            "conn/s",
            Higher,
            Median,
            &|r| r.connect.iter().map(|c| c.per_sec).collect(),
        );
        add(
            Workload::Connect,
            "connect.failures".into(),
            "failed connections (all runs)".into(),
            "count",
            Lower,
            Sum,
            &|r| r.connect.iter().map(|c| c.failures as f64).collect(),
        );
        add(
            Workload::Concurrency,
            "concurrency.rate".into(),
            format!("ECHO requests ({} clients)", options.concurrency),
            "req/s",
            Higher,
            Median,
            &|r| r.concurrency.iter().map(|c| c.requests_per_sec).collect(),
        );
        for (key, label, pick) in [percentiles[0], percentiles[2], percentiles[3]] {
            add(
                Workload::Concurrency,
                format!("concurrency.{key}"),
                format!("ECHO request {label}"),
                "µs",
                Lower,
                Median,
                &|r| r.concurrency.iter().map(|c| pick(&c.latency)).collect(),
            );
        }
        add(
            Workload::Concurrency,
            "concurrency.errors".into(),
            "errors (all runs)".into(),
            "count",
            Lower,
            Sum,
            &|r| r.concurrency.iter().map(|c| c.errors as f64).collect(),
        );
        let targets = targets
            .into_iter()
            .zip(results)
            .map(|(target, results)| {
                let mut lat: Vec<u64> = results
                    .latency
                    .iter()
                    .flat_map(|l| l.samples_ns.iter().copied())
                    .collect();
                lat.sort_unstable();
                let mut conc: Vec<u64> = results
                    .concurrency
                    .iter()
                    .flat_map(|c| c.samples_ns.iter().copied())
                    .collect();
                conc.sort_unstable();
                TargetReport {
                    target,
                    results,
                    latency_cdf: cdf_points(&lat, CDF_POINTS),
                    concurrency_cdf: cdf_points(&conc, CDF_POINTS),
                }
            })
            .collect();
        Report {
            schema: 1,
            machine: Machine::detect(),
            driving: Driving::default(),
            socklab_version: env!("CARGO_PKG_VERSION"),
            command,
            started_unix_s,
            options,
            targets,
            figures,
        }
    }

    /// The figure with this key.
    pub fn figure(&self, key: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.key == key)
    }

    /// What was measured, how, and where, as lines for people.
    pub fn header(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let limit = match o.limit {
            super::Limit::Duration(d) => format!("{:.1} s per stream", d.as_secs_f64()),
            super::Limit::Bytes(n) => format!("{} per stream", human_bytes(n)),
        };
        out.push_str(&format!(
            "socklab bench: {} run{} of each workload, medians (errors: sums); throughput {limit}; \
             latency {} round trips of 64 B; connection rate {} clients × {:.1} s; \
             concurrency {} clients × {:.1} s\n",
            o.runs,
            if o.runs == 1 { "" } else { "s" },
            o.count,
            o.clients,
            o.duration.as_secs_f64(),
            o.concurrency,
            o.duration.as_secs_f64(),
        ));
        out.push_str(&format!("  {}\n", self.machine.describe()));
        out.push_str(&format!("  {}\n", self.driving.describe()));
        for t in &self.targets {
            out.push_str(&format!(
                "  {:<7} {}\n",
                t.target.name, t.target.description
            ));
        }
        if o.workloads.contains(&Workload::Latency) {
            out.push_str(&format!("  latency: {}\n", self.pinning()));
        }
        out
    }

    /// How the latency runs were placed, in words.
    pub fn pinning(&self) -> String {
        let Some(cpu) = self.options.pin else {
            return "NOT pinned (each message wakes the other side, often on the other CPU; \
                    use --pin CPU)"
                .into();
        };
        let mut pinned = vec!["the bench thread".to_owned()];
        let mut unpinned = Vec::new();
        for t in &self.targets {
            let target_pinned = t
                .results
                .latency
                .first()
                .is_some_and(|l| l.pinning.target_pinned);
            if target_pinned {
                pinned.push(format!(
                    "the {} (pid {})",
                    t.target.name,
                    t.target.pid.unwrap_or(0)
                ));
            } else {
                unpinned.push(t.target.name.clone());
            }
        }
        let mut text = format!("pinned to CPU {cpu}: {}", pinned.join(", "));
        if !unpinned.is_empty() {
            text.push_str(&format!(
                "; NOT pinned: {} (process unknown; give --device-pid)",
                unpinned.join(", ")
            ));
        }
        text
    }

    /// The table: one line per figure, a column per target, and the ratio.
    pub fn table(&self) -> String {
        let names: Vec<&str> = self
            .targets
            .iter()
            .map(|t| t.target.name.as_str())
            .collect();
        let ratio_header = match names.as_slice() {
            [a, b, ..] => format!("{a}/{b}"),
            _ => String::new(),
        };
        let mut headers = vec!["workload".to_owned(), "figure".to_owned()];
        headers.extend(names.iter().map(|n| n.to_string()));
        if !ratio_header.is_empty() {
            headers.push(ratio_header);
        }
        let mut rows = vec![headers];
        for f in &self.figures {
            let mut row = vec![f.workload.name().to_owned(), f.label.clone()];
            for name in &names {
                row.push(
                    f.values
                        .get(*name)
                        .map(|v| format_value(v.value, f.unit))
                        .unwrap_or_else(|| "—".into()),
                );
            }
            if names.len() >= 2 {
                let arrow = match f.better {
                    Better::Higher => "↑",
                    Better::Lower => "↓",
                };
                row.push(match f.ratio {
                    Some(r) => format!("{r:.2}× {arrow}"),
                    None => "—".into(),
                });
            }
            rows.push(row);
        }
        let columns = rows[0].len();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let mut out = String::new();
        for (n, row) in rows.iter().enumerate() {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if i < 2 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
                line.push_str("  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if n == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * (columns - 1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        if names.len() >= 2 {
            out.push_str(&format!(
                "ratio = {} / {}; ↑ higher is better, ↓ lower is better\n",
                names[0], names[1]
            ));
        }
        out
    }

    /// First errors seen, per target and workload, for people.
    pub fn first_errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.targets {
            let name = &t.target.name;
            if let Some(e) = t
                .results
                .connect
                .iter()
                .find_map(|c| c.first_error.as_ref())
            {
                out.push(format!("{name}: connection rate: first failure: {e}"));
            }
            if let Some(e) = t
                .results
                .concurrency
                .iter()
                .find_map(|c| c.first_error.as_ref())
            {
                out.push(format!("{name}: concurrency: first error: {e}"));
            }
        }
        out
    }
}

/// The table of a run saved with `--json`, as Markdown (for the README):
/// the command, the targets, then one row per figure. Reads only the stable
/// part of the JSON (`command`, `options.runs`, `targets[].name`,
/// `targets[].description`, `figures`).
pub fn markdown_from_json(json: &serde_json::Value) -> Result<String, String> {
    let bad = |what: &str| format!("not a `socklab bench --json` result: {what}");
    if json["schema"].as_u64() != Some(1) {
        return Err(bad("no `schema: 1`"));
    }
    let targets = json["targets"]
        .as_array()
        .ok_or_else(|| bad("no targets"))?;
    let names: Vec<&str> = targets.iter().filter_map(|t| t["name"].as_str()).collect();
    let figures = json["figures"]
        .as_array()
        .ok_or_else(|| bad("no figures"))?;
    let mut out = String::new();
    out.push_str(&format!(
        "Measured with `{}` ({} runs, medians; error counts summed).\n\n",
        json["command"].as_str().unwrap_or("socklab bench"),
        json["options"]["runs"].as_u64().unwrap_or(0)
    ));
    if let Ok(machine) = serde_json::from_value::<Machine>(json["machine"].clone()) {
        out.push_str(&format!("* {}\n", machine.describe()));
    }
    for t in targets {
        out.push_str(&format!(
            "* **{}**: {}\n",
            t["name"].as_str().unwrap_or("?"),
            t["description"].as_str().unwrap_or("")
        ));
    }
    out.push('\n');
    let mut header = vec!["workload".to_owned(), "figure".to_owned()];
    header.extend(names.iter().map(|n| n.to_string()));
    if names.len() >= 2 {
        header.push(format!("{}/{}", names[0], names[1]));
    }
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i < 2 { "---" } else { "---:" })
        .collect();
    out.push_str(&format!("| {} |\n", align.join(" | ")));
    for f in figures {
        let unit = f["unit"].as_str().unwrap_or("");
        let mut row = vec![
            f["workload"].as_str().unwrap_or("").to_owned(),
            f["label"].as_str().unwrap_or("").to_owned(),
        ];
        for name in &names {
            row.push(
                f["values"][*name]["value"]
                    .as_f64()
                    .map_or("—".into(), |v| format_value(v, unit)),
            );
        }
        if names.len() >= 2 {
            let arrow = if f["better"] == "higher" {
                "↑"
            } else {
                "↓"
            };
            row.push(
                f["ratio"]
                    .as_f64()
                    .map_or("—".into(), |r| format!("{r:.2}× {arrow}")),
            );
        }
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    Ok(out)
}

/// A value with its unit, rounded for reading.
pub fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "count" => format!("{value:.0}"),
        "Gbit/s" if value < 1.0 => format!("{:.0} Mbit/s", value * 1e3),
        "Gbit/s" => format!("{value:.2} Gbit/s"),
        "µs" if value >= 1000.0 => format!("{:.2} ms", value / 1e3),
        "µs" => format!("{value:.1} µs"),
        _ if value >= 100.0 => format!("{value:.0} {unit}"),
        _ => format!("{value:.1} {unit}"),
    }
}

/// Bytes with a binary prefix.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::bench::stats::Percentiles;
    use crate::bench::throughput::{Sample, ThroughputRun};
    use crate::bench::{ConnectRun, LatencyRun};
    use crate::netns::HostNet;

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            description: format!("the {name}"),
            board: "test".into(),
            net: HostNet::Current,
            ip: "192.168.69.1".parse().unwrap(),
            forwarded: Vec::new(),
            pid: Some(42),
            mtu: Some(1500),
            lab_slots: None,
        }
    }

    fn tput(direction: Direction, gbps: f64) -> ThroughputRun {
        ThroughputRun {
            direction,
            bytes: (gbps * 1e9 / 8.0) as u64,
            sent_bytes: 0,
            elapsed_s: 1.0,
            gbps,
            series: vec![Sample { t_s: 0.1, gbps }],
        }
    }

    fn results(scale: f64) -> Results {
        let mut samples: Vec<u64> = (1..=100)
            .map(|i| (i as f64 * 1000.0 * scale) as u64)
            .collect();
        Results {
            throughput: [1.0, 3.0, 2.0]
                .iter()
                .map(|g| tput(Direction::HostToDevice, g * scale))
                .collect(),
            latency: vec![LatencyRun {
                pinning: crate::bench::latency::Pinning {
                    cpu: Some(1),
                    target_pinned: true,
                },
                message_bytes: 64,
                round_trips: 100,
                percentiles: Percentiles::of_nanos(&mut samples),
                samples_ns: samples,
            }],
            connect: vec![ConnectRun {
                clients: 4,
                connections: 100,
                failures: 1,
                elapsed_s: 1.0,
                per_sec: 100.0 * scale,
                cycle: Percentiles::default(),
                first_error: Some("refused".into()),
            }],
            concurrency: Vec::new(),
        }
    }

    fn report() -> Report {
        Report::new(
            "socklab bench".into(),
            0,
            Options {
                pin: Some(1),
                ..Options::default()
            },
            vec![target("device"), target("kernel")],
            vec![results(1.0), results(4.0)],
        )
    }

    #[test]
    fn figures_take_medians_sums_and_ratios() {
        let r = report();
        let h2d = r.figure("throughput.host_to_device").unwrap();
        assert_eq!(h2d.values["device"].value, 2.0);
        assert_eq!(h2d.values["device"].runs, vec![1.0, 3.0, 2.0]);
        assert_eq!(
            (h2d.values["device"].min, h2d.values["device"].max),
            (1.0, 3.0)
        );
        assert_eq!(h2d.values["kernel"].value, 8.0);
        assert_eq!(h2d.ratio, Some(0.25));
        assert_eq!(h2d.better, Better::Higher);
        // No runs in a direction: no figure.
        assert!(r.figure("throughput.echo").is_none());
        let p50 = r.figure("latency.p50").unwrap();
        assert_eq!(p50.values["device"].value, 50.0);
        assert_eq!(p50.ratio, Some(0.25));
        assert_eq!(p50.unit, "µs");
        let failures = r.figure("connect.failures").unwrap();
        assert_eq!(failures.aggregate, Aggregate::Sum);
        assert_eq!(failures.values["kernel"].value, 1.0);
        assert!(r.figure("concurrency.rate").is_none());
    }

    #[test]
    fn json_has_a_stable_shape() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["schema"], 1);
        assert!(json["socklab_version"].is_string());
        assert_eq!(json["options"]["runs"], 5);
        assert_eq!(json["options"]["limit"]["duration"], 2.0);
        assert_eq!(json["options"]["pin"], 1);
        assert!(json["machine"]["cpu_model"].is_string());
        assert!(json["machine"]["vcpus"].as_u64().unwrap() >= 1);
        assert!(json["machine"]["kernel"].is_string());
        assert_eq!(json["driving"]["write_bytes"], 256 * 1024);
        let figures = json["figures"].as_array().unwrap();
        let h2d = figures
            .iter()
            .find(|f| f["key"] == "throughput.host_to_device")
            .unwrap();
        assert_eq!(h2d["workload"], "throughput");
        assert_eq!(h2d["unit"], "Gbit/s");
        assert_eq!(h2d["better"], "higher");
        assert_eq!(h2d["aggregate"], "median");
        assert_eq!(h2d["values"]["device"]["value"], 2.0);
        assert_eq!(h2d["values"]["kernel"]["runs"][1], 12.0);
        assert_eq!(h2d["ratio"], 0.25);
        let device = &json["targets"][0];
        assert_eq!(device["name"], "device");
        assert_eq!(device["pid"], 42);
        assert_eq!(device["net"], serde_json::Value::Null);
        let run = &device["results"]["throughput"][0];
        assert_eq!(run["direction"], "host_to_device");
        assert_eq!(run["series"][0]["gbps"], 1.0);
        let lat = &device["results"]["latency"][0];
        assert_eq!(lat["percentiles"]["p50_us"], 50.0);
        assert!(lat.get("samples_ns").is_none(), "raw samples stay out");
        assert_eq!(lat["pinning"]["cpu"], 1);
        let cdf = device["latency_cdf"].as_array().unwrap();
        assert_eq!(cdf.last().unwrap()[0], 100.0);
        assert_eq!(cdf.last().unwrap()[1], 1.0);
    }

    #[test]
    fn table_shows_every_figure_and_ratio() {
        let r = report();
        let table = r.table();
        assert!(table.starts_with("workload"), "{table}");
        assert!(table.contains("device/kernel"), "{table}");
        assert!(table.contains("host→device (discard)"), "{table}");
        assert!(table.contains("2.00 Gbit/s"), "{table}");
        assert!(table.contains("8.00 Gbit/s"), "{table}");
        assert!(table.contains("0.25× ↑"), "{table}");
        assert!(table.contains("50.0 µs"), "{table}");
        assert_eq!(table.lines().count(), 2 + r.figures.len() + 1);
        assert!(r.header().contains("pinned to CPU 1"), "{}", r.header());
        assert!(r.header().contains("vCPU"), "{}", r.header());
        assert!(r.header().contains("writes of 256 KiB"), "{}", r.header());
        assert_eq!(r.first_errors().len(), 2);
    }

    #[test]
    fn markdown_comes_from_the_json() {
        let json = serde_json::to_value(report()).unwrap();
        let md = markdown_from_json(&json).unwrap();
        assert!(
            md.starts_with("Measured with `socklab bench` (5 runs"),
            "{md}"
        );
        assert!(md.contains("* **kernel**: the kernel"), "{md}");
        assert!(md.contains("* machine: "), "{md}");
        assert!(
            md.contains("| workload | figure | device | kernel | device/kernel |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| throughput | host→device (discard) | 2.00 Gbit/s | 8.00 Gbit/s | 0.25× ↑ |"
            ),
            "{md}"
        );
        assert!(markdown_from_json(&serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn values_read_well() {
        assert_eq!(format_value(0.412, "Gbit/s"), "412 Mbit/s");
        assert_eq!(format_value(9.4, "Gbit/s"), "9.40 Gbit/s");
        assert_eq!(format_value(23.04, "µs"), "23.0 µs");
        assert_eq!(format_value(1500.0, "µs"), "1.50 ms");
        assert_eq!(format_value(12345.6, "conn/s"), "12346 conn/s");
        assert_eq!(format_value(3.0, "count"), "3");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(100), "100 B");
    }
}
