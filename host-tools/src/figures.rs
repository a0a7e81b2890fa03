//! The docs' tables of figures from the JSON their measuring command wrote:
//! `socklab bench --json`, `scripts/image-sizes` and `scripts/page-cost`.
//! Each table opens with when, with what command and on what machine it was
//! measured; `socklab report FILE.json` prints it, and the test
//! `cli/tests/docs_tables.rs` holds every committed table to it.

use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::bench::machine::Machine;
use crate::bench::report::markdown_from_json as bench_markdown;

/// The Markdown of a JSON file of figures, whichever command wrote it (told
/// apart by its `kind`; `socklab bench --json` results have none).
pub fn markdown_from_json(json: &Value) -> Result<String, String> {
    match json["kind"].as_str() {
        Some("image-sizes") => image_sizes(json),
        Some("page-cost") => page_cost(json),
        Some(other) => Err(format!(
            "figures of kind `{other}`: this socklab renders `image-sizes`, `page-cost` \
             and `socklab bench --json` results"
        )),
        None => bench_markdown(json),
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_minute(unix_s: u64) -> String {
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_s));
    // `2026-12-06T23:40:05Z`: the date, then hours and minutes.
    let text = stamp.to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// What every non-bench file of figures opens with.
#[derive(Debug, Deserialize)]
struct Head {
    schema: u64,
    command: String,
    started_unix_s: u64,
    machine: Machine,
    /// The 1-minute load average at the start and at the end, if measured.
    #[serde(default)]
    load_average: Option<[f64; 2]>,
}

impl Head {
    fn of(json: &Value) -> Result<Head, String> {
        let head: Head = serde_json::from_value(json.clone())
            .map_err(|e| format!("not a file of figures: {e}"))?;
        if head.schema != 1 {
            return Err(format!(
                "schema {}: this socklab reads schema 1",
                head.schema
            ));
        }
        Ok(head)
    }

    /// The sentence and the machine line above the table.
    fn describe(&self) -> String {
        let load = match self.load_average {
            Some([start, end]) => {
                format!(", load average {start:.1} at the start, {end:.1} at the end")
            }
            None => String::new(),
        };
        format!(
            "Measured on {} with `{}`{load}.\n\n* {}\n\n",
            utc_minute(self.started_unix_s),
            self.command,
            self.machine.describe()
        )
    }
}

/// Flash and RAM of one image, or what one service adds to it.
#[derive(Debug, Deserialize)]
struct Sizes {
    label: String,
    text: i64,
    data: i64,
    bss: i64,
}

/// `scripts/image-sizes`: what each optional service costs a board's image.
#[derive(Debug, Deserialize)]
struct ImageSizes {
    board: String,
    toolchain: String,
    services: Vec<Sizes>,
    images: Vec<Sizes>,
}

fn image_sizes(json: &Value) -> Result<String, String> {
    let head = Head::of(json)?;
    let sizes: ImageSizes = serde_json::from_value(json.clone())
        .map_err(|e| format!("not a `scripts/image-sizes` result: {e}"))?;
    let mut out = head.describe();
    out.push_str(&format!(
        "{}, built with {}:\n\n",
        sizes.board, sizes.toolchain
    ));
    out.push_str("| service (feature) | text | data | bss |\n|---|---:|---:|---:|\n");
    for s in sizes.services.iter().chain(&sizes.images) {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            s.label, s.text, s.data, s.bss
        ));
    }
    Ok(out)
}

/// `scripts/page-cost tap` or `qemu`: what a refresh of the page costs the device.
#[derive(Debug, Deserialize)]
struct PageCost {
    board: String,
    path: String,
    refreshes: u64,
    json_bytes_per_refresh: u64,
    refreshes_per_s: f64,
    /// linux-tap: Ethernet bytes on the TAP per refresh, both directions.
    wire_bytes_per_refresh: Option<u64>,
    /// linux-tap: the device's CPU per refresh, less the same wall time idle.
    device_cpu_us_per_refresh: Option<f64>,
    /// QEMU: `--profile`'s idle share (‰) every 5 s with no client, then at 5 refreshes/s.
    idle_permille_no_client: Option<Vec<u64>>,
    idle_permille_5_per_s: Option<Vec<u64>>,
}

/// `a–b ‰` (or `a ‰`) over the values, `—` for none.
fn permille_range(values: &[u64]) -> String {
    match (values.iter().min(), values.iter().max()) {
        (Some(low), Some(high)) if low == high => format!("{low} ‰"),
        (Some(low), Some(high)) => format!("{low}–{high} ‰"),
        _ => "—".into(),
    }
}

/// `24486` as `24,486`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn page_cost(json: &Value) -> Result<String, String> {
    let head = Head::of(json)?;
    let cost: PageCost = serde_json::from_value(json.clone())
        .map_err(|e| format!("not a `scripts/page-cost` result: {e}"))?;
    let mut out = head.describe();
    out.push_str(&format!(
        "| {} ({}) | measured |\n|---|---:|\n",
        cost.board, cost.path
    ));
    let mut row = |what: &str, value: String| out.push_str(&format!("| {what} | {value} |\n"));
    row(
        "JSON (`/api/sockets` and `/api/events`)",
        format!("{} B", thousands(cost.json_bytes_per_refresh)),
    );
    if let Some(wire) = cost.wire_bytes_per_refresh {
        row(
            "on the TAP, both directions (its counters)",
            format!("{} B", thousands(wire)),
        );
    }
    if let Some(cpu) = cost.device_cpu_us_per_refresh {
        row(
            &format!(
                "device CPU (utime+stime over {} refreshes, less the same wall time idle)",
                thousands(cost.refreshes)
            ),
            format!("{cpu:.0} µs"),
        );
    }
    if let Some(idle) = &cost.idle_permille_no_client {
        row(
            "`--profile` idle share, no client (every 5 s)",
            permille_range(idle),
        );
    }
    if let Some(busy) = &cost.idle_permille_5_per_s {
        row(
            "`--profile` idle share at 5 refreshes/s (every 5 s)",
            permille_range(busy),
        );
    }
    row(
        "refreshes back to back, per second",
        thousands(cost.refreshes_per_s.round() as u64),
    );
    Ok(out)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn times_read_as_utc_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_796_598_754), "2026-12-06 23:12 UTC");
    }

    #[test]
    fn numbers_read_in_thousands_and_ranges() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(24_486), "24,486");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(permille_range(&[990, 989, 990]), "989–990 ‰");
        assert_eq!(permille_range(&[996]), "996 ‰");
        assert_eq!(permille_range(&[]), "—");
    }

    fn head() -> Value {
        serde_json::json!({
            "schema": 1,
            "command": "scripts/page-cost tap 1000",
            "started_unix_s": 1_796_598_754u64,
            "machine": {"cpu_model": "AMD EPYC", "vcpus": 2, "kernel": "6.18"},
            "load_average": [9.36, 9.09],
        })
    }

    #[test]
    fn a_page_cost_names_when_what_and_where() {
        let mut json = head();
        let fields = serde_json::json!({
            "kind": "page-cost", "board": "linux-tap", "path": "the 127.0.0.1 forwarder",
            "refreshes": 1000, "seconds": 1.085, "json_bytes_per_refresh": 24486,
            "wire_bytes_per_refresh": 26023, "busy_s": 0.3, "idle_s": 0.0,
            "device_cpu_us_per_refresh": 300, "refreshes_per_s": 922,
        });
        json.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let md = markdown_from_json(&json).unwrap();
        assert!(
            md.starts_with(
                "Measured on 2026-12-06 23:12 UTC with `scripts/page-cost tap 1000`, \
                 load average 9.4 at the start, 9.1 at the end.\n\n* machine: AMD EPYC, 2 vCPUs, Linux 6.18"
            ),
            "{md}"
        );
        assert!(
            md.contains("| JSON (`/api/sockets` and `/api/events`) | 24,486 B |"),
            "{md}"
        );
        assert!(md.contains("| 300 µs |"), "{md}");
        assert!(
            md.contains("| refreshes back to back, per second | 922 |"),
            "{md}"
        );
    }

    #[test]
    fn image_sizes_list_services_then_images() {
        let mut json = head();
        let fields = serde_json::json!({
            "kind": "image-sizes", "board": "mps2-an385", "toolchain": "rustc 1.96.0",
            "services": [{"label": "`udp`", "text": 1608, "data": 2232, "bss": -4096}],
            "images": [{"label": "full image (every service)", "text": 184084, "data": 31904, "bss": 469096}],
        });
        json.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let md = markdown_from_json(&json).unwrap();
        assert!(md.contains("mps2-an385, built with rustc 1.96.0:"), "{md}");
        assert!(
            md.ends_with(
                "| service (feature) | text | data | bss |\n|---|---:|---:|---:|\n\
                 | `udp` | 1608 | 2232 | -4096 |\n\
                 | full image (every service) | 184084 | 31904 | 469096 |\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn unknown_kinds_and_schemas_are_refused() {
        let mut json = head();
        json["kind"] = "weather".into();
        assert!(markdown_from_json(&json).unwrap_err().contains("weather"));
        json["kind"] = "page-cost".into();
        json["schema"] = 2.into();
        assert!(markdown_from_json(&json).unwrap_err().contains("schema 2"));
    }
}
