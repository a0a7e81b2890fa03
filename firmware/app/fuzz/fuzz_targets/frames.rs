//! Frames into the device: the fuzzer's bytes, decoded by
//! `common::fuzz::frames_from_bytes` into raw frames, Ethernet and IP
//! payloads, mutated real frames and hand-made TCP segments (each followed by
//! a pause), are injected into a live session; then every client is gone,
//! the clock passes every timeout, and the pool must be whole.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The in-process harness of the app's tests, shared as it is.
#[path = "../../tests/common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::fuzz::run_frames(&common::fuzz::frames_from_bytes(data));
});
