//! The chart of a bench, as a self-contained SVG written by hand (no fonts,
//! no C libraries): throughput over time per direction (the median run of
//! each target; device solid, baseline dashed) and the latency CDFs (echo
//! ping-pong and, if measured, the concurrency requests) on a log axis.

use std::fmt::Write as _;

use super::report::Report;
use super::stats::median_index;
use super::throughput::Direction;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 820.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const PANEL_H: f64 = 300.0;
const TOP1: f64 = 60.0;
const TOP2: f64 = 470.0;

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
        title: &str,
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
            y1 - 14.0,
            escape(title)
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
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
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

    // Throughput over time: the median run of each target and direction.
    let mut tput = Vec::new();
    for (i, t) in report.targets.iter().enumerate() {
        for d in Direction::ALL {
            let runs: Vec<_> = t
                .results
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
            tput.push(Line {
                points,
                color: direction_color(d),
                dashed: i > 0,
                label: format!("{} {}", t.target.name, short_label(d)),
            });
        }
    }
    let x_max = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let y_max = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let yticks = linear_ticks(y_max * 1.05);
    // A run ends a hair after its nominal duration: no extra tick for that.
    let xticks = linear_ticks(x_max / 1.02);
    let panel = Panel {
        top: TOP1 + 20.0,
        x_min: 0.0,
        x_max: *xticks.last().unwrap_or(&1.0),
        y_max: *yticks.last().unwrap_or(&1.0),
        log_x: false,
    };
    panel.axes(
        &mut out,
        "Throughput over time (median run)",
        "time (s)",
        "Gbit/s",
        &xticks,
        &yticks,
    );
    if tput.is_empty() {
        no_data(&mut out, &panel);
    }
    panel.lines(&mut out, &tput, true);

    // Latency CDFs.
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
                label: format!("{} ECHO × {}", t.target.name, report.options.concurrency),
            });
        }
    }
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
    let panel = Panel {
        top: TOP2,
        x_min,
        x_max,
        y_max: 1.0,
        log_x: true,
    };
    panel.axes(
        &mut out,
        &format!("Latency CDF (echo {pinned})"),
        "round trip (µs, log scale)",
        "fraction of requests",
        &log_ticks(x_min, x_max),
        &[0.0, 0.25, 0.5, 0.75, 0.9, 1.0],
    );
    if cdfs.is_empty() {
        no_data(&mut out, &panel);
    }
    panel.lines(&mut out, &cdfs, false);
    out.push_str("</svg>\n");
    out
}

fn no_data(out: &mut String, panel: &Panel) {
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="14" fill="#888" text-anchor="middle">not measured</text>"##,
        LEFT + panel.width() / 2.0,
        panel.top + PANEL_H / 2.0
    );
}

#[cfg(test)]
mod test {
    use super::*;

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
