//! A report with made-up runs on two targets, for the tests of the model,
//! its text and its chart.

use crate::bench::report::Report;
use crate::bench::stats::Percentiles;
use crate::bench::throughput::{Direction, Sample, ThroughputRun};
use crate::bench::{ConnectRun, LatencyRun, Options, Results, Target};
use crate::netns::HostNet;

pub(crate) fn target(name: &str) -> Target {
    Target {
        name: name.into(),
        description: format!("the {name}"),
        board: "test".into(),
        net: HostNet::Current,
        ip: "192.168.69.1".parse().unwrap(),
        forwarded: Vec::new(),
        pid: Some(42),
        mtu: Some(1500),
        lab_slots: None,
        bulk_buffers: None,
    }
}

pub(crate) fn tput(direction: Direction, gbps: f64) -> ThroughputRun {
    ThroughputRun {
        direction,
        bytes: (gbps * 1e9 / 8.0) as u64,
        sent_bytes: 0,
        elapsed_s: 1.0,
        gbps,
        series: vec![Sample { t_s: 0.1, gbps }],
    }
}

pub(crate) fn results(scale: f64) -> Results {
    let mut samples: Vec<u64> = (1..=100)
        .map(|i| (i as f64 * 1000.0 * scale) as u64)
        .collect();
    Results {
        throughput: [1.0, 3.0, 2.0]
            .iter()
            .map(|g| tput(Direction::HostToDevice, g * scale))
            .collect(),
        latency: vec![LatencyRun {
            pinning: crate::bench::latency::Pinning {
                cpu: Some(1),
                target_pinned: true,
            },
            message_bytes: 64,
            round_trips: 100,
            percentiles: Percentiles::of_nanos(&mut samples),
            samples_ns: samples,
        }],
        connect: vec![ConnectRun {
            clients: 4,
            connections: 100,
            failures: 1,
            elapsed_s: 1.0,
            per_sec: 100.0 * scale,
            cycle: Percentiles::default(),
            first_error: Some("refused".into()),
        }],
        concurrency: Vec::new(),
    }
}

pub(crate) fn report() -> Report {
    Report::new(
        "socklab bench".into(),
        0,
        Options {
            pin: Some(1),
            ..Options::default()
        },
        vec![target("device"), target("kernel")],
        vec![results(1.0), results(4.0)],
    )
}
