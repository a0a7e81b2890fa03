//! The HTTP server's cases, run on every board with the real `curl` binary
//! (every route, status and error curl can send; keep-alive; `Connection:
//! close`; HTTP/1.0), plus raw kernel sockets for what curl cannot send: a
//! stalled head (408), an HTTP/2.0 request line (505), pipelined requests.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use socklab_app::protocol::HTTP_PORT;

use crate::Dut;

/// Device options every HTTP case starts with: a short request timeout, so
/// the 408 case is quick.
pub const HTTP_OPTIONS: &[&str] = &["--http-request-timeout-ms", "1500"];

/// Declares one `#[test]` per HTTP case for a board.
#[macro_export]
macro_rules! http_cases {
    ($board:expr) => {
        $crate::http_cases!($board;
            routes_answer_with_the_page_and_json,
            head_answers_without_a_body,
            every_error_gets_its_status,
            keep_alive_reuses_one_connection,
            connection_close_and_http_1_0_close,
            pipelined_requests_are_answered_in_order,
            stalled_request_gets_408_and_is_closed,
            http_2_request_line_gets_505,
        );
    };
    ($board:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _area = $crate::area::enter(module_path!());
                let dut = $crate::Dut::start_with($board, $crate::http::HTTP_OPTIONS);
                $crate::http::$case(&dut);
                dut.assert_running();
            }
        )+
    };
}

/// What curl saw.
pub struct Curl {
    /// Status of the last answer.
    pub status: u16,
    /// Head lines of every answer, as curl printed them (`-D -`).
    pub heads: String,
    /// The body (or bodies).
    pub body: Vec<u8>,
    /// curl's `-v` trace.
    pub trace: String,
}

/// The device's HTTP address as the host reaches it.
pub fn http_addr(dut: &Dut) -> SocketAddr {
    dut.addr(HTTP_PORT)
}

/// `http://<device>` for curl.
pub fn base_url(dut: &Dut) -> String {
    format!("http://{}", http_addr(dut))
}

/// Runs the real curl in the device's host network with `args` (URLs are
/// given as paths and completed with the device's address).
pub fn curl(dut: &Dut, args: &[&str]) -> Curl {
    curl_then(dut, args, None)
}

/// Like [`curl`], then (`--next`, curl's options reset, the connection kept
/// if the device kept it) a plain GET of `then`.
pub fn curl_then(dut: &Dut, args: &[&str], then: Option<&str>) -> Curl {
    let base = base_url(dut);
    let common = [
        "-sS",
        "-v",
        "--max-time",
        "10",
        "-D",
        "/dev/stderr",
        "-w",
        "\n%{http_code}",
    ];
    let mut cmd: Vec<String> = common.iter().map(|a| a.to_string()).collect();
    let url = |arg: &str| match arg.starts_with('/') {
        true => format!("{base}{arg}"),
        false => arg.to_owned(),
    };
    cmd.extend(args.iter().map(|a| url(a)));
    if let Some(then) = then {
        cmd.push("--next".into());
        cmd.extend(common.iter().map(|a| a.to_string()));
        cmd.push(url(then));
    }
    let output: Output = dut
        .host_net()
        .run(|| Command::new("curl").args(&cmd).output())
        .expect("enter the device's network namespace")
        .expect("run curl (apt package curl)");
    let mut body = output.stdout;
    let cut = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[cut..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(cut);
    let trace = String::from_utf8_lossy(&output.stderr).into_owned();
    let heads = trace
        .lines()
        .filter(|l| !l.starts_with(['*', '>', '<', '{', '}']))
        .collect::<Vec<_>>()
        .join("\n");
    Curl {
        status,
        heads,
        body,
        trace,
    }
}

/// A header's value in curl's printed head, case-insensitive name.
pub fn header<'h>(heads: &'h str, name: &str) -> Option<&'h str> {
    heads.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        )
    })
}

pub fn routes_answer_with_the_page_and_json(dut: &Dut) {
    let plain = curl(dut, &["/"]);
    assert_eq!(plain.status, 200, "{}", plain.trace);
    let page = String::from_utf8(plain.body.clone()).expect("the page is UTF-8");
    assert!(
        page.starts_with("<!doctype html>"),
        "{}",
        &page[..100.min(page.len())]
    );
    assert_eq!(header(&plain.heads, "content-encoding"), None);
    assert_eq!(
        header(&plain.heads, "content-length"),
        Some(page.len().to_string().as_str())
    );

    let gz = curl(dut, &["--compressed", "/"]);
    assert_eq!(gz.status, 200);
    assert_eq!(header(&gz.heads, "content-encoding"), Some("gzip"));
    assert_eq!(
        gz.body, plain.body,
        "the gzip-coded page decodes to the page"
    );
    let coded: usize = header(&gz.heads, "content-length")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        coded < page.len() / 2,
        "gzip: {coded} of {} bytes",
        page.len()
    );

    let info = curl(dut, &["/api/info"]);
    assert_eq!(info.status, 200);
    assert_eq!(
        header(&info.heads, "content-type"),
        Some("application/json")
    );
    assert_eq!(header(&info.heads, "transfer-encoding"), Some("chunked"));
    let info = json(&info.body);
    assert_eq!(info["board"], dut.board_name());
    assert_eq!(
        info["http_sockets"],
        socklab_app::services::http::HTTP_SOCKETS
    );
    // The same facts as INFO says them over the lab protocol.
    let mut lab = dut.lab_client().expect("a lab client");
    let said = lab.info().expect("INFO");
    for key in [
        "lab_slots",
        "lab_backlog",
        "lab_rx_buffer",
        "lab_tx_buffer",
        "sockets",
        "buffer_bytes",
        "mtu",
    ] {
        let number: u64 = said
            .parse(key)
            .unwrap_or_else(|| panic!("INFO has no number for {key}"));
        assert_eq!(info[key], number, "/api/info's {key} against INFO's");
    }
    for key in ["mac", "ipv4", "ipv6", "version"] {
        let text = said.get(key).unwrap_or_else(|| panic!("INFO has no {key}"));
        assert_eq!(info[key], text, "/api/info's {key} against INFO's");
    }
    let accepted_before: u64 = said.parse("conn_accepted").expect("INFO's conn_accepted");

    // One lab client: its socket shows, ESTABLISHED, in a slot.
    let sockets = json(&curl(dut, &["/api/sockets"]).body);
    let list = sockets["sockets"].as_array().expect("a socket list");
    assert!(
        list.len() as u64 >= info["lab_slots"].as_u64().unwrap(),
        "every TCP socket is listed"
    );
    let served: Vec<_> = list
        .iter()
        .filter(|s| s["service"] == "lab" && s["state"] == "ESTABLISHED")
        .collect();
    assert_eq!(served.len(), 1, "{sockets}");
    assert!(served[0]["slot"].is_u64(), "{sockets}");
    assert_eq!(served[0]["role"], "slot");
    assert!(served[0]["remote"].is_string() && served[0]["local"].is_string());
    assert!(list
        .iter()
        .any(|s| s["service"] == "http" && s["state"] == "ESTABLISHED"));
    // The lab client was counted before INFO answered it; nothing else
    // connects to a counted service (HTTP connections are not counted), so
    // /api/sockets and the next INFO say the same.
    let accepted = sockets["counters"]["conn_accepted"].as_u64().unwrap();
    let accepted_after: u64 = lab
        .info()
        .expect("INFO again")
        .parse("conn_accepted")
        .expect("INFO's conn_accepted");
    assert!(
        accepted_before >= 1 && accepted_before == accepted && accepted == accepted_after,
        "conn_accepted: INFO {accepted_before}, then /api/sockets {accepted}, then INFO {accepted_after}"
    );

    // The bad link's counts: every INFO key of it, each 0 on a device
    // without a bad link.
    let link = sockets["badlink"].as_object().expect("a badlink object");
    let mut keys: Vec<&str> = link.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want: Vec<&str> = said
        .entries
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("badlink_"))
        .collect();
    want.sort_unstable();
    assert_eq!(keys, want, "{sockets}");
    assert!(link.values().all(|v| v == 0), "{sockets}");

    // Its history: LISTEN -> SYN-RECEIVED -> ESTABLISHED on that socket.
    let id = served[0]["id"].clone();
    let events = json(&curl(dut, &["/api/events?since=0"]).body);
    let ladder: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["socket"] == id)
        .map(|e| {
            format!(
                "{}>{}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ladder.ends_with(&[
            "LISTEN>SYN-RECEIVED".into(),
            "SYN-RECEIVED>ESTABLISHED".into()
        ]),
        "{ladder:?}"
    );
    let next = events["next"].as_u64().unwrap();
    let later = json(&curl(dut, &[&format!("/api/events?since={next}")]).body);
    assert!(later["events"].as_array().unwrap().is_empty(), "{later}");
    lab.quit().expect("QUIT");
}

pub fn head_answers_without_a_body(dut: &Dut) {
    for path in ["/", "/api/sockets", "/nope"] {
        let get = curl(dut, &[path]);
        let head = curl(dut, &["-I", path]);
        assert_eq!(head.status, get.status, "{path}");
        // curl -I prints the head on stdout: nothing may follow it.
        let printed = String::from_utf8_lossy(&head.body);
        let (_, after) = printed.split_once("\r\n\r\n").expect("a head");
        assert!(after.is_empty(), "HEAD {path} has a body: {after:?}");
        assert_eq!(
            header(&head.heads, "content-length"),
            header(&get.heads, "content-length"),
            "{path}"
        );
        assert_eq!(
            header(&head.heads, "content-type"),
            header(&get.heads, "content-type")
        );
    }
}

pub fn every_error_gets_its_status(dut: &Dut) {
    let long_path = format!("/{}", "a".repeat(600));
    let big_header = format!("X-Big: {}", "b".repeat(1100));
    let cases: [(&str, Vec<&str>, u16, bool); 7] = [
        ("no such route", vec!["/nope"], 404, false),
        ("POST", vec!["-X", "POST", "-d", "x=1", "/"], 405, false),
        ("HTTP/1.1 without Host", vec!["-H", "Host:", "/"], 400, true),
        ("bad since", vec!["/api/events?since=soon"], 400, false),
        ("request line too long", vec![&long_path], 414, true),
        ("head too large", vec!["-H", &big_header, "/"], 431, true),
        (
            "chunked request body",
            vec!["-H", "Transfer-Encoding: chunked", "-d", "x", "/"],
            501,
            true,
        ),
    ];
    for (what, args, status, closes) in cases {
        // A second request on the same connection: served only if the
        // error left it open.
        let seen = curl_then(dut, &args, Some("/api/info"));
        let first = seen
            .heads
            .lines()
            .find(|l| l.starts_with("HTTP/1.1 "))
            .unwrap_or_default();
        assert!(
            first.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {first}\n{}",
            seen.trace
        );
        if status == 405 {
            assert_eq!(header(&seen.heads, "allow"), Some("GET, HEAD"));
        }
        assert_eq!(
            header(&seen.heads, "connection") == Some("close"),
            closes,
            "{what}: Connection: close"
        );
        let reused = seen.trace.contains("Re-using existing connection");
        assert_eq!(reused, !closes, "{what}: connection reused\n{}", seen.trace);
        assert_eq!(seen.status, 200, "{what}: the next request is served");
    }
}

pub fn keep_alive_reuses_one_connection(dut: &Dut) {
    let seen = curl(dut, &["/api/info", "/api/sockets", "/", "/api/events"]);
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.trace.matches("Re-using existing connection").count(),
        3
    );
    assert_eq!(
        seen.trace.matches("Connected to").count(),
        1,
        "{}",
        seen.trace
    );
}

pub fn connection_close_and_http_1_0_close(dut: &Dut) {
    let close = curl(dut, &["-H", "Connection: close", "/api/info", "/api/info"]);
    assert_eq!(close.status, 200);
    assert_eq!(header(&close.heads, "connection"), Some("close"));
    assert!(!close.trace.contains("Re-using existing connection"));
    let old = curl(dut, &["--http1.0", "/api/sockets"]);
    assert_eq!(old.status, 200);
    assert_eq!(
        header(&old.heads, "transfer-encoding"),
        None,
        "no chunks for HTTP/1.0"
    );
    assert_eq!(header(&old.heads, "connection"), Some("close"));
    json(&old.body);
}

/// Connects a raw kernel socket to the device's HTTP port.
fn raw(dut: &Dut) -> TcpStream {
    let stream = dut.connect(HTTP_PORT).expect("connect to port 80");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the device closes (bounded by the read timeout).
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

pub fn pipelined_requests_are_answered_in_order(dut: &Dut) {
    let mut stream = raw(dut);
    let requests = "GET /api/info HTTP/1.1\r\nHost: d\r\n\r\n\
                    HEAD / HTTP/1.1\r\nHost: d\r\n\r\n\
                    GET /nope HTTP/1.1\r\nHost: d\r\n\r\n\
                    GET /api/events?since=0 HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n";
    stream.write_all(requests.as_bytes()).unwrap();
    let all = read_to_close(&mut stream);
    let statuses: Vec<&str> = all.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK"
        ],
        "{all}"
    );
    let info_at = all.find("\"board\"").expect("the info document");
    let head_at = all.find("text/html").expect("the HEAD answer");
    assert!(info_at < head_at, "answers in request order");
    assert!(all.ends_with("0\r\n\r\n"), "the last answer is complete");
}

pub fn stalled_request_gets_408_and_is_closed(dut: &Dut) {
    let mut stream = raw(dut);
    let started = Instant::now();
    stream
        .write_all(b"GET /api/info HTTP/1.1\r\nHost: d\r\n")
        .unwrap();
    let all = read_to_close(&mut stream);
    let took = started.elapsed();
    assert!(all.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{all}");
    assert!(all.contains("Connection: close"));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "408 after {took:?} (timeout 1.5 s)"
    );
    let _ = stream.shutdown(Shutdown::Both);
}

pub fn http_2_request_line_gets_505(dut: &Dut) {
    let mut stream = raw(dut);
    stream
        .write_all(b"GET / HTTP/2.0\r\nHost: d\r\n\r\n")
        .unwrap();
    let all = read_to_close(&mut stream);
    assert!(
        all.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        "{all}"
    );
    // A silent client is closed too: the connection just made ends by itself
    // after the idle timeout is not awaited here; a garbage line is a 400.
    let mut stream = raw(dut);
    stream.write_all(b"\x16\x03\x01 hello\r\n\r\n").unwrap();
    let all = read_to_close(&mut stream);
    assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
}
