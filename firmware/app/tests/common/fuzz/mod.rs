//! Fuzzing: what the property tests (`tests/fuzz.rs`) and the cargo-fuzz
//! targets (`fuzz/`) feed the device, how a case is run, and the check that
//! the pool is whole afterwards.
//!
//! Inputs are plain data: the property tests build them with proptest
//! strategies, the fuzz targets decode them from the fuzzer's bytes
//! ([`frames_from_bytes`], [`lab_from_bytes`]); both run them with
//! [`run_frames`] and [`run_lab`]. A case is whatever the device does with its
//! input, then every client gone (reset, closed, vanished, or lingering
//! silently), the clock driven past every timeout, and
//! [`Net::assert_pool_whole`](crate::common::Net::assert_pool_whole).
//!
//! One job a file: [`session`] the frames cases, [`mutate`] the mutations,
//! [`lab`] the lab cases, [`check`] the check, [`pool`] reused pool storage,
//! [`decode`] a fuzzer's bytes.

mod check;
mod decode;
mod lab;
mod mutate;
mod pool;
mod session;

// Each target (test, bench, fuzz target) uses a part of these.
#[allow(unused_imports)]
pub use decode::*;
pub use lab::*;
pub use mutate::*;
pub use pool::PooledNet;
pub use session::*;

use socklab_app::{
    BacklogPolicy, BulkSizes, ClosingSizes, Config, Iperf2Sizes, Iperf3Sizes, LabSizes, Sizes,
    Timeouts,
};

/// A tiny pool: two slots, one backlog place, one socket per bulk
/// service, buffers so small that windows close after a few lines.
pub const FUZZ_SIZES: Sizes = Sizes {
    lab: LabSizes {
        slots: 2,
        backlog: 1,
        rx: 128,
        tx: 512,
    },
    bulk: BulkSizes {
        slots: 1,
        rx: 256,
        tx: 256,
    },
    iperf3: Iperf3Sizes {
        sockets: 0,
        rx: 0,
        tx: 0,
    },
    iperf2: Iperf2Sizes { sockets: 0, rx: 0 },
    closing: ClosingSizes { lab: 1, bulk: 1 },
};

/// Short timeouts, so that a case frees everything in a few simulated
/// seconds.
pub const FUZZ_TIMEOUTS: Timeouts = Timeouts {
    idle_ms: 2_000,
    slow_reader_ms: 1_000,
    handshake_ms: 1_000,
    closing_ms: 1_000,
    keep_alive_ms: 1_000,
    dead_peer_ms: 3_000,
    http_request_ms: 1_000,
    http_idle_ms: 2_000,
};

/// How long a case lets pass once its clients are gone: longer than any
/// chain of [`FUZZ_TIMEOUTS`] (a waiting client promoted, then idle, then
/// closing), and than smoltcp's neighbor-cache lifetime (60 s), so that a
/// neighbor entry an injected ARP or NDISC frame poisoned has expired too.
pub const DRAIN_MS: u64 = 65_000;

/// The device's config for fuzzing: defaults, [`FUZZ_TIMEOUTS`], `backlog`.
pub fn fuzz_config(backlog: BacklogPolicy) -> Config {
    Config {
        timeouts: FUZZ_TIMEOUTS,
        backlog,
        ..Config::default()
    }
}
