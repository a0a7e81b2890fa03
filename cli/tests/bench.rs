//! `socklab bench` end to end, without a device: the kernel baseline's own
//! server, started in a namespace of the test's, stands in for the device at
//! ADDR, and `--baseline kernel` measures the real baseline next to it.
//! Needs root (namespaces, a veth pair): fails without it, saying so
//! (`scripts/test` runs as root).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use socklab_host::bench::kernel::{NETNS_PREFIX, READY_LINE, SERVER_SUBCOMMAND};
use socklab_host::netns::{is_root, Netns};

const SOCKLAB: &str = env!("CARGO_BIN_EXE_socklab");

/// The concurrency clients of the run.
const CONCURRENCY: u32 = 8;
/// Figure, unit, the range a kernel server on a loopback reaches on any
/// machine (slow or fast, busy or not), and the most the two targets, one
/// server measured twice, may differ on it, as a factor: 0.3 s throughput
/// runs on a busy machine scatter far more than the rates and latencies.
const SANE_RANGES: &[(&str, &str, f64, f64, f64)] = &[
    ("throughput.host_to_device", "Gbit/s", 0.05, 400.0, 10.0),
    ("throughput.device_to_host", "Gbit/s", 0.05, 400.0, 10.0),
    ("throughput.echo", "Gbit/s", 0.05, 400.0, 10.0),
    ("latency.p50", "µs", 1.0, 20_000.0, 3.0),
    ("connect.rate", "conn/s", 50.0, 1_000_000.0, 3.0),
    ("concurrency.rate", "req/s", 100.0, 10_000_000.0, 3.0),
];

fn bench_namespaces() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(NETNS_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bench_measures_a_server_at_addr_against_the_kernel_and_cleans_up() {
    assert!(
        is_root(),
        "this test needs root (a namespace and a veth pair): run it as root, e.g. with scripts/test"
    );
    let before = bench_namespaces();
    let ns = Netns::create_unique("socklab-bt").unwrap();
    let mut server = ns
        .command(SOCKLAB)
        .args([SERVER_SUBCOMMAND, "--bind", "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.starts_with(READY_LINE), "{ready:?}");
    let dir = std::env::temp_dir().join(format!("socklab-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("bench.svg");
    let started = Instant::now();
    let output = Command::new(SOCKLAB)
        .args(["--netns", ns.name(), "bench", "127.0.0.1", "all"])
        .args(["--baseline", "kernel", "--runs", "1", "--duration", "0.3"])
        .args(["--count", "300", "--clients", "2", "--concurrency"])
        .arg(CONCURRENCY.to_string())
        .args(["--device-pid", &server.id().to_string(), "--pin", "0"])
        .args(["--no-progress", "--json", "--plot"])
        .arg(&plot)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    drop(ns);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let figure = |key: &str| {
        json["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("no figure {key}"))
            .clone()
    };
    // Both targets are the kernel's own server on a loopback in one
    // namespace: every value is in the range such a server reaches on any
    // machine, the two targets agree within a factor, and each ratio is the
    // quotient of its values.
    for (key, unit, low, high, factor) in SANE_RANGES {
        let f = figure(key);
        assert_eq!(f["unit"], *unit, "{key}: {f}");
        let mut values = [0.0; 2];
        for (i, target) in ["device", "kernel"].into_iter().enumerate() {
            let v = &f["values"][target];
            let value = v["value"].as_f64().unwrap_or_else(|| panic!("{key}: {f}"));
            assert!(
                (*low..=*high).contains(&value),
                "{key} on {target}: {value} {unit}, outside {low}..={high}"
            );
            let (min, max) = (v["min"].as_f64().unwrap(), v["max"].as_f64().unwrap());
            assert!(min <= value && value <= max, "{key} on {target}: {v}");
            values[i] = value;
        }
        let ratio = f["ratio"].as_f64().unwrap_or_else(|| panic!("{key}: {f}"));
        println!(
            "figures: bench {key}: {} and {} {unit}, ratio {ratio:.2}",
            values[0], values[1]
        );
        assert!(
            (ratio - values[0] / values[1]).abs() <= 1e-9 * ratio.abs(),
            "{key}: ratio {ratio}, values {values:?}"
        );
        assert!(
            (1.0 / factor..=*factor).contains(&ratio),
            "{key}: the same server measured {ratio:.2}× itself ({values:?})"
        );
    }
    for target in ["device", "kernel"] {
        let value = |key: &str| figure(key)["values"][target]["value"].as_f64().unwrap();
        // Percentiles in order.
        for keys in [
            &[
                "latency.p50",
                "latency.p90",
                "latency.p99",
                "latency.p99_9",
                "latency.max",
            ][..],
            &["concurrency.p50", "concurrency.p99", "concurrency.p99_9"],
        ] {
            let ladder: Vec<f64> = keys.iter().map(|k| value(k)).collect();
            assert!(
                ladder.windows(2).all(|w| w[0] <= w[1]),
                "{target}: {keys:?} out of order: {ladder:?}"
            );
        }
        // Little's law: CONCURRENCY clients, each with one request in
        // flight, make rate × mean latency = CONCURRENCY requests in
        // flight; the median latency is at most about the mean.
        let in_flight = value("concurrency.rate") * value("concurrency.p50") / 1e6;
        assert!(
            (CONCURRENCY as f64 * 0.05..=CONCURRENCY as f64 * 1.5).contains(&in_flight),
            "{target}: {} req/s at a median of {} µs make {in_flight:.2} requests in flight, \
             {CONCURRENCY} clients ran",
            value("concurrency.rate"),
            value("concurrency.p50")
        );
    }
    assert_eq!(figure("connect.failures")["values"]["device"]["value"], 0.0);
    assert_eq!(
        figure("concurrency.errors")["values"]["kernel"]["value"],
        0.0
    );
    let latency = &json["targets"][0]["results"]["latency"][0];
    assert_eq!(latency["pinning"]["cpu"], 0);
    assert_eq!(latency["pinning"]["target_pinned"], true);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // A throughput panel per target, on its own scale, titled with its MTU;
    // the latency panel names the concurrency clients.
    for title in [
        "Throughput over time, median run: device (",
        "Throughput over time, median run: kernel (linux-kernel)",
        "Latency CDF, echo pinned to CPU 0",
        "device lab ECHO, 8 clients",
    ] {
        assert!(svg.contains(title), "no {title:?} in the chart:\n{svg}");
    }
    assert!(svg.contains("MTU "), "{svg}");
    // The Markdown of the saved JSON.
    let saved = dir.join("bench.json");
    std::fs::write(&saved, &output.stdout).unwrap();
    let md = Command::new(SOCKLAB)
        .args(["bench", "--markdown-from"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.contains("| workload | figure | device | kernel | device/kernel |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bench_namespaces(), before, "namespaces left behind");
}
