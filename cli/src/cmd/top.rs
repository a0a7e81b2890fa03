//! `socklab top ADDR`: the device's sockets live in a terminal, from the JSON
//! API its web page reads (`/api/info`, `/api/sockets`, `/api/events` on port
//! 80), refreshed 5 times a second; `--once` prints one frame as text.

mod view;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::{DefaultTerminal, Terminal};
use socklab_app::protocol::HTTP_PORT;
use socklab_host::api::{ApiClient, ApiError, Cost, EventLog, EventsDoc, Info, SocketsDoc};

use super::Global;

/// Help text of `top`'s `ADDR`.
const TOP_ADDR_HELP: &str = "The device's web server: HOST, HOST:PORT or [IPV6]:PORT; without a \
     port, 80. `socklab run tap` forwards it to 127.0.0.1:10080";

/// How often `/api/info` is read again (it changes little; uptime and
/// counters come with `/api/sockets`).
const INFO_EVERY: Duration = Duration::from_secs(2);
/// How long the screen waits for a key before it looks for a new picture.
const KEY_WAIT: Duration = Duration::from_millis(50);

/// Arguments of `socklab top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_parser = parse_http_addr, help = TOP_ADDR_HELP)]
    pub addr: SocketAddr,

    /// Print one frame as plain text to stdout and exit (no terminal needed).
    #[arg(long)]
    pub once: bool,

    /// Milliseconds between refreshes.
    #[arg(long, value_name = "MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(50..=10_000))]
    pub interval: u64,

    /// --once: columns of the frame.
    #[arg(long, value_name = "COLS", default_value_t = 120,
          value_parser = clap::value_parser!(u16).range(60..=1000))]
    pub width: u16,

    /// --once: rows of the frame (default: enough for every socket).
    #[arg(long, value_name = "ROWS",
          value_parser = clap::value_parser!(u16).range(20..=1000))]
    pub height: Option<u16>,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// `ADDR` with port 80 by default.
fn parse_http_addr(s: &str) -> Result<SocketAddr, socklab_host::addr::AddrError> {
    socklab_host::addr::parse_addr_or(s, HTTP_PORT)
}

/// Everything one frame shows.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The address asked.
    pub addr: SocketAddr,
    /// `/api/info`, read every [`INFO_EVERY`].
    pub info: Info,
    /// The last `/api/sockets`.
    pub sockets: SocketsDoc,
    /// The state changes seen so far.
    pub log: EventLog,
    /// Time between refreshes (zero for `--once`).
    pub interval: Duration,
    /// What the last refresh cost.
    pub cost: Cost,
    /// How long the last refresh took.
    pub took: Duration,
    /// Why the last refresh failed, if it did (the picture is the last good one).
    pub status: Option<String>,
}

/// One refresh's documents.
struct Update {
    info: Option<Info>,
    sockets: SocketsDoc,
    events: EventsDoc,
    cost: Cost,
    took: Duration,
}

/// Reads the documents of one refresh: info if asked, sockets, and the
/// events since `since`.
fn fetch(client: &mut ApiClient, with_info: bool, since: u64) -> Result<Update, ApiError> {
    let start = Instant::now();
    let info = with_info.then(|| client.info()).transpose()?;
    let sockets = client.sockets()?;
    let events = client.events(since)?;
    Ok(Update {
        info,
        sockets,
        events,
        cost: client.take_cost(),
        took: start.elapsed(),
    })
}

impl Picture {
    /// The first picture: every document read once, from event 0.
    fn first(client: &mut ApiClient, interval: Duration) -> Result<Picture, ApiError> {
        let update = fetch(client, true, 0)?;
        let mut log = EventLog::default();
        log.add(update.events);
        Ok(Picture {
            addr: client.addr(),
            info: update.info.unwrap_or_default(),
            sockets: update.sockets,
            log,
            interval,
            cost: update.cost,
            took: update.took,
            status: None,
        })
    }

    fn apply(&mut self, update: Result<Update, String>) {
        match update {
            Ok(update) => {
                if let Some(info) = update.info {
                    self.info = info;
                }
                self.sockets = update.sockets;
                self.log.add(update.events);
                self.cost = update.cost;
                self.took = update.took;
                self.status = None;
            }
            Err(error) => self.status = Some(error),
        }
    }
}

/// Runs `socklab top`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    if !args.once && !std::io::stdout().is_terminal() {
        eprintln!(
            "socklab: top draws a live picture in a terminal, and stdout is not one: run it in \
             a terminal, or add --once to print one frame as text"
        );
        return Ok(ExitCode::from(2));
    }
    let interval = match args.once {
        true => Duration::ZERO,
        false => Duration::from_millis(args.interval),
    };
    let mut client = ApiClient::new(global.host_net(), args.addr, global.timeout());
    let picture = Picture::first(&mut client, interval)?;
    if args.once {
        let height = args
            .height
            .unwrap_or_else(|| view::rows_for_everything(&picture, args.width));
        print!("{}", render_text(&picture, args.width, height)?);
        return super::ok();
    }
    live(client, picture)
}

/// One frame, `width` × `height`, as plain text lines (trailing spaces cut).
pub fn render_text(picture: &Picture, width: u16, height: u16) -> anyhow::Result<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    terminal.draw(|frame| view::draw(frame, picture))?;
    Ok(buffer_text(terminal.backend().buffer()))
}

fn buffer_text(buffer: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The live screen: a thread reads the API every interval; this one draws
/// and waits for q, Esc or Ctrl-C. The terminal is restored on every way
/// out (ratatui's panic hook restores it on a panic).
fn live(client: ApiClient, mut picture: Picture) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        // SIGTERM, SIGHUP (and SIGINT, should raw mode let one through).
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install the signal handler")?;
    }
    let (tx, rx) = mpsc::channel();
    let since = picture.log.next();
    let interval = picture.interval;
    std::thread::Builder::new()
        .name("top: fetch".into())
        .spawn(move || refresh_loop(client, since, interval, tx))
        .context("start the refresh thread")?;
    let mut terminal = ratatui::try_init().context("set up the terminal")?;
    let result = screen(&mut terminal, &mut picture, &rx, &stop);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

fn screen(
    terminal: &mut DefaultTerminal,
    picture: &mut Picture,
    updates: &mpsc::Receiver<Result<Update, String>>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    loop {
        terminal.draw(|frame| view::draw(frame, picture))?;
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if event::poll(KEY_WAIT)? {
            if let Event::Key(key) = event::read()? {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c;
                if key.kind == KeyEventKind::Press && quit {
                    return Ok(());
                }
            }
        }
        for update in updates.try_iter() {
            picture.apply(update);
        }
    }
}

/// Reads the API every `interval` and hands each result over, until the
/// screen is gone.
fn refresh_loop(
    mut client: ApiClient,
    mut since: u64,
    interval: Duration,
    updates: mpsc::Sender<Result<Update, String>>,
) {
    let mut info_at = Instant::now();
    loop {
        let start = Instant::now();
        let with_info = info_at.elapsed() >= INFO_EVERY;
        let update = fetch(&mut client, with_info, since).map_err(|e| e.to_string());
        if let Ok(update) = &update {
            since = update.events.next;
            if with_info {
                info_at = Instant::now();
            }
        }
        if updates.send(update).is_err() {
            return;
        }
        std::thread::sleep(interval.saturating_sub(start.elapsed()));
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn picture() -> Picture {
        let info: Info =
            serde_json::from_str(include_str!("../../../host-tools/testdata/api/info.json"))
                .unwrap();
        let sockets: SocketsDoc = serde_json::from_str(include_str!(
            "../../../host-tools/testdata/api/sockets.json"
        ))
        .unwrap();
        let events: EventsDoc =
            serde_json::from_str(include_str!("../../../host-tools/testdata/api/events.json"))
                .unwrap();
        let mut log = EventLog::default();
        log.add(events);
        Picture {
            addr: "192.168.69.1:80".parse().unwrap(),
            info,
            sockets,
            log,
            interval: Duration::from_millis(200),
            cost: Cost {
                requests: 3,
                bytes: 28_000,
            },
            took: Duration::from_millis(4),
            status: None,
        }
    }

    #[test]
    fn a_frame_shows_every_part_of_the_picture() {
        let p = picture();
        let height = view::rows_for_everything(&p, 120);
        let text = render_text(&p, 120, height).unwrap();
        for needed in [
            "linux-tap 0.1.0",
            "192.168.69.1/24",
            "fdaa::1/64",
            "*:6666",
            "lab slot 4",
            "[fdaa::100]:53330",
            "192.168.69.100:46988",
            "echo #80",
            "ESTABLISHED",
            "FIN-WAIT-2",
            "conn accepted",
            "Backlog",
            "TIME-WAIT",
        ] {
            assert!(text.contains(needed), "no {needed:?} in\n{text}");
        }
        assert_eq!(text.lines().count(), height as usize);
        assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");
    }

    #[test]
    fn the_counters_show_the_bad_link_only_when_it_runs() {
        let mut p = picture();
        let text = render_text(&p, 120, view::rows_for_everything(&p, 120)).unwrap();
        assert!(!text.contains("bad link"), "{text}");
        for (dir, base) in [("rx", 1000), ("tx", 2000)] {
            for (n, count) in ["frames", "dropped", "corrupted", "duplicated", "reordered"]
                .into_iter()
                .chain(["delayed", "held_full"])
                .enumerate()
            {
                p.sockets
                    .badlink
                    .insert(format!("badlink_{dir}_{count}"), base + n as u64);
            }
        }
        let height = view::rows_for_everything(&p, 120);
        let text = render_text(&p, 120, height).unwrap();
        assert_eq!(text.lines().count(), height as usize);
        for needed in [
            "│bad link              in/out│",
            "│  frames           1000/2000│",
            "│  dropped          1001/2001│",
            "│  corrupted        1002/2002│",
            "│  duplicated       1003/2003│",
            "│  reordered        1004/2004│",
            "│  delayed          1005/2005│",
        ] {
            assert!(text.contains(needed), "no {needed:?} in\n{text}");
        }
    }

    #[test]
    fn any_terminal_size_draws_without_a_panic() {
        let mut p = picture();
        // Connected sockets with bytes queued in both buffers: the gauges fill.
        for s in p.sockets.sockets.iter_mut().filter(|s| s.remote.is_some()) {
            s.rx_queued = 10;
            s.tx_queued = s.tx_capacity;
        }
        for width in [1, 2, 10, 30, 59, 80, 200] {
            for height in [1, 3, 10, 19, 25, 60] {
                let text = render_text(&p, width, height).unwrap();
                assert_eq!(text.lines().count(), height as usize);
            }
        }
    }

    #[test]
    fn an_error_keeps_the_picture_and_says_so() {
        let mut p = picture();
        p.apply(Err("connection refused".into()));
        let text = render_text(&p, 100, 40).unwrap();
        assert!(
            text.contains("device not answering: connection refused"),
            "{text}"
        );
        assert!(text.contains("lab slot 1"), "{text}");
    }
}
