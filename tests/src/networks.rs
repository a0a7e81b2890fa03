//! One device on two networks: linux-tap started with a second network
//! (`socklab run tap --networks 2`), and that second network as its own
//! clients see it, so that every conformance case and third-party tool runs on
//! it unchanged.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitStatus;
use std::time::Duration;

use socklab_host::launch::{
    Machine, Network, QemuDevice, QemuNet, QemuOptions, RunningBoard, TapDevice, TapOptions,
};
use socklab_host::netns::HostNet;

use crate::{BoardKind, Dut};

/// Starts `board` with two networks: the first on a TAP in the device's
/// namespace, the second on a TAP in a namespace of its own. linux-tap and
/// riscv-virt (on TAPs) have two network interfaces.
pub fn start_two_networks(board: BoardKind) -> Box<dyn RunningBoard> {
    let started: Result<Box<dyn RunningBoard>, _> = match board {
        BoardKind::Tap => TapDevice::start(TapOptions {
            networks: 2,
            ..TapOptions::default()
        })
        .map(|d| Box::new(d) as Box<dyn RunningBoard>),
        BoardKind::QemuTap(Machine::RiscvVirt) => QemuDevice::start(QemuOptions {
            machine: Machine::RiscvVirt,
            net: QemuNet::private_tap(),
            networks: 2,
            ..QemuOptions::default()
        })
        .map(|d| Box::new(d) as Box<dyn RunningBoard>),
        other => panic!("{other} has one network interface"),
    };
    started.unwrap_or_else(|e| panic!("start {board} with two networks: {e}"))
}

/// A device's second network, as a [`RunningBoard`]: its addresses, its
/// namespace and its TAP are the second network's; the process is the same.
pub struct OnSecondNetwork(pub Box<dyn RunningBoard>);

impl OnSecondNetwork {
    fn network(&self) -> &Network {
        self.0
            .second_network()
            .expect("the device was started with a second network")
    }
}

impl RunningBoard for OnSecondNetwork {
    fn board(&self) -> &str {
        self.0.board()
    }

    fn host_net(&self) -> &HostNet {
        &self.network().host_net
    }

    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.network().ipv4.into(), port)
    }

    fn addr6(&self, port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.network().ipv6.into(), port))
    }

    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn tap_name(&self) -> Option<&str> {
        Some(&self.network().tap)
    }

    fn log(&self) -> String {
        self.0.log()
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.0.exit_status()
    }
}

/// A fresh two-network device on `board`, seen from its second network.
pub fn second_network_dut(board: BoardKind) -> Dut {
    Dut::from_device(board, Box::new(OnSecondNetwork(start_two_networks(board))))
}

/// A fresh two-network device on `board`, seen from its first network.
pub fn first_network_dut(board: BoardKind) -> Dut {
    Dut::from_device(board, start_two_networks(board))
}

/// A lab client opened in `net` to `addr`: the stream and the `HELLO` line.
pub fn lab_line_client(net: &HostNet, addr: SocketAddr) -> (BufReader<TcpStream>, String) {
    let stream = net
        .connect(addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut reader = BufReader::new(stream);
    let hello = read_line(&mut reader);
    assert!(hello.starts_with("HELLO "), "{addr} greeted with {hello:?}");
    (reader, hello)
}

/// One line, without its LF.
pub fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line.trim_end_matches('\n').to_owned()
}

/// Sends `command` and reads the lines up to `END`.
pub fn ask(reader: &mut BufReader<TcpStream>, command: &str) -> Vec<String> {
    writeln!(reader.get_mut(), "{command}").expect("send");
    let mut lines = Vec::new();
    for _ in 0..10_000 {
        let line = read_line(reader);
        if line == "END" {
            return lines;
        }
        assert!(!line.is_empty(), "{command}: the device closed before END");
        lines.push(line);
    }
    panic!("{command}: no END after 10,000 lines");
}

/// Echoes `total` bytes through the echo service at `addr` (opened in `net`):
/// a writer thread sends a counting pattern while this thread reads it back
/// and compares every byte. Returns the bytes compared.
pub fn echo_byte_exact(net: &HostNet, addr: SocketAddr, total: usize) -> io::Result<usize> {
    let stream = net.connect(addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = stream.try_clone()?;
    let pattern = |i: usize| (i % 251) as u8;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut sent = 0;
        while sent < total {
            let n = 65536.min(total - sent);
            let chunk: Vec<u8> = (sent..sent + n).map(pattern).collect();
            writer.write_all(&chunk)?;
            sent += n;
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut reader = stream;
    let mut buffer = vec![0u8; 65536];
    let mut got = 0;
    while got < total {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        for (k, byte) in buffer[..n].iter().enumerate() {
            if *byte != pattern(got + k) {
                return Err(io::Error::other(format!(
                    "byte {} is {byte:#04x}, sent {:#04x}",
                    got + k,
                    pattern(got + k)
                )));
            }
        }
        got += n;
    }
    sender
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    Ok(got)
}
