//! Checksum and segmentation offloads on the TAP board (`IFF_VNET_HDR`):
//! 64 MiB through echo each way, byte-exact, over IPv4 and IPv6 with offloads
//! on and off; the frame counters show super-frames were used (or not); a
//! capture of super-frames opens in tshark with wall-clock times; the bad link
//! and the rate limit turn offloads off and say so. Needs root and tshark.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use socklab_app::protocol::{info, ECHO_PORT};
use socklab_tests::{BoardKind, Dut};

/// Bytes through echo per address family and setting: 64 MiB up and the same
/// 64 MiB back down.
const BYTES: usize = 64 << 20;
/// TCP payload bytes per MTU-sized frame (MTU 1500, timestamps off).
const MSS: usize = 1460;
/// Longest a transfer may make no progress.
const STALL: Duration = Duration::from_secs(30);

/// Sends `data` through echo at `addr` while reading it back; panics on the
/// first byte that differs. Returns the time it took.
///
/// The client closes only once it has read everything back: on a lossy link
/// a FIN sent early lets the device close first, and its reset to a
/// duplicate ACK arriving after that close can reach the client while echoed
/// bytes still wait in its receive queue, which Linux then discards
/// (ECONNRESET) — a property of that close, not of the data path tested here.
fn echo_exact(dut: &Dut, addr: SocketAddr, data: &[u8]) -> Duration {
    let stream = dut
        .connect_addr(addr)
        .unwrap_or_else(|e| panic!("connect to echo at {addr}: {e}"));
    stream.set_read_timeout(Some(STALL)).unwrap();
    stream.set_write_timeout(Some(STALL)).unwrap();
    let started = Instant::now();
    thread::scope(|s| {
        let mut writer = stream.try_clone().unwrap();
        s.spawn(move || {
            writer.write_all(data).expect("write to echo");
        });
        let mut reader = &stream;
        let mut got = 0;
        let mut buf = vec![0u8; 256 * 1024];
        while got < data.len() {
            let n = match reader.read(&mut buf) {
                Ok(0) => panic!("{addr}: echo closed after {got} of {} bytes", data.len()),
                Ok(n) => n.min(data.len() - got),
                // A signal meant for another test's child (all areas share
                // this process) interrupts the read; nothing was lost.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{addr}: echo read after {got} bytes: {e}"),
            };
            if let Some(at) = (0..n).find(|&i| buf[i] != data[got + i]) {
                panic!("{addr}: echoed byte {} differs", got + at);
            }
            got += n;
        }
    });
    stream.shutdown(Shutdown::Write).ok();
    started.elapsed()
}

/// The device's `INFO` as key/value pairs.
fn info_of(dut: &Dut) -> socklab_host::client::Info {
    let mut client = dut.lab_client().expect("lab client");
    client.info().expect("INFO")
}

fn counter(info: &socklab_host::client::Info, key: &str) -> u64 {
    info.parse(key)
        .unwrap_or_else(|| panic!("INFO has no number for {key}"))
}

/// Frames the device received and sent during one transfer.
#[derive(Debug, Clone, Copy)]
struct Frames {
    rx: u64,
    tx: u64,
}

/// 64 MiB each way through echo at `addr`, byte-exact; the frames it took.
fn transfer(dut: &Dut, addr: SocketAddr, label: &str) -> Frames {
    let mut data = vec![0u8; BYTES];
    StdRng::seed_from_u64(10).fill_bytes(&mut data);
    let before = info_of(dut);
    let took = echo_exact(dut, addr, &data);
    let after = info_of(dut);
    let frames = Frames {
        rx: counter(&after, info::FRAMES_RX) - counter(&before, info::FRAMES_RX),
        tx: counter(&after, info::FRAMES_TX) - counter(&before, info::FRAMES_TX),
    };
    println!(
        "figures: offload {label}: 64 MiB each way through echo at {addr} byte-exact in {:.2}s \
         ({:.0} Mbit/s both ways together); device frames rx {}, tx {}",
        took.as_secs_f64(),
        2.0 * BYTES as f64 * 8.0 / took.as_secs_f64() / 1e6,
        frames.rx,
        frames.tx
    );
    frames
}

/// Frames of 64 MiB at one MSS each.
const MTU_FRAMES: u64 = (BYTES / MSS) as u64;

#[test]
fn offload_on_moves_64_mib_each_way_byte_exact_in_super_frames() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start_with(BoardKind::Tap, &["--offload", "on"]);
    assert_eq!(info_of(&dut).get(info::OFFLOAD), Some("on"));
    // Super-frames carry up to 44 segments: far fewer frames than one per MSS.
    let v4 = transfer(&dut, dut.addr(ECHO_PORT), "on");
    assert!(
        v4.rx < MTU_FRAMES / 2 && v4.tx < MTU_FRAMES / 2,
        "offload on, IPv4: {v4:?} for {MTU_FRAMES} MSS-sized segments each way"
    );
    // IPv6: super-frames in; out one MSS per frame (smoltcp 0.14 does not
    // hand out IPv6 super-frames), checksums still offloaded.
    let v6 = transfer(&dut, dut.addr6(ECHO_PORT).expect("IPv6"), "on");
    assert!(
        v6.rx < MTU_FRAMES / 2,
        "offload on, IPv6: {v6:?} for {MTU_FRAMES} MSS-sized segments each way"
    );
    dut.assert_running();
}

#[test]
fn offload_off_moves_64_mib_each_way_byte_exact_in_mtu_frames() {
    let _area = socklab_tests::area::enter(module_path!());
    let dut = Dut::start_with(BoardKind::Tap, &["--offload", "off"]);
    assert_eq!(info_of(&dut).get(info::OFFLOAD), Some("off"));
    for addr in [dut.addr(ECHO_PORT), dut.addr6(ECHO_PORT).expect("IPv6")] {
        let frames = transfer(&dut, addr, "off");
        assert!(
            frames.rx >= MTU_FRAMES && frames.tx >= MTU_FRAMES,
            "offload off, {addr}: {frames:?}, fewer than {MTU_FRAMES} segments each way"
        );
    }
    dut.assert_running();
}

#[test]
fn bad_link_and_rate_limit_turn_offload_off_and_say_so() {
    let _area = socklab_tests::area::enter(module_path!());
    let cases: [(&[&str], &str); 2] = [
        (
            &[
                "--offload",
                "on",
                "--drop-chance",
                "2",
                "--corrupt-chance",
                "1",
                "--seed",
                "3",
            ],
            "off-bad-link",
        ),
        (
            &["--offload", "on", "--rate-limit", "20000"],
            "off-rate-limit",
        ),
    ];
    // Less than the echo socket's receive buffer (256 KiB): the device never
    // closes its window. smoltcp drops a segment outside a zero window before
    // reading its ACK field, so on a lossy link a transfer that fills the
    // window can stall until the dead-peer timeout: a property of smoltcp's
    // zero-window handling, not of the offload layers this test is about.
    let mut data = vec![0u8; 192 << 10];
    StdRng::seed_from_u64(11).fill_bytes(&mut data);
    for (options, word) in cases {
        let dut = Dut::start_with(BoardKind::Tap, options);
        assert_eq!(
            info_of(&dut).get(info::OFFLOAD),
            Some(word),
            "{}",
            options.join(" ")
        );
        assert!(
            dut.log().contains("offload off:"),
            "no log line says why offload is off with {}:\n{}",
            options.join(" "),
            dut.log()
        );
        // The layer still works and the data arrives intact, both families.
        echo_exact(&dut, dut.addr(ECHO_PORT), &data);
        echo_exact(&dut, dut.addr6(ECHO_PORT).unwrap(), &data);
        dut.assert_running();
    }
}

/// A file in the system's temporary directory, removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn capture_of_super_frames_opens_in_tshark_with_wall_clock_times() {
    let _area = socklab_tests::area::enter(module_path!());
    let pcap =
        TempFile(std::env::temp_dir().join(format!("socklab-offload-{}.pcap", std::process::id())));
    let path = pcap.0.to_str().unwrap().to_owned();
    let dut = Dut::start_with(BoardKind::Tap, &["--offload", "on", "--pcap", &path]);
    assert_eq!(info_of(&dut).get(info::OFFLOAD), Some("on"));
    let mut data = vec![0u8; 4 << 20];
    StdRng::seed_from_u64(12).fill_bytes(&mut data);
    echo_exact(&dut, dut.addr(ECHO_PORT), &data);
    echo_exact(&dut, dut.addr6(ECHO_PORT).unwrap(), &data);
    drop(dut);
    let output = Command::new("tshark")
        .args([
            "-r",
            &path,
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
        ])
        .output()
        .expect("run tshark (scripts/setup installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tshark -r {path} failed: {stderr}");
    assert!(
        !stderr.contains("corrupt") && !stderr.contains("damaged"),
        "tshark: {stderr}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut frames = 0;
    let mut largest = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (time, len) = line.split_once('\t').expect("two fields");
        let time: f64 = time.parse().expect("a time");
        assert!(
            (now - 600.0..=now + 1.0).contains(&time),
            "frame stamped {time}, not the time of the test ({now})"
        );
        largest = largest.max(len.parse::<usize>().expect("a length"));
        frames += 1;
    }
    assert!(frames > 100, "only {frames} frames in the capture");
    assert!(
        largest > 1514 * 4,
        "largest frame in the capture {largest} bytes: no super-frames"
    );
}

/// The kernel keeps a TAP's offloads after the device that set them is gone:
/// a device started on that TAP with `--offload off` must clear them, or the
/// kernel goes on handing it partial checksums (which it refuses) and no
/// connection gets through.
#[test]
fn offload_off_after_on_on_the_same_tap_clears_the_kernels_offloads() {
    let _area = socklab_tests::area::enter(module_path!());
    use socklab_host::launch::{NetnsChoice, TapDevice, TapOptions};
    use socklab_host::netns::{Netns, Tap};

    let ns = Netns::create_unique("slofl").expect("create a namespace");
    let tap = Tap::create("slofl0", Some(&ns), None).expect("create a TAP");
    let mut data = vec![0u8; 4 << 20];
    StdRng::seed_from_u64(13).fill_bytes(&mut data);
    for setting in ["on", "off"] {
        let device = TapDevice::start(TapOptions {
            netns: NetnsChoice::Named(ns.name().to_owned()),
            tap: Some(tap.name().to_owned()),
            device_args: vec!["--offload".into(), setting.into()],
            ..TapOptions::default()
        })
        .unwrap_or_else(|e| panic!("start socklab-tap --offload {setting}: {e}"));
        let dut = Dut::from_device(BoardKind::Tap, Box::new(device));
        assert_eq!(info_of(&dut).get(info::OFFLOAD), Some(setting));
        echo_exact(&dut, dut.addr(ECHO_PORT), &data);
        echo_exact(&dut, dut.addr6(ECHO_PORT).unwrap(), &data);
        dut.assert_running();
    }
}
