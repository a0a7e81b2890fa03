//! The device's status page as a person sees it in a real Chromium: a
//! scripted lab session runs while the test reads what the page renders
//! (the boxes, their labels, the state badges, the buffer bars, the ladder of
//! state changes), never the JSON behind it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;
use socket2::{Domain, Socket, Type};
use socklab_app::protocol::DISCARD_PORT;
use socklab_host::client::{Info, LabClient};
use socklab_host::launch::Network;

use crate::browser::Browser;
use crate::Dut;

/// How long the page may take to show a change (it refreshes every 200 ms).
pub const SHOWS_WITHIN: Duration = Duration::from_secs(5);
/// The refresh rate the page must keep, per second.
pub const MIN_REFRESHES_PER_S: f64 = 4.0;
/// A laptop's window (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 1000);
/// A phone's window, 390 px wide as many are (CSS pixels).
pub const PHONE: (u32, u32) = (390, 1400);
/// The tallest screenshot.
const MAX_SHOT_HEIGHT: u32 = 3000;
/// Lines the client that stops reading asks the device to echo, and their length.
const UNREAD_LINES: usize = 50;
const UNREAD_LINE_LEN: usize = 200;

/// Reads what the page shows: every socket box with its name, badge, tuple
/// and bars; every ladder with its steps; the header and the refresh count.
pub const READ_PAGE: &str = r##"
const q = (root, sel) => root.querySelector(sel);
const text = (root, sel) => (q(root, sel)?.textContent ?? "");
const bar = b => ({ queued: +b.dataset.queued, capacity: +b.dataset.capacity, width: q(b, ".fill").style.width, label: text(b, ".num") });
const box = e => ({
  name: text(e, ".name"), badge: text(e, ".state"), tuple: text(e, ".tuple"),
  service: e.dataset.service, role: e.dataset.role, slot: e.dataset.slot, remote: e.dataset.remote,
  rx: bar(q(e, ".bar.rx")), tx: bar(q(e, ".bar.tx")), iface: e.dataset.iface ?? "",
});
return {
  refreshes: +(document.body.dataset.refreshes || 0),
  board: text(document, "#board"),
  ifaces: [...document.querySelectorAll("#ifaces .iface")].map(e => ({ name: e.dataset.iface, text: e.textContent })),
  status: text(document, "#status"),
  connected: [...document.querySelectorAll("#connected .sock")].map(box),
  closing: [...document.querySelectorAll("#closing .sock")].map(box),
  ladders: [...document.querySelectorAll("#ladders .ladder")].map(l => ({
    who: text(l, ".who"), remote: l.dataset.remote,
    steps: [...l.querySelectorAll(".steps li")].map(li => text(li, ".s")),
    times: [...l.querySelectorAll(".steps li")].map(li => li.dataset.t ?? null),
  })),
  scroll_width: document.documentElement.scrollWidth,
  inner_width: window.innerWidth,
  badlink: {
    on: q(document, "#badlink")?.dataset.on ?? "",
    text: text(document, "#badlink"),
    counts: Object.fromEntries([...document.querySelectorAll("#badlink td[data-key]")]
      .map(td => [td.dataset.key, td.textContent])),
  },
};
"##;

/// How the scripted session's lab clients reach the device (the browser may
/// come another way, e.g. through the 127.0.0.1 forwarder).
pub struct Session<'d> {
    pub dut: &'d Dut,
    /// Where the browser opens the page.
    pub url: String,
    /// Whether a client that stops reading fills the device's output buffer:
    /// only when nothing between them buffers (a TAP; QEMU's user networking
    /// takes the device's output into its own buffers).
    pub buffer_bar: bool,
    /// Where to write screenshots (`<stem>.png`, `<stem>-phone.png`), if anywhere.
    pub screenshots: Option<(PathBuf, &'static str)>,
}

/// What the session measured.
#[derive(Debug)]
pub struct Seen {
    /// Page refreshes per second, measured over 2 s in the browser.
    pub refreshes_per_s: f64,
}

/// The scripted session: three lab clients in their slots, one QUITs (a
/// TIME-WAIT socket, its ladder of state changes in order), one stops
/// reading (its output bar fills) and reads again (the bar drains); the page
/// keeps refreshing ≥ 4×/s and fits a phone's width.
pub fn scripted_session(browser: &Browser, session: &Session) -> Seen {
    let dut = session.dut;
    browser.window_size(DESKTOP.0, DESKTOP.1);
    browser.goto(&session.url);
    let first = browser.wait_for("its first refresh", SHOWS_WITHIN, READ_PAGE, |p| {
        (p["refreshes"].as_u64()? >= 1 && text(&p["board"]).contains(dut.board_name()))
            .then(|| p.clone())
    });
    // This device runs without a bad link: the page says so, with no counts.
    let link = &first["badlink"];
    assert_eq!(text(&link["on"]), "no", "the bad link's panel: {link}");
    assert_eq!(text(&link["text"]), "no bad link", "{link}");
    assert_eq!(link["counts"], serde_json::json!({}), "{link}");

    // Three clients, each in its own slot; the first will stop reading.
    let mut quiet = quiet_client(dut);
    let leaving = dut.lab_client().expect("lab client 2");
    let staying = dut.lab_client().expect("lab client 3");
    let clients = [&quiet, &leaving, &staying];
    let want: Vec<(String, SocketAddr)> = clients
        .iter()
        .map(|c| (format!("lab slot {}", c.greeting().slot), c.greeting().peer))
        .collect();
    browser.wait_for(
        "the three clients in their slots",
        SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            let boxes = p["connected"].as_array()?;
            want.iter()
                .all(|(name, peer)| {
                    boxes.iter().any(|b| {
                        text(&b["name"]) == name
                            && text(&b["badge"]) == "ESTABLISHED"
                            && text(&b["tuple"]).contains(&peer.to_string())
                    })
                })
                .then_some(())
        },
    );

    // QUIT: the device closes first, so its socket waits in TIME-WAIT, shown
    // apart from the slots; the ladder of that connection reads in order.
    let gone = leaving.greeting().peer.to_string();
    leaving.quit().expect("QUIT");
    browser.wait_for(
        "a TIME-WAIT socket after the QUIT",
        SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            let closing = p["closing"].as_array()?;
            let connected = p["connected"].as_array()?;
            let waits = closing
                .iter()
                .any(|b| text(&b["badge"]) == "TIME-WAIT" && text(&b["tuple"]).contains(&gone));
            let left = !connected.iter().any(|b| text(&b["tuple"]).contains(&gone));
            (waits && left).then_some(())
        },
    );
    let ladder = browser.wait_for(
        "the ladder of the connection that QUIT",
        SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            let ladder = p["ladders"]
                .as_array()?
                .iter()
                .find(|l| text(&l["remote"]) == gone)?;
            let steps: Vec<String> = ladder["steps"]
                .as_array()?
                .iter()
                .map(|s| text(s).to_owned())
                .collect();
            steps
                .iter()
                .any(|s| s == "TIME-WAIT")
                .then(|| (steps, ladder["times"].clone()))
        },
    );
    assert_ladder(&ladder.0, &ladder.1);

    // The page keeps refreshing.
    let refreshes_per_s = refresh_rate(browser);
    assert!(
        refreshes_per_s >= MIN_REFRESHES_PER_S,
        "the page refreshed {refreshes_per_s:.1} times a second"
    );

    // One client stops reading while the device answers it: its output
    // buffer fills; once it reads, the buffer drains.
    let quiet_peer = quiet.greeting().peer.to_string();
    let quiet_box = |p: &Value| -> Option<Value> {
        p["connected"]
            .as_array()?
            .iter()
            .find(|b| text(&b["tuple"]).contains(&quiet_peer))
            .cloned()
    };
    if session.buffer_bar {
        let line = format!("ECHO {}\n", "x".repeat(UNREAD_LINE_LEN));
        quiet
            .send_raw(line.repeat(UNREAD_LINES).as_bytes())
            .expect("send the ECHO lines");
        let full = browser.wait_for(
            "the output bar of a client that does not read grow",
            SHOWS_WITHIN,
            READ_PAGE,
            |p| {
                let tx = &quiet_box(p)?["tx"];
                let queued = tx["queued"].as_u64()?;
                (queued * 2 >= tx["capacity"].as_u64()?).then(|| tx.clone())
            },
        );
        assert_ne!(text(&full["width"]), "0%", "the bar is drawn: {full}");
    }
    if let Some((dir, stem)) = &session.screenshots {
        screenshots(browser, dir, stem);
    }
    if session.buffer_bar {
        let answer = "x".repeat(UNREAD_LINE_LEN);
        for n in 0..UNREAD_LINES {
            let line = quiet.read_line().expect("read an ECHO answer");
            assert_eq!(line, answer, "answer {n}");
        }
        browser.wait_for(
            "the output bar drain once the client reads",
            SHOWS_WITHIN,
            READ_PAGE,
            |p| {
                let tx = &quiet_box(p)?["tx"];
                (tx["queued"].as_u64()? == 0 && text(&tx["width"]) == "0%").then_some(())
            },
        );
    }
    let _ = staying.quit();
    let _ = quiet.quit();
    Seen { refreshes_per_s }
}

/// A lab client whose kernel receive buffer is as small as Linux allows, so
/// what it does not read stays in the device's output buffer.
fn quiet_client(dut: &Dut) -> LabClient {
    let addr = dut.lab_addr();
    let stream = dut
        .host_net()
        .run(|| -> std::io::Result<TcpStream> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            socket.set_recv_buffer_size(1)?;
            socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
            Ok(socket.into())
        })
        .expect("enter the device's network")
        .expect("connect the client that will stop reading");
    LabClient::from_stream(stream, Duration::from_secs(10)).expect("its HELLO")
}

/// The ladder of a connection the device closed first: opened (LISTEN →
/// SYN-RECEIVED → ESTABLISHED), then the active close in order up to
/// TIME-WAIT; times never go back.
fn assert_ladder(steps: &[String], times: &Value) {
    let opened = ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"];
    assert!(steps.starts_with(&opened.map(String::from)), "{steps:?}");
    let closing = ["FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT"];
    let rest = &steps[opened.len()..];
    let ranks: Vec<usize> = rest
        .iter()
        .map(|s| {
            closing
                .iter()
                .position(|c| c == s)
                .unwrap_or_else(|| panic!("{s} in the active close: {steps:?}"))
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(
        rest.first().map(String::as_str),
        Some("FIN-WAIT-1"),
        "{steps:?}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("TIME-WAIT"),
        "{steps:?}"
    );
    // The first step is where the socket was; each change after it has its
    // time since the first change.
    let ms: Vec<u64> = times
        .as_array()
        .expect("times")
        .iter()
        .skip(1)
        .map(|t| {
            text(t)
                .parse()
                .unwrap_or_else(|_| panic!("a time on every change: {times}"))
        })
        .collect();
    assert!(ms.windows(2).all(|w| w[0] <= w[1]), "{times}");
}

/// Refreshes per second as the page counts them: the best of up to three
/// 2-second windows that stops at the first one at [`MIN_REFRESHES_PER_S`] (a
/// machine busy with other work can stall the browser for a window; the
/// page's pace is what is measured, not the machine's worst moment).
pub fn refresh_rate(browser: &Browser) -> f64 {
    let count = || {
        browser
            .eval("return +(document.body.dataset.refreshes || 0);")
            .as_u64()
            .unwrap_or(0)
    };
    let mut best = 0.0f64;
    for _ in 0..3 {
        let (n0, t0) = (count(), Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let (n1, t1) = (count(), Instant::now());
        best = best.max(n1.saturating_sub(n0) as f64 / (t1 - t0).as_secs_f64());
        if best >= MIN_REFRESHES_PER_S {
            break;
        }
    }
    best
}

/// Writes the page at a laptop's width and at a phone's, and checks that the
/// phone's needs no sideways scrolling.
fn screenshots(browser: &Browser, dir: &Path, stem: &str) {
    std::fs::create_dir_all(dir).expect("the screenshot directory");
    let desktop = dir.join(format!("{stem}.png"));
    fit_height(browser, DESKTOP.0);
    write_png(&desktop, &browser.screenshot());
    browser.window_size(PHONE.0, PHONE.1);
    // One refresh at the new width.
    let n = browser.eval(READ_PAGE)["refreshes"].as_u64().unwrap_or(0);
    let page = browser.wait_for(
        "a refresh at a phone's width",
        SHOWS_WITHIN,
        READ_PAGE,
        |p| (p["refreshes"].as_u64()? > n).then(|| p.clone()),
    );
    let width = |key: &str| {
        page[key]
            .as_u64()
            .unwrap_or_else(|| panic!("the page reports no {key}: {page}"))
    };
    let (scroll_width, inner_width) = (width("scroll_width"), width("inner_width"));
    assert!(
        scroll_width <= inner_width,
        "at {inner_width} px the page is {scroll_width} px wide"
    );
    fit_height(browser, PHONE.0);
    write_png(
        &dir.join(format!("{stem}-phone.png")),
        &browser.screenshot(),
    );
    browser.window_size(DESKTOP.0, DESKTOP.1);
}

/// Makes the window as tall as the page (up to [`MAX_SHOT_HEIGHT`]), so a
/// screenshot shows all of it.
fn fit_height(browser: &Browser, width: u32) {
    // Twice: the page may lay out taller at the new height.
    for _ in 0..2 {
        let height = browser
            .eval(
                "return Math.ceil(document.documentElement.scrollHeight \
                 + window.outerHeight - window.innerHeight);",
            )
            .as_u64()
            .unwrap_or(1000) as u32;
        browser.window_size(width, height.min(MAX_SHOT_HEIGHT));
    }
}

fn write_png(path: &Path, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "a PNG from the browser");
    std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
}

/// The bad link the page's bad-link test boots its device with: every fault
/// often enough that each count grows within the frames the test moves, a
/// fixed seed, and a dead-peer timeout that outlasts a stalled transfer (see
/// `reliability::bad_link`).
pub const PAGE_BAD_LINK: &[&str] = &[
    "--drop-chance",
    "3",
    "--corrupt-chance",
    "3",
    "--duplicate-chance",
    "3",
    "--reorder-chance",
    "3",
    "--delay-chance",
    "3",
    "--delay-ms",
    "20",
    "--seed",
    "6666",
    "--dead-peer-ms",
    "600000",
];
/// The counts the page shows per direction, as `INFO` names them
/// (`badlink_<rx|tx>_<count>`).
pub const LINK_COUNTS: [&str; 7] = [
    "frames",
    "dropped",
    "corrupted",
    "duplicated",
    "reordered",
    "delayed",
    "held_full",
];
/// The faults: each must grow while data crosses the link.
const LINK_FAULTS: [&str; 5] = ["dropped", "corrupted", "duplicated", "reordered", "delayed"];
/// Bytes written into discard through the bad link: about 1,400 frames to the
/// device and the ACKs back, tens of each fault at 3 %.
const LINK_BYTES: usize = 2 << 20;
/// How long the page may take to show a change through the bad link (a lost
/// frame costs smoltcp at least a second).
const LINK_SHOWS_WITHIN: Duration = Duration::from_secs(90);

/// Every `badlink_*` key of `INFO` this test reads, in order.
fn link_keys() -> Vec<String> {
    ["rx", "tx"]
        .iter()
        .flat_map(|dir| {
            LINK_COUNTS
                .iter()
                .map(move |c| format!("badlink_{dir}_{c}"))
        })
        .collect()
}

/// The bad link's counts as the page renders them, every key of [`link_keys`]
/// as a number, or `None` while the page shows no bad link or lacks a key.
fn page_counts(page: &Value) -> Option<BTreeMap<String, u64>> {
    let link = &page["badlink"];
    if text(&link["on"]) != "yes" {
        return None;
    }
    let shown = link["counts"].as_object()?;
    if shown.len() != link_keys().len() {
        return None;
    }
    link_keys()
        .into_iter()
        .map(|k| {
            let v = text(shown.get(&k)?).parse().ok()?;
            Some((k, v))
        })
        .collect()
}

/// The same keys from `INFO`.
fn info_counts(info: &Info) -> BTreeMap<String, u64> {
    link_keys()
        .into_iter()
        .map(|k| {
            let v = info
                .parse(&k)
                .unwrap_or_else(|| panic!("INFO has no number for {k}: {:?}", info.entries));
            (k, v)
        })
        .collect()
}

/// What the bad-link page test saw.
#[derive(Debug)]
pub struct LinkSeen {
    /// The counts the page showed before the transfer.
    pub before: BTreeMap<String, u64>,
    /// The counts the page showed between the two `INFO`s, after it.
    pub after: BTreeMap<String, u64>,
}

/// The bad link's counts on the page of `dut` (started with
/// [`PAGE_BAD_LINK`]) at `url`: the panel shows every count of both
/// directions; while [`LINK_BYTES`] go into discard, each fault count the
/// page shows grows in both directions; then what the page shows after a
/// refresh that started once `INFO` had answered lies, key by key, between
/// that `INFO` and the next (the same counters, read within one refresh: a
/// count the link did not change in between must be equal).
pub fn bad_link_counts(browser: &Browser, dut: &Dut, url: &str) -> LinkSeen {
    browser.window_size(DESKTOP.0, DESKTOP.1);
    browser.goto(url);
    let before = browser.wait_for(
        "the bad link's counts",
        LINK_SHOWS_WITHIN,
        READ_PAGE,
        page_counts,
    );

    let addr = dut.addr(DISCARD_PORT);
    let mut sink = dut
        .host_net()
        .run(|| TcpStream::connect_timeout(&addr, LINK_SHOWS_WITHIN))
        .expect("enter the device's network")
        .unwrap_or_else(|e| panic!("connect to discard at {addr} through the bad link: {e}"));
    sink.set_write_timeout(Some(LINK_SHOWS_WITHIN))
        .expect("a write timeout");
    sink.write_all(&vec![0x5a; LINK_BYTES])
        .unwrap_or_else(|e| panic!("write {LINK_BYTES} B to discard through the bad link: {e}"));
    drop(sink);
    let grown = browser.wait_for(
        "every fault count grow in both directions",
        LINK_SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            let now = page_counts(p)?;
            ["rx", "tx"]
                .iter()
                .flat_map(|dir| {
                    LINK_FAULTS
                        .iter()
                        .map(move |f| format!("badlink_{dir}_{f}"))
                })
                .all(|k| now[&k] > before[&k])
                .then_some(now)
        },
    );
    assert!(
        link_keys().iter().all(|k| grown[k] >= before[k]),
        "a count fell: before {before:?}, after {grown:?}"
    );

    let mut client = dut.lab_client().expect("a lab client for INFO");
    client.set_timeout(LINK_SHOWS_WITHIN);
    let first = info_counts(&client.info().expect("INFO"));
    let refreshes = browser.eval(READ_PAGE)["refreshes"].as_u64().unwrap_or(0);
    // A refresh in progress may have begun before INFO answered: the second
    // one after it began after.
    let shown = browser.wait_for(
        "a refresh begun after INFO answered",
        LINK_SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            (p["refreshes"].as_u64()? >= refreshes + 2)
                .then(|| page_counts(p))
                .flatten()
        },
    );
    let second = info_counts(&client.info().expect("INFO again"));
    let _ = client.quit();
    for key in link_keys() {
        let (low, on_page, high) = (first[&key], shown[&key], second[&key]);
        assert!(
            low <= on_page && on_page <= high,
            "{key}: the page shows {on_page}, INFO said {low} before that refresh and {high} after"
        );
    }
    LinkSeen {
        before,
        after: shown,
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `docs/screenshots` in the source tree.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

/// The page of a device with two networks, read from the first: its header
/// lists both interfaces with their addresses and counters, and a lab client
/// on each network shows in a socket box that names its interface.
pub fn two_networks_on_the_page(browser: &Browser, dut: &Dut, second: &Network, url: &str) {
    browser.window_size(DESKTOP.0, DESKTOP.1);
    browser.goto(url);
    let alice = dut.lab_client().expect("a lab client on the first network");
    let dave_addr = SocketAddr::new(second.ipv4.into(), socklab_app::protocol::LAB_PORT);
    let dave = LabClient::connect_in(&second.host_net, dave_addr, Duration::from_secs(5))
        .expect("a lab client on the second network");
    let peers = [
        (alice.greeting().peer, "eth0"),
        (dave.greeting().peer, "eth1"),
    ];
    let page = browser.wait_for(
        "both interfaces in the header, each client on its own",
        SHOWS_WITHIN,
        READ_PAGE,
        |p| {
            let ifaces = p["ifaces"].as_array()?;
            let shown = |name: &str, address: &str| {
                ifaces
                    .iter()
                    .any(|i| text(&i["name"]) == name && text(&i["text"]).contains(address))
            };
            let header = shown("eth0", "192.168.69.1/24")
                && shown("eth0", "fdaa::1/64")
                && shown("eth1", "192.168.70.1/24")
                && shown("eth1", "fdab::1/64");
            let boxes = p["connected"].as_array()?;
            let placed = peers.iter().all(|(peer, iface)| {
                boxes.iter().any(|b| {
                    text(&b["tuple"]).contains(&peer.to_string()) && text(&b["iface"]) == *iface
                })
            });
            (header && placed).then(|| p.clone())
        },
    );
    eprintln!(
        "figures: the page's header with two networks: {}",
        page["ifaces"]
    );
    drop((alice, dave));
}
