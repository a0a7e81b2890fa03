//! The bench's figures for people: the header (what was measured, how and
//! where), the table, the first errors, and the Markdown table of a saved
//! `--json` result.

use super::model::{Better, Report};
use crate::bench::machine::Machine;
use crate::bench::{Limit, Workload};

impl Report {
    /// What was measured, how, and where, as lines for people.
    pub fn header(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let limit = match o.limit {
            Limit::Duration(d) => format!("{:.1} s per stream", d.as_secs_f64()),
            Limit::Bytes(n) => format!("{} per stream", format_bytes(n)),
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
    let started = json["started_unix_s"]
        .as_u64()
        .ok_or_else(|| bad("no `started_unix_s`"))?;
    out.push_str(&format!(
        "Measured on {} with `{}` ({} runs, medians; error counts summed).\n\n",
        crate::figures::utc_minute(started),
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

/// A byte count in binary units, as `15 B`, `1.46 KiB`, `256.00 KiB` or
/// `1.43 MiB` (two decimals from 1 KiB up).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
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

#[cfg(test)]
mod test {
    use super::*;
    use crate::bench::report::fixture::report;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(format_bytes(15), "15 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1_500), "1.46 KiB");
        assert_eq!(format_bytes(256 << 10), "256.00 KiB");
        assert_eq!(format_bytes(1_500_000), "1.43 MiB");
        assert_eq!(format_bytes(1_500_000_000), "1.40 GiB");
        assert_eq!(format_bytes(u64::MAX), "16.00 EiB");
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
            md.starts_with("Measured on 1970-01-01 00:00 UTC with `socklab bench` (5 runs"),
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
    }
}
