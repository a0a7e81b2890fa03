//! Lab byte streams: the fuzzer's bytes, decoded by
//! `common::fuzz::lab_from_bytes` into a pool, a backlog policy, up to five
//! clients and what they do (send bytes, wait, stop or resume reading, close,
//! reset, vanish), are played over real connections; then every client
//! leaves its way, the clock passes every timeout, and the pool must be whole.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The in-process harness of the app's tests, shared as it is.
#[path = "../../tests/common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::fuzz::run_lab(&common::fuzz::lab_from_bytes(data));
});
