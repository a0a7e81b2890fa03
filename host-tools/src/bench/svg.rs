//! The chart of a bench, as a self-contained SVG written by hand (no fonts,
//! no C libraries): throughput over time per direction, one panel per target
//! (the median run), then the latency CDFs (echo ping-pong and, if measured,
//! the concurrency requests) on a log axis. A workload that was not measured
//! gets no panel.
//!
//! One throughput panel per target, each on its own linear axis: the targets
//! differ a hundredfold (a QEMU device's 0.13 Gbit/s beside the kernel's 20),
//! so on a shared axis the slower one lies flat on zero. A log axis would
//! show both but hide what a linear one shows at a glance: the slow start,
//! a stall, a stream at half speed. Below 1 Gbit/s the axis is in Mbit/s.

use std::fmt::Write as _;

use super::report::Report;
use super::stats::median_index;
use super::throughput::Direction;
use super::{Results, Target};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
/// Height of one panel's plot area.
const PANEL_H: f64 = 260.0;
/// Where the first panel's title goes.
const TOP: f64 = 60.0;
/// From one panel's top to the next one's (title, axis labels, gap).
const PANEL_STEP: f64 = PANEL_H + 120.0;

/// A line to draw.
struct Line {
    points: Vec<(f64, f64)>,
    color: &'static str,
    dashed: bool,
    label: String,
}

fn direction_color(d: Direction) -> &'static str {
    match d {
        Direction::HostToDevice => "#1f77b4",
        Direction::DeviceToHost => "#d62728",
        Direction::Echo => "#2ca02c",
    }
}

fn short_label(d: Direction) -> &'static str {
    match d {
        Direction::HostToDevice => "host→dev (discard)",
        Direction::DeviceToHost => "dev→host (chargen)",
        Direction::Echo => "echo (both ways)",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round tick positions covering `0..=max`.
fn linear_ticks(max: f64) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// Ticks 1, 2, 5 × 10^k covering `min..=max`; none unless both are finite
/// and positive (a run without latencies has a minimum of 0, whose decade
/// would never grow).
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    if !(min.is_finite() && max.is_finite() && min > 0.0 && max >= min) {
        return ticks;
    }
    let mut decade = 10f64.powf(min.log10().floor());
    // An f64 spans about 600 decades; the guard above keeps this far shorter.
    for _ in 0..700 {
        if decade > max * 1.0001 {
            break;
        }
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= min * 0.9999 && t <= max * 1.0001 {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn tick_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

struct Panel {
    top: f64,
    x_min: f64,
    x_max: f64,
    y_max: f64,
    log_x: bool,
}

impl Panel {
    fn width(&self) -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn x(&self, v: f64) -> f64 {
        let f = if self.log_x {
            (v.max(self.x_min).ln() - self.x_min.ln()) / (self.x_max.ln() - self.x_min.ln())
        } else {
            (v - self.x_min) / (self.x_max - self.x_min)
        };
        LEFT + f.clamp(0.0, 1.0) * self.width()
    }

    fn y(&self, v: f64) -> f64 {
        self.top + PANEL_H - (v / self.y_max).clamp(0.0, 1.0) * PANEL_H
    }

    fn axes(
        &self,
        out: &mut String,
        (title, subtitle): (&str, &str),
        x_label: &str,
        y_label: &str,
        xticks: &[f64],
        yticks: &[f64],
    ) {
        let (x0, x1) = (LEFT, LEFT + self.width());
        let (y0, y1) = (self.top + PANEL_H, self.top);
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="{}" font-size="16" font-weight="bold">{}</text>"#,
            y1 - 28.0,
            escape(title)
        );
        let _ = writeln!(
            out,
            r##"<text x="{x0}" y="{}" font-size="13" fill="#444">{}</text>"##,
            y1 - 10.0,
            escape(subtitle)
        );
        for &t in yticks {
            let y = self.y(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                tick_label(t)
            );
        }
        for &t in xticks {
            let x = self.x(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/><text x="{x:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"##,
                y0 + 16.0,
                tick_label(t)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{PANEL_H}" fill="none" stroke="#333"/>"##,
            self.width()
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            y0 + 36.0,
            escape(x_label)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="13" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
            x0 - 52.0,
            (y0 + y1) / 2.0,
            x0 - 52.0,
            (y0 + y1) / 2.0,
            escape(y_label)
        );
    }

    fn lines(&self, out: &mut String, lines: &[Line], step: bool) {
        for line in lines {
            if line.points.is_empty() {
                continue;
            }
            // A step: the value of a point holds over the interval that ends there.
            let mut d = String::new();
            let mut last_x = None;
            for (i, &(x, y)) in line.points.iter().enumerate() {
                let (px, py) = (self.x(x), self.y(y));
                if i == 0 {
                    let _ = write!(d, "M{px:.1},{py:.1}");
                } else {
                    if let (true, Some(lx)) = (step, last_x) {
                        let _ = write!(d, " L{lx:.1},{py:.1}");
                    }
                    let _ = write!(d, " L{px:.1},{py:.1}");
                }
                last_x = Some(px);
            }
            let dash = if line.dashed {
                r#" stroke-dasharray="7,4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                line.color
            );
        }
        // Legend at the right.
        let x = LEFT + self.width() + 16.0;
        for (i, line) in lines.iter().enumerate() {
            let y = self.top + 10.0 + i as f64 * 20.0;
            let dash = if line.dashed {
                r#" stroke-dasharray="7,4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}" font-size="12">{}</text>"#,
                x + 28.0,
                line.color,
                x + 34.0,
                y + 4.0,
                escape(&line.label)
            );
        }
    }
}

/// The chart for `report`, a complete SVG document.
pub fn chart(report: &Report) -> String {
    let throughput: Vec<(&Target, Vec<Line>)> = report
        .targets
        .iter()
        .map(|t| (&t.target, throughput_lines(&t.results)))
        .filter(|(_, lines)| !lines.is_empty())
        .collect();
    let cdfs = latency_lines(report);
    let panels = throughput.len() + usize::from(!cdfs.is_empty());
    let height = TOP + 20.0 + PANEL_STEP * panels.max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{LEFT}" y="26" font-size="18" font-weight="bold">socklab bench {}</text>"##,
        escape(
            &report
                .targets
                .iter()
                .map(|t| format!("{} ({})", t.target.name, t.target.board))
                .collect::<Vec<_>>()
                .join(" vs ")
        )
    );
    let mut top = TOP + 20.0;
    for (target, lines) in &throughput {
        throughput_panel(&mut out, top, target, lines);
        top += PANEL_STEP;
    }
    if !cdfs.is_empty() {
        latency_panel(&mut out, top, report, &cdfs);
    }
    if panels == 0 {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="14" fill="#888" text-anchor="middle">no throughput or latency measured</text>"##,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            top + PANEL_H / 2.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The median run of each direction a target was measured in, over time.
fn throughput_lines(results: &Results) -> Vec<Line> {
    let mut lines = Vec::new();
    for d in Direction::ALL {
        let runs: Vec<_> = results
            .throughput
            .iter()
            .filter(|r| r.direction == d)
            .collect();
        let gbps: Vec<f64> = runs.iter().map(|r| r.gbps).collect();
        let Some(m) = median_index(&gbps) else {
            continue;
        };
        let mut points = vec![(0.0, 0.0)];
        points.extend(runs[m].series.iter().map(|s| (s.t_s, s.gbps)));
        lines.push(Line {
            points,
            color: direction_color(d),
            dashed: false,
            label: short_label(d).to_owned(),
        });
    }
    lines
}

/// One target's throughput panel, on its own scale: Mbit/s below 1 Gbit/s.
fn throughput_panel(out: &mut String, top: f64, target: &Target, lines: &[Line]) {
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (scale, unit) = if y_max < 1.0 {
        (1000.0, "Mbit/s")
    } else {
        (1.0, "Gbit/s")
    };
    let scaled: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            points: l.points.iter().map(|&(t, v)| (t, v * scale)).collect(),
            color: l.color,
            dashed: l.dashed,
            label: l.label.clone(),
        })
        .collect();
    let yticks = linear_ticks(y_max * scale * 1.05);
    // A run ends a hair after its nominal duration: no extra tick for that.
    let xticks = linear_ticks(x_max / 1.02);
    let panel = Panel {
        top,
        x_min: 0.0,
        x_max: *xticks.last().unwrap_or(&1.0),
        y_max: *yticks.last().unwrap_or(&1.0),
        log_x: false,
    };
    panel.axes(
        out,
        (
            &format!(
                "Throughput over time, median run: {} ({})",
                target.name, target.board
            ),
            &target.setup(),
        ),
        "time (s)",
        unit,
        &xticks,
        &yticks,
    );
    panel.lines(out, &scaled, true);
}

/// The latency CDFs of every target: echo round trips and lab `ECHO`
/// requests; the baseline's dashed.
fn latency_lines(report: &Report) -> Vec<Line> {
    let mut cdfs = Vec::new();
    for (i, t) in report.targets.iter().enumerate() {
        let dashed = i > 0;
        if !t.latency_cdf.is_empty() {
            cdfs.push(Line {
                points: t.latency_cdf.clone(),
                color: "#9467bd",
                dashed,
                label: format!("{} echo 64 B", t.target.name),
            });
        }
        if !t.concurrency_cdf.is_empty() {
            cdfs.push(Line {
                points: t.concurrency_cdf.clone(),
                color: "#ff7f0e",
                dashed,
                label: format!(
                    "{} lab ECHO, {} clients",
                    t.target.name, report.options.concurrency
                ),
            });
        }
    }
    cdfs
}

/// The latency panel, on a log axis of round-trip time.
fn latency_panel(out: &mut String, top: f64, report: &Report, cdfs: &[Line]) {
    let all_x = || cdfs.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let lo = all_x().fold(f64::INFINITY, f64::min).max(0.1);
    let hi = all_x().fold(0.0, f64::max).max(lo * 10.0);
    let (x_min, x_max) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    );
    let pinned = match report.options.pin {
        Some(cpu) => format!("pinned to CPU {cpu}"),
        None => "not pinned".into(),
    };
    let setups: Vec<String> = report
        .targets
        .iter()
        .map(|t| format!("{}: {}", t.target.name, t.target.setup()))
        .collect();
    let panel = Panel {
        top,
        x_min,
        x_max,
        y_max: 1.0,
        log_x: true,
    };
    panel.axes(
        out,
        (&format!("Latency CDF, echo {pinned}"), &setups.join("; ")),
        "round trip (µs, log scale)",
        "fraction of requests",
        &log_ticks(x_min, x_max),
        &[0.0, 0.25, 0.5, 0.75, 0.9, 1.0],
    );
    panel.lines(out, cdfs, false);
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::bench::report::fixture;
    use crate::bench::stats::Percentiles;
    use crate::bench::throughput::Sample;
    use crate::bench::{ConcurrencyRun, Options, ThroughputRun};

    /// A run of `gbps` in `direction`, sampled every 0.1 s for 2 s.
    fn run(direction: Direction, gbps: f64) -> ThroughputRun {
        ThroughputRun {
            series: (1..=20)
                .map(|i| Sample {
                    t_s: i as f64 / 10.0,
                    gbps,
                })
                .collect(),
            ..fixture::tput(direction, gbps)
        }
    }

    /// A QEMU device at 0.13 / 0.09 Gbit/s beside the kernel at 20 / 18,
    /// throughput only, or with the concurrency workload too.
    fn qemu_beside_kernel(concurrency: bool) -> Report {
        let mut device = fixture::target("device");
        device.board = "mps2-an385".into();
        device.lab_slots = Some(8);
        device.bulk_buffers = Some((8 * 1024, 16 * 1024));
        let mut kernel = fixture::target("kernel");
        kernel.board = crate::bench::kernel::BOARD.into();
        let results = |up: f64, down: f64| {
            let mut samples: Vec<u64> = (1..=100).map(|i| i * 10_000).collect();
            Results {
                throughput: vec![
                    run(Direction::HostToDevice, up),
                    run(Direction::DeviceToHost, down),
                ],
                concurrency: if concurrency {
                    vec![ConcurrencyRun {
                        clients: 8,
                        connected: 8,
                        requests: 100,
                        errors: 0,
                        elapsed_s: 1.0,
                        requests_per_sec: 100.0,
                        latency: Percentiles::of_nanos(&mut samples),
                        first_error: None,
                        samples_ns: samples,
                    }]
                } else {
                    Vec::new()
                },
                ..Results::default()
            }
        };
        Report::new(
            "socklab bench".into(),
            0,
            Options {
                concurrency: 8,
                ..Options::default()
            },
            vec![device, kernel],
            vec![results(0.13, 0.09), results(20.0, 18.0)],
        )
    }

    /// The y coordinates of the `n`th `<path>` of the chart.
    fn path_ys(svg: &str, n: usize) -> Vec<f64> {
        let path = svg.split("<path d=\"").nth(n + 1).expect("that many paths");
        let d = &path[..path.find('"').unwrap()];
        d.split(['M', 'L'])
            .filter_map(|p| p.trim().split(',').nth(1))
            .map(|y| y.trim().parse().unwrap())
            .collect()
    }

    #[test]
    fn every_target_has_its_own_readable_scale() {
        let svg = chart(&qemu_beside_kernel(false));
        // Two throughput panels, the device's in Mbit/s, the kernel's in Gbit/s.
        assert!(
            svg.contains("Throughput over time, median run: device (mps2-an385)"),
            "{svg}"
        );
        assert!(
            svg.contains("Throughput over time, median run: kernel (linux-kernel)"),
            "{svg}"
        );
        assert!(svg.contains(">Mbit/s</text>"), "{svg}");
        assert!(svg.contains(">Gbit/s</text>"), "{svg}");
        // Titles carry the MTU and the pool.
        assert!(
            svg.contains("MTU 1500, pool: 8 lab slots, bulk sockets 8.00 KiB rx / 16.00 KiB tx"),
            "{svg}"
        );
        assert!(
            svg.contains("MTU 1500, the kernel's autotuned socket buffers"),
            "{svg}"
        );
        // The device's 130 Mbit/s reaches the top third of its own panel
        // (plot area from TOP + 20 to TOP + 20 + PANEL_H), not the floor.
        let top = TOP + 20.0;
        let device_up = path_ys(&svg, 0);
        let highest = device_up.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            highest < top + PANEL_H / 3.0,
            "device line at y={highest}, panel {top}..{}",
            top + PANEL_H
        );
        // So does the kernel's 20 Gbit/s in the next panel.
        let kernel_up = path_ys(&svg, 2);
        let highest = kernel_up.iter().copied().fold(f64::INFINITY, f64::min);
        let top2 = top + PANEL_STEP;
        assert!(
            highest >= top2 && highest < top2 + PANEL_H / 3.0,
            "kernel line at y={highest}, panel {top2}..{}",
            top2 + PANEL_H
        );
        // No latency measured: no latency panel, and no room left for one.
        assert!(!svg.contains("Latency"), "{svg}");
        assert!(!svg.contains("not measured"), "{svg}");
        assert!(
            svg.contains(&format!(r#"height="{}""#, TOP + 20.0 + 2.0 * PANEL_STEP)),
            "{svg}"
        );
    }

    #[test]
    fn concurrency_latency_says_what_it_is() {
        let svg = chart(&qemu_beside_kernel(true));
        assert!(svg.contains("Latency CDF, echo not pinned"), "{svg}");
        assert!(svg.contains("device lab ECHO, 8 clients"), "{svg}");
        assert!(svg.contains("kernel lab ECHO, 8 clients"), "{svg}");
        assert!(!svg.contains('×'), "{svg}");
        assert!(
            svg.contains(&format!(r#"height="{}""#, TOP + 20.0 + 3.0 * PANEL_STEP)),
            "{svg}"
        );
    }

    #[test]
    fn log_ticks_of_an_empty_range_are_none() {
        assert!(log_ticks(0.0, 0.0).is_empty());
        assert!(log_ticks(0.0, 5.0).is_empty());
        assert!(log_ticks(f64::NAN, 5.0).is_empty());
        assert!(log_ticks(f64::INFINITY, f64::INFINITY).is_empty());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(linear_ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(linear_ticks(9.4).last(), Some(&10.0));
        assert_eq!(linear_ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(
            log_ticks(10.0, 1000.0),
            vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(tick_label(2000.0), "2k");
        assert_eq!(tick_label(0.5), "0.5");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
