//! Draws one frame of `socklab top` from a [`Picture`]: the interface and its
//! addresses, the listening sockets per port, the connected sockets with
//! their input and output buffers, the closing ones, the backlog, the state
//! changes of recent connections, the counters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use socklab_app::protocol::info;

use socklab_host::api::{ApiSocket, Ladder};

use super::Picture;

/// Rows of the bottom band (backlog, state changes, counters): the twelve
/// counters and the band's borders.
const BOTTOM_ROWS: u16 = 14;
/// The bad link's counts the counters box shows, one row each with both
/// directions, under a heading row, when the device runs with a bad link.
const LINK_COUNTS: [&str; 6] = [
    "frames",
    "dropped",
    "corrupted",
    "duplicated",
    "reordered",
    "delayed",
];
/// Rows the closing table takes at most (with its head and borders).
const MAX_CLOSING_ROWS: u16 = 9;
/// Width of one listener's entry.
const LISTENER_WIDTH: u16 = 44;
/// Widths of the socket table's text columns: socket, local, remote, state, time.
const COLUMNS: [u16; 5] = [14, 17, 20, 12, 7];
/// Width of the backlog and counters boxes.
const SIDE_WIDTH: u16 = 30;

/// Rows needed to show every socket of `picture` at `width` columns.
pub fn rows_for_everything(picture: &Picture, width: u16) -> u16 {
    let groups = picture.sockets.groups();
    let connected = groups.connected.len().max(1) as u16 + 3;
    let closing = groups.closing.len().max(1) as u16 + 3;
    3 + listening_rows(groups.listeners.len(), width) + connected + closing + bottom_rows(picture)
}

/// Rows of the bottom band: [`BOTTOM_ROWS`], and the bad link's rows when
/// the device runs with one.
fn bottom_rows(picture: &Picture) -> u16 {
    if link_on(picture) {
        BOTTOM_ROWS + 1 + LINK_COUNTS.len() as u16
    } else {
        BOTTOM_ROWS
    }
}

/// The bad link's count `badlink_<dir>_<name>` (0 when the device sent none).
fn link_count(picture: &Picture, dir: &str, name: &str) -> u64 {
    let key = format!("badlink_{dir}_{name}");
    picture.sockets.badlink.get(&key).copied().unwrap_or(0)
}

/// True if the device runs with a bad link: its link met a frame.
fn link_on(picture: &Picture) -> bool {
    link_count(picture, "rx", "frames") > 0 || link_count(picture, "tx", "frames") > 0
}

fn listening_rows(listeners: usize, width: u16) -> u16 {
    let per_line = (width.saturating_sub(2) / LISTENER_WIDTH).max(1) as usize;
    listeners.max(1).div_ceil(per_line) as u16 + 2
}

/// Draws the whole frame.
pub fn draw(frame: &mut Frame, picture: &Picture) {
    let area = frame.area();
    let groups = picture.sockets.groups();
    let closing_rows = (groups.closing.len().max(1) as u16 + 3).min(MAX_CLOSING_ROWS);
    let [head, listening, connected, closing, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(listening_rows(groups.listeners.len(), area.width)),
        Constraint::Min(4),
        Constraint::Length(closing_rows),
        Constraint::Length(bottom_rows(picture)),
    ])
    .areas(area);
    frame.render_widget(heading(picture), head);
    frame.render_widget(listeners(&groups.listeners, listening.width), listening);
    socket_table(
        frame,
        connected,
        " Connected sockets: one per client, its four-tuple, its input and output buffer ",
        &groups.connected,
        "no client connected",
    );
    socket_table(
        frame,
        closing,
        " Closing and TIME-WAIT: connections on their way out ",
        &groups.closing,
        "none",
    );
    let [backlog_area, ladders_area, counters_area] = Layout::horizontal([
        Constraint::Length(SIDE_WIDTH),
        Constraint::Fill(1),
        Constraint::Length(SIDE_WIDTH),
    ])
    .areas(bottom);
    frame.render_widget(backlog(&groups.backlog, picture), backlog_area);
    frame.render_widget(ladders(picture, ladders_area), ladders_area);
    frame.render_widget(counters(picture), counters_area);
}

fn service_color(service: &str) -> Color {
    match service {
        "lab" => Color::Green,
        "echo" => Color::Cyan,
        "discard" => Color::Yellow,
        "chargen" => Color::Magenta,
        "http" => Color::Blue,
        _ => Color::Gray,
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "ESTABLISHED" => Style::new().fg(Color::Green),
        "LISTEN" | "CLOSED" => Style::new().fg(Color::DarkGray),
        "SYN-RECEIVED" | "SYN-SENT" => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Red),
    }
}

/// Milliseconds for people: `850 ms`, `4.2 s`, `3 min 7 s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
    }
}

/// Milliseconds in at most 7 columns: `850ms`, `4.2s`, `26m49s`, `3h07m`.
pub fn short_duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// Bytes, short: `512`, `1.5K`, `256K`, `1.2M`.
pub fn short_bytes(n: usize) -> String {
    const K: usize = 1024;
    match n {
        0..K => n.to_string(),
        K..10240 => format!("{:.1}K", n as f64 / K as f64),
        10240..1_048_576 => format!("{}K", n / K),
        _ => format!("{:.1}M", n as f64 / (K * K) as f64),
    }
}

/// A buffer as a bar `width` cells wide: filled cells for the bytes queued
/// (one at least when any), then `queued/capacity`.
pub fn gauge(queued: usize, capacity: usize, width: u16, color: Color) -> Line<'static> {
    let capacity_text = short_bytes(capacity);
    // The queued figure right-aligned in the capacity's width: the bars of
    // one buffer size line up whatever is queued.
    let label = format!(
        " {:>w$}/{capacity_text}",
        short_bytes(queued),
        w = capacity_text.len()
    );
    let bar = (width as usize).saturating_sub(label.len());
    let filled = match (queued, capacity) {
        (0, _) | (_, 0) => 0,
        _ => (queued * bar).div_ceil(capacity).max(1).min(bar),
    };
    Line::from(vec![
        Span::styled("█".repeat(filled), Style::new().fg(color)),
        Span::styled("░".repeat(bar - filled), Style::new().fg(Color::DarkGray)),
        Span::raw(label),
    ])
}

fn heading(picture: &Picture) -> Paragraph<'static> {
    let i = &picture.info;
    let text = |key: &str| i.text(key).unwrap_or_else(|| "?".into());
    let title = format!(
        " socklab top · {} {} · http://{} ",
        text(info::BOARD),
        text(info::VERSION),
        picture.addr
    );
    let source = i
        .text(info::IPV4_SOURCE)
        .map_or_else(String::new, |s| format!(" ({s})"));
    let line = Line::from(vec![
        "IPv4 ".dark_gray(),
        text(info::IPV4).bold(),
        source.into(),
        "  IPv6 ".dark_gray(),
        text(info::IPV6).bold(),
        "  MAC ".dark_gray(),
        text(info::MAC).into(),
        "  MTU ".dark_gray(),
        text(info::MTU).into(),
        "  up ".dark_gray(),
        duration(picture.sockets.uptime_ms).into(),
    ]);
    let status = match &picture.status {
        Some(error) => Line::from(format!(" device not answering: {error} ").red().bold()),
        None => {
            let every = match picture.interval.as_millis() {
                0 => String::new(),
                ms => format!(", every {ms} ms"),
            };
            Line::from(format!(
                " one refresh: {} requests, {} of JSON, {} ms{every} ",
                picture.cost.requests,
                short_bytes(picture.cost.bytes),
                picture.took.as_millis()
            ))
        }
    };
    Paragraph::new(line).block(
        Block::bordered()
            .title(Line::from(title).bold())
            .title_bottom(status)
            .title_bottom(Line::from(" q quit ").right_aligned()),
    )
}

fn listeners(listeners: &[socklab_host::api::Listener], width: u16) -> Paragraph<'static> {
    let per_line = (width.saturating_sub(2) / LISTENER_WIDTH).max(1) as usize;
    let lines: Vec<Line> = listeners
        .chunks(per_line)
        .map(|chunk| {
            let mut spans = Vec::new();
            for l in chunk {
                spans.push(
                    format!("*:{:<5}", l.port)
                        .fg(service_color(&l.service))
                        .bold(),
                );
                spans.push(format!(" {:<8}", l.service).into());
                spans.push(
                    format!("{:>3} listening {:>3} connected", l.listening, l.connected).into(),
                );
                spans.push(Span::raw("   "));
            }
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines).block(
        Block::bordered()
            .title(" Listening sockets: a server socket per port, waiting for clients "),
    )
}

fn socket_table(frame: &mut Frame, area: Rect, title: &str, sockets: &[&ApiSocket], none: &str) {
    let inner = area.width.saturating_sub(2);
    let fixed: u16 = COLUMNS.iter().sum::<u16>() + COLUMNS.len() as u16;
    let bar = (inner.saturating_sub(fixed) / 2).max(8);
    let shown = (area.height.saturating_sub(3) as usize).min(sockets.len());
    let rows: Vec<Row> = if sockets.is_empty() {
        vec![Row::new([Cell::from(none.to_owned().dark_gray())])]
    } else {
        sockets
            .iter()
            .map(|s| {
                let color = service_color(&s.service);
                Row::new([
                    Cell::from(s.name().fg(color)),
                    Cell::from(
                        s.local
                            .map_or_else(|| format!("*:{}", s.port), |a| a.to_string()),
                    ),
                    Cell::from(s.remote.map_or_else(|| "*:*".into(), |a| a.to_string())),
                    Cell::from(Span::styled(s.state.clone(), state_style(&s.state))),
                    Cell::from(short_duration(s.state_ms)),
                    Cell::from(gauge(s.rx_queued, s.rx_capacity, bar, Color::Cyan)),
                    Cell::from(gauge(s.tx_queued, s.tx_capacity, bar, Color::Magenta)),
                ])
            })
            .collect()
    };
    let mut title = title.to_owned();
    if shown < sockets.len() {
        title.push_str(&format!("({shown} of {} shown) ", sockets.len()));
    }
    let header = Row::new(["socket", "local", "remote", "state", "for", "in", "out"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = COLUMNS
        .iter()
        .map(|w| Constraint::Length(*w))
        .chain([Constraint::Length(bar), Constraint::Length(bar)]);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

fn backlog(waiting: &[&ApiSocket], picture: &Picture) -> Paragraph<'static> {
    let lines: Vec<Line> = if waiting.is_empty() {
        vec![Line::from(
            "empty: every waiting client has a slot".dark_gray(),
        )]
    } else {
        waiting
            .iter()
            .map(|s| {
                Line::from(vec![
                    format!("{:>3} ", s.position.unwrap_or(0)).bold(),
                    s.remote
                        .map_or_else(|| "?".into(), |a| a.to_string())
                        .into(),
                ])
            })
            .collect()
    };
    let size = picture.info.text(info::LAB_BACKLOG).unwrap_or_default();
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(format!(" Backlog ({} of {size}) ", waiting.len())))
}

/// A ladder as text: `lab slot 3 192.168.69.100:47014` and its steps.
/// `name` is the socket's name while it still serves this peer, else the
/// ladder says `service #index`.
pub fn ladder_lines(ladder: &Ladder, name: Option<String>) -> (Line<'static>, Line<'static>) {
    let color = service_color(&ladder.service);
    let name = name.unwrap_or_else(|| format!("{} #{}", ladder.service, ladder.socket));
    let who = Line::from(vec![
        name.fg(color).bold(),
        format!(
            " {}",
            ladder.remote.map_or_else(String::new, |a| a.to_string())
        )
        .into(),
    ]);
    let t0 = ladder.steps.iter().find_map(|s| s.t_ms).unwrap_or(0);
    let mut spans = vec![Span::raw("  ")];
    for (n, step) in ladder.steps.iter().enumerate() {
        if n > 0 {
            spans.push(" → ".dark_gray());
        }
        spans.push(Span::styled(step.state.clone(), state_style(&step.state)));
        if let Some(t) = step.t_ms {
            spans.push(format!(" +{}", duration(t - t0)).dark_gray());
        }
    }
    (who, Line::from(spans))
}

fn ladders(picture: &Picture, area: Rect) -> Paragraph<'static> {
    let width = area.width.saturating_sub(2).max(1) as usize;
    let mut room = area.height.saturating_sub(2) as usize;
    let mut lines = Vec::new();
    // A socket that only started listening again (no peer) is no connection.
    let connections = picture
        .log
        .ladders()
        .into_iter()
        .filter(|l| l.remote.is_some());
    for ladder in connections.rev() {
        let name = picture
            .sockets
            .sockets
            .iter()
            .find(|s| s.id == ladder.socket && s.remote == ladder.remote)
            .map(ApiSocket::name);
        let (who, steps) = ladder_lines(&ladder, name);
        let needed = 1 + steps.width().div_ceil(width).max(1);
        if needed > room {
            break;
        }
        room -= needed;
        lines.push(who);
        lines.push(steps);
    }
    if lines.is_empty() {
        lines.push(Line::from("no connection yet".dark_gray()));
    }
    Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" State changes, newest first "))
}

fn counters(picture: &Picture) -> Paragraph<'static> {
    let s = &picture.sockets;
    let width = SIDE_WIDTH as usize - 2;
    let row = |key: String, value: String| {
        let gap = width.saturating_sub(key.chars().count() + value.len());
        Line::from(vec![key.dark_gray(), " ".repeat(gap).into(), value.bold()])
    };
    let mut lines: Vec<Line> = [
        (info::LAB_IN_USE.to_owned(), s.lab_in_use),
        (info::LAB_QUEUED.to_owned(), s.lab_queued),
    ]
    .into_iter()
    .chain(s.counters.iter().map(|(k, v)| (k.clone(), *v)))
    .map(|(key, value)| row(key.replace('_', " "), value.to_string()))
    .collect();
    if link_on(picture) {
        // Each row: host→device (in) / device→host (out).
        let both = |name: &str| {
            format!(
                "{}/{}",
                link_count(picture, "rx", name),
                link_count(picture, "tx", name)
            )
        };
        lines.push(row("bad link".into(), "in/out".into()));
        for count in LINK_COUNTS {
            lines.push(row(format!("  {count}"), both(count)));
        }
    }
    Paragraph::new(lines).block(Block::bordered().title(" Counters "))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn durations_and_sizes_read_short() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4250), "4.2 s");
        assert_eq!(duration(187_000), "3 min 7 s");
        assert_eq!(short_duration(850), "850ms");
        assert_eq!(short_duration(4250), "4.2s");
        assert_eq!(short_duration(1_609_000), "26m49s");
        assert_eq!(short_duration(11_220_000), "3h07m");
        assert_eq!(short_bytes(512), "512");
        assert_eq!(short_bytes(1024), "1.0K");
        assert_eq!(short_bytes(262_144), "256K");
        assert_eq!(short_bytes(3 << 20), "3.0M");
    }

    #[test]
    fn gauges_fill_with_the_queue() {
        let text = |l: Line| {
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        };
        assert_eq!(text(gauge(0, 4096, 16, Color::Cyan)), "░░░░░░    0/4.0K");
        assert_eq!(text(gauge(1, 4096, 16, Color::Cyan)), "█░░░░░    1/4.0K");
        assert_eq!(text(gauge(2048, 4096, 16, Color::Cyan)), "███░░░ 2.0K/4.0K");
        assert_eq!(text(gauge(4096, 4096, 16, Color::Cyan)), "██████ 4.0K/4.0K");
        assert_eq!(text(gauge(9, 0, 4, Color::Cyan)), " 9/0");
        assert_eq!(text(gauge(9, 10, 2, Color::Cyan)), "  9/10");
    }
}
