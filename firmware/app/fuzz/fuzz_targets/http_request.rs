//! The HTTP request parser on a fuzzer's bytes: the head reader takes them
//! byte by byte (as the server does) and every head it completes is parsed.
//! Neither may panic; a parsed request's path is always from `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socklab_app::services::http::request::{parse, HeadReader, Progress};

fuzz_target!(|data: &[u8]| {
    let mut reader = HeadReader::new();
    for &byte in data {
        match reader.push(byte) {
            Progress::More => {}
            Progress::Complete => {
                if let Ok(request) = parse(reader.head()) {
                    assert!(request.path.starts_with('/'));
                }
                reader.clear();
            }
            Progress::LineTooLong | Progress::HeadTooLarge => reader.clear(),
        }
    }
});
