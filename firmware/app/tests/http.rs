//! Property tests of the HTTP request parser (`socklab_app::services::http::request`):
//! arbitrary bytes and mutated well-formed requests never panic it, the head
//! reader's limits hold for any input, and a well-formed request parses back
//! to what it was made from. (The cargo-fuzz target `http_request` in
//! `fuzz/` runs the same reader and parser on a fuzzer's bytes.)

use proptest::collection::vec;
use proptest::prelude::*;
use socklab_app::services::http::request::{
    parse, query_value, HeadReader, Method, Progress, MAX_REQUEST_HEAD, MAX_REQUEST_LINE,
};

/// Feeds `bytes` to a reader as the server does; parses every complete head.
fn feed(bytes: &[u8]) -> usize {
    let mut reader = HeadReader::new();
    let mut heads = 0;
    for &byte in bytes {
        match reader.push(byte) {
            Progress::More => assert!(reader.head().len() <= MAX_REQUEST_HEAD),
            Progress::Complete => {
                if let Ok(request) = parse(reader.head()) {
                    assert!(request.path.starts_with('/'));
                }
                heads += 1;
                reader.clear();
            }
            Progress::LineTooLong => {
                assert!(!reader.head().contains(&b'\n'));
                assert!(reader.head().len() > MAX_REQUEST_LINE);
                reader.clear();
            }
            Progress::HeadTooLarge => {
                assert_eq!(reader.head().len(), MAX_REQUEST_HEAD);
                reader.clear();
            }
        }
    }
    heads
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,12}"
}

fn request() -> impl Strategy<Value = (String, String, Option<u64>, Vec<(String, String)>)> {
    (
        prop_oneof![
            Just("GET".to_string()),
            Just("HEAD".to_string()),
            "[A-Z]{3,7}"
        ],
        "(/[a-z0-9._-]{0,10}){1,4}",
        proptest::option::of(any::<u64>()),
        vec((token(), "[ -~]{0,30}"), 0..6),
    )
}

fn render(method: &str, path: &str, since: Option<u64>, headers: &[(String, String)]) -> String {
    let mut text = format!("{method} {path}");
    if let Some(since) = since {
        text.push_str(&format!("?since={since}"));
    }
    text.push_str(" HTTP/1.1\r\nHost: device\r\n");
    for (name, value) in headers {
        text.push_str(&format!("X-{name}: {}\r\n", value.trim()));
    }
    text.push_str("\r\n");
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..3000)) {
        feed(&bytes);
        let _ = parse(&bytes);
    }

    #[test]
    fn well_formed_requests_parse_back((method, path, since, headers) in request()) {
        let text = render(&method, &path, since, &headers);
        prop_assume!(text.len() <= MAX_REQUEST_HEAD);
        let mut reader = HeadReader::new();
        let mut last = Progress::More;
        for &b in text.as_bytes() {
            last = reader.push(b);
        }
        prop_assert_eq!(last, Progress::Complete);
        let request = parse(reader.head()).expect("a well-formed request");
        prop_assert_eq!(request.path, path.as_str());
        let expected = match method.as_str() { "GET" => Method::Get, "HEAD" => Method::Head, _ => Method::Other };
        prop_assert_eq!(request.method, expected);
        prop_assert_eq!(query_value(request.query, "since").map(|s| s.parse::<u64>().unwrap()), since);
        prop_assert!(request.keep_alive);
    }

    #[test]
    fn mutated_requests_never_panic(
        (method, path, since, headers) in request(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        pipelined in 1usize..4,
    ) {
        let mut bytes = render(&method, &path, since, &headers).into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let stream: Vec<u8> = bytes.iter().copied().cycle().take(bytes.len() * pipelined).collect();
        feed(&stream);
    }
}
