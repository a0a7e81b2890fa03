//! Benchmarks of the lab protocol's parsers: command lines as the device reads
//! them, and the device's lines as the host tools read them.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use socklab_app::protocol::{parse_info, Command, From, Hello, NetstatRow, WhoRow};

/// Lines a lab client typically sends, one of each kind.
const COMMANDS: [&[u8]; 9] = [
    b"ECHO hello world",
    b"SAY the quick brown fox jumps over the lazy dog\r",
    b"WHO",
    b"netstat",
    b"Info\r",
    b"QUIT",
    b"",
    b"BOGUS command",
    b"ECHO xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

fn commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("command");
    group.throughput(Throughput::Elements(COMMANDS.len() as u64));
    group.bench_function("parse_typical_lines", |b| {
        b.iter(|| {
            for line in COMMANDS {
                black_box(Command::parse(black_box(line)));
            }
        })
    });
    group.finish();
}

fn device_lines(c: &mut Criterion) {
    let hello_v4 = "HELLO socklab/0.1.0 slot=12 peer=192.168.69.100:40000 local=192.168.69.1:6666";
    let hello_v6 = "HELLO socklab/0.1.0 slot=63 peer=[fdaa::100]:54321 local=[fdaa::1]:6666";
    let listen = "tcp *:6666 *:* LISTEN 0 0";
    let established = "tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 17 4096";
    let established_v6 = "tcp [fdaa::1]:7 [fdaa::100]:40001 CLOSE-WAIT 0 262144";
    let from = "FROM [fdaa::100]:54321 hello everyone";
    let who = "3 192.168.69.100:40003";
    let info = "lab_in_use=12";

    let mut group = c.benchmark_group("parse");
    group.bench_function("hello_v4", |b| b.iter(|| Hello::parse(black_box(hello_v4))));
    group.bench_function("hello_v6", |b| b.iter(|| Hello::parse(black_box(hello_v6))));
    group.bench_function("netstat_listen", |b| {
        b.iter(|| NetstatRow::parse(black_box(listen)))
    });
    group.bench_function("netstat_established", |b| {
        b.iter(|| NetstatRow::parse(black_box(established)))
    });
    group.bench_function("netstat_established_v6", |b| {
        b.iter(|| NetstatRow::parse(black_box(established_v6)))
    });
    group.bench_function("from", |b| b.iter(|| From::parse(black_box(from))));
    group.bench_function("who", |b| b.iter(|| WhoRow::parse(black_box(who))));
    group.bench_function("info", |b| b.iter(|| parse_info(black_box(info))));
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
    targets = commands, device_lines
}
criterion_main!(benches);
