//! The bench's figure model: one [`Figure`] per measured quantity, its value
//! on every target (the median of the runs, or the sum for error counts) and
//! the ratio of the device to the baseline; the [`Report`] that holds them
//! with every run, and serializes as the `--json` result.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bench::machine::{Driving, Machine};
use crate::bench::stats::{cdf_points, median};
use crate::bench::throughput::Direction;
use crate::bench::{Options, Results, Target, Workload};

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
                    (Some(a), Some(b)) => crate::bench::stats::ratio(a.value, b.value),
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
        type Pick = fn(&crate::bench::stats::Percentiles) -> f64;
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
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::bench::report::fixture::report;

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
}
