//! Benchmarks of the application's poll loop over the in-memory link of
//! `tests/common`: an idle poll of a big pool, one lab round trip, and bytes
//! pushed through the echo service.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration as StdDuration;

use common::{device, Net};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use socklab_app::protocol::ECHO_PORT;
use socklab_app::{BulkSizes, ClosingSizes, Config, Iperf2Sizes, Iperf3Sizes, LabSizes, Sizes};

/// The linux-tap board's lab pool (64 slots), with bulk buffers that let one
/// connection keep a 64 KiB window open.
const BENCH: Sizes = Sizes {
    lab: LabSizes {
        backlog: 0,
        slots: 64,
        rx: 1024,
        tx: 4096,
    },
    bulk: BulkSizes {
        slots: 4,
        rx: 64 * 1024,
        tx: 64 * 1024,
    },
    iperf3: Iperf3Sizes {
        sockets: 0,
        rx: 0,
        tx: 0,
    },
    iperf2: Iperf2Sizes { sockets: 0, rx: 0 },
    closing: ClosingSizes { lab: 16, bulk: 2 },
};

/// Bytes pushed through echo per iteration of the throughput bench.
const BULK_BYTES: usize = 1024 * 1024;

fn idle_poll(c: &mut Criterion) {
    let mut net = Net::new(Config::default(), BENCH);
    net.settle();
    c.bench_function("poll/idle_64_lab_slots", |b| b.iter(|| net.poll_app()));
}

fn echo_round_trip(c: &mut Criterion) {
    let mut net = Net::new(Config::default(), BENCH);
    let (mut conn, _) = net.lab(false);
    c.bench_function("poll/lab_echo_round_trip", |b| {
        b.iter(|| {
            let line = net.ask(&mut conn, "ECHO ping");
            assert_eq!(line, "ping");
        })
    });
}

fn echo_throughput(c: &mut Criterion) {
    let mut net = Net::new(Config::default(), BENCH);
    let mut conn = net.connect(device(false, ECHO_PORT));
    net.socket(&conn).set_ack_delay(None);
    let data: Vec<u8> = (0..BULK_BYTES).map(|i| (i % 251) as u8).collect();

    let mut group = c.benchmark_group("poll");
    group.throughput(Throughput::Bytes(BULK_BYTES as u64));
    group.sample_size(20);
    group.bench_function("echo_1MiB", |b| {
        b.iter(|| {
            let mut sent = 0;
            let mut received = 0;
            let done = net.run_until(600_000, |net| {
                let socket = net.socket(&conn);
                if sent < data.len() && socket.can_send() {
                    sent += socket.send_slice(&data[sent..]).unwrap();
                }
                received += net.pull(&mut conn);
                conn.inbox.clear();
                received == data.len()
            });
            assert!(done, "{received} of {BULK_BYTES} bytes back");
        })
    });
    group.finish();
}

/// Short runs: `cargo bench -p socklab-app` finishes in seconds; pass
/// criterion's `--measurement-time` for steadier figures.
fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = short();
    targets = idle_poll, echo_round_trip, echo_throughput
}
criterion_main!(benches);
