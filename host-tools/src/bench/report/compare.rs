//! `socklab bench --compare FILE.json`: the device/kernel ratio of every
//! figure now against the ratio in a reference run, a drop of more than
//! [`DROP_LIMIT`] flagged.
//!
//! Both runs are read as their `--json` documents, so that a reference
//! written by an older build still compares as long as its figures carry the
//! same keys. A figure is compared by how the device fares against the
//! kernel: the ratio itself where higher is better (throughput, rates), its
//! inverse where lower is better (latency), so that a drop always means the
//! device lost ground. Figures without a ratio on either side (error counts
//! with no kernel errors) are listed but not judged.

use std::fmt::Write;

use serde_json::Value;

use crate::bench::Workload;

/// The largest drop of the device's standing against the kernel that is not
/// flagged: 25 %.
pub const DROP_LIMIT: f64 = 0.25;

/// One figure of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The figure's key, e.g. `connect.rate`.
    pub key: String,
    /// For people.
    pub label: String,
    /// device/kernel in the reference.
    pub reference: Option<f64>,
    /// device/kernel now.
    pub now: Option<f64>,
    /// How the device's standing changed: now over reference for a
    /// higher-is-better figure, reference over now for a lower-is-better one
    /// (below 1: worse).
    pub standing: Option<f64>,
    /// Dropped by more than [`DROP_LIMIT`].
    pub flagged: bool,
}

/// The comparison of a run with its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Every figure of the reference, in its order.
    pub rows: Vec<Row>,
    /// Options that differ between the runs (`runs: 5 then 3`): the
    /// figures may not be comparable.
    pub differences: Vec<String>,
}

/// The workloads a reference run measured (`options.workloads`).
pub fn reference_workloads(reference: &Value) -> Result<Vec<Workload>, String> {
    let names = reference["options"]["workloads"]
        .as_array()
        .ok_or("the reference has no options.workloads: is it a `socklab bench --json` file?")?;
    names
        .iter()
        .map(|n| {
            n.as_str()
                .and_then(Workload::parse)
                .ok_or_else(|| format!("the reference names an unknown workload {n}"))
        })
        .collect()
}

/// The options compared between the runs.
const OPTIONS: [&str; 6] = [
    "runs",
    "duration",
    "count",
    "clients",
    "concurrency",
    "verify",
];

/// Compares `now` with `reference`, both `socklab bench --json` documents
/// with a kernel baseline.
pub fn compare(reference: &Value, now: &Value) -> Result<Comparison, String> {
    let figures = |doc: &Value, which: &str| -> Result<Vec<Value>, String> {
        doc["figures"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("the {which} run has no figures"))
    };
    let reference_figures = figures(reference, "reference")?;
    let now_figures = figures(now, "current")?;
    if !reference_figures.iter().any(|f| f["ratio"].is_number()) {
        return Err(
            "the reference has no device/kernel ratios: take it with --baseline kernel".into(),
        );
    }
    let mut rows = Vec::new();
    for figure in &reference_figures {
        let key = figure["key"]
            .as_str()
            .ok_or("a reference figure has no key")?;
        let current = now_figures.iter().find(|f| f["key"] == key);
        let lower_better = figure["better"] == "lower";
        let reference_ratio = figure["ratio"].as_f64();
        let now_ratio = current.and_then(|f| f["ratio"].as_f64());
        let standing = match (reference_ratio, now_ratio) {
            (Some(r), Some(n)) if r > 0.0 && n > 0.0 => {
                Some(if lower_better { r / n } else { n / r })
            }
            _ => None,
        };
        rows.push(Row {
            key: key.to_owned(),
            label: figure["label"].as_str().unwrap_or(key).to_owned(),
            reference: reference_ratio,
            now: now_ratio,
            standing,
            flagged: standing.is_some_and(|s| s < 1.0 - DROP_LIMIT),
        });
    }
    let differences = OPTIONS
        .iter()
        .filter_map(|name| {
            let (a, b) = (&reference["options"][name], &now["options"][name]);
            (a != b).then(|| format!("{name}: {a} then {b}"))
        })
        .collect();
    Ok(Comparison { rows, differences })
}

impl Comparison {
    /// The figures flagged.
    pub fn flagged(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.flagged)
    }

    /// The table: per figure the ratio in the reference, now, the change of
    /// the device's standing, and `DROP` where it fell by more than
    /// [`DROP_LIMIT`].
    pub fn table(&self) -> String {
        let ratio = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}×"));
        let width = self.rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>9}  {:>8}",
            "device/kernel", "reference", "now", "standing"
        );
        for row in &self.rows {
            let standing = row
                .standing
                .map_or("-".to_owned(), |s| format!("{:+.0} %", (s - 1.0) * 100.0));
            let _ = writeln!(
                out,
                "{:<width$}  {:>9}  {:>9}  {:>8}{}",
                row.label,
                ratio(row.reference),
                ratio(row.now),
                standing,
                if row.flagged { "  DROP" } else { "" }
            );
        }
        for difference in &self.differences {
            let _ = writeln!(out, "note: the runs differ in {difference}");
        }
        let flagged = self.flagged().count();
        let _ = match flagged {
            0 => writeln!(
                out,
                "no figure dropped by more than {:.0} % against the kernel",
                DROP_LIMIT * 100.0
            ),
            n => writeln!(
                out,
                "{n} figure(s) dropped by more than {:.0} % against the kernel: {}",
                DROP_LIMIT * 100.0,
                self.flagged()
                    .map(|r| r.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// A committed reference: the linux-tap board against the kernel.
    const REFERENCE: &str = include_str!("../../../../docs/bench/reference-tap.json");

    fn reference() -> Value {
        serde_json::from_str(REFERENCE).unwrap()
    }

    /// `doc` with the ratio of figure `key` multiplied by `factor`.
    fn scaled(doc: &Value, key: &str, factor: f64) -> Value {
        let mut doc = doc.clone();
        for figure in doc["figures"].as_array_mut().unwrap() {
            if figure["key"] == key {
                let ratio = figure["ratio"].as_f64().unwrap();
                figure["ratio"] = (ratio * factor).into();
            }
        }
        doc
    }

    #[test]
    fn a_run_against_itself_flags_nothing() {
        let r = reference();
        let c = compare(&r, &r).unwrap();
        assert!(c.rows.len() >= 10, "{c:?}");
        assert_eq!(c.flagged().count(), 0);
        assert!(c.differences.is_empty());
        assert!(c.rows.iter().filter_map(|r| r.standing).all(|s| s == 1.0));
        assert!(c.table().contains("no figure dropped"), "{}", c.table());
    }

    #[test]
    fn a_drop_beyond_the_limit_is_flagged_either_way_round() {
        let r = reference();
        // Connection rate: higher is better, so a lower ratio is a drop.
        let c = compare(&r, &scaled(&r, "connect.rate", 0.7)).unwrap();
        let flagged: Vec<_> = c.flagged().map(|r| r.key.as_str()).collect();
        assert_eq!(flagged, ["connect.rate"]);
        assert!(c.table().contains("DROP"));
        // 20 % down: within the limit.
        let c = compare(&r, &scaled(&r, "connect.rate", 0.8)).unwrap();
        assert_eq!(c.flagged().count(), 0);
        // Latency: lower is better, so a higher ratio is the drop.
        let c = compare(&r, &scaled(&r, "latency.p50", 1.4)).unwrap();
        let flagged: Vec<_> = c.flagged().map(|r| r.key.as_str()).collect();
        assert_eq!(flagged, ["latency.p50"]);
        let c = compare(&r, &scaled(&r, "latency.p50", 0.5)).unwrap();
        assert_eq!(c.flagged().count(), 0, "better is never flagged");
    }

    #[test]
    fn workloads_and_differences_come_from_the_files() {
        let r = reference();
        assert_eq!(reference_workloads(&r).unwrap(), Workload::ALL.to_vec());
        let mut fewer = r.clone();
        fewer["options"]["runs"] = 3.into();
        let c = compare(&r, &fewer).unwrap();
        assert_eq!(c.differences, ["runs: 5 then 3"]);
        let no_kernel = serde_json::json!({"figures": [{"key": "connect.rate", "ratio": null}]});
        assert!(compare(&no_kernel, &r).is_err());
        assert!(reference_workloads(&serde_json::json!({})).is_err());
    }
}
