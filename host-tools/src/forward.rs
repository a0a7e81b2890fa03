//! Port forwarding from `127.0.0.1` in the user's own network namespace into
//! a device's private one: `127.0.0.1:<base>+P` reaches device port `P`, the
//! same map QEMU's user networking uses (lab 16666, HTTP 10080, echo 10007,
//! ...), so a browser, curl, nc or iperf3 reaches a device that `socklab run
//! tap` keeps in its namespace. Loopback only: nothing is opened to other
//! machines.
//!
//! One thread listens per port; each accepted connection gets a connection
//! to the device opened inside the device's namespace and two copying
//! threads. Dropping the [`Forwarder`] stops the listeners; connections in
//! progress end when either side closes, and a reset from the device reaches
//! the user's side as a reset.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::netns::HostNet;

/// How often a listener looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(100);
/// How long opening the device's side may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes per copy.
const COPY_BUFFER: usize = 64 * 1024;

/// One forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// Where the user connects: 127.0.0.1 and base + device port.
    pub local: SocketAddr,
    /// The device's address and port (inside its namespace).
    pub device: SocketAddr,
}

/// Listeners on 127.0.0.1, forwarding into a device's namespace; stopped on drop.
pub struct Forwarder {
    forwarded: Vec<Forwarded>,
    stop: Arc<AtomicBool>,
    listeners: Vec<JoinHandle<()>>,
}

/// Why forwarding could not start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Base + port is over 65535.
    #[error("port base {base} + device port {port} is over 65535: choose a smaller --port-base")]
    PortRange {
        /// The base.
        base: u16,
        /// The device port.
        port: u16,
    },
    /// A local port is taken.
    #[error("cannot listen on {addr}: {error} (another device or program has it; --port-base N moves every forwarded port, --no-forward turns forwarding off)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the kernel said.
        error: io::Error,
    },
}

impl Forwarder {
    /// Starts forwarding `127.0.0.1:<base>+P` to `device_ip:P` for each of
    /// `ports`, the device's side opened in `net`.
    pub fn start(
        net: &HostNet,
        device_ip: IpAddr,
        ports: &[u16],
        base: u16,
    ) -> Result<Self, ForwardError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut bound = Vec::new();
        for &port in ports {
            let local_port = base
                .checked_add(port)
                .ok_or(ForwardError::PortRange { base, port })?;
            let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local_port);
            let listener = TcpListener::bind(local)
                .map_err(|error| ForwardError::Bind { addr: local, error })?;
            let device = SocketAddr::new(device_ip, port);
            bound.push((listener, Forwarded { local, device }));
        }
        let mut forwarded = Vec::new();
        let mut listeners = Vec::new();
        for (listener, fwd) in bound {
            forwarded.push(fwd);
            let stop = Arc::clone(&stop);
            let net = net.clone();
            listeners.push(thread::spawn(move || {
                serve(listener, fwd.device, net, stop)
            }));
        }
        Ok(Forwarder {
            forwarded,
            stop,
            listeners,
        })
    }

    /// The forwarded ports.
    pub fn forwarded(&self) -> &[Forwarded] {
        &self.forwarded
    }

    /// Where device port `port` is reached on 127.0.0.1, if forwarded.
    pub fn local(&self, port: u16) -> Option<SocketAddr> {
        self.forwarded
            .iter()
            .find(|f| f.device.port() == port)
            .map(|f| f.local)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for listener in self.listeners.drain(..) {
            let _ = listener.join();
        }
    }
}

/// Accepts until `stop`; each connection is forwarded on threads of its own.
fn serve(listener: TcpListener, device: SocketAddr, net: HostNet, stop: Arc<AtomicBool>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let net = net.clone();
                thread::spawn(move || forward(client, device, &net));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Joins a user's connection to a new one to the device; a refused device
/// port closes the user's connection at once.
fn forward(client: TcpStream, device: SocketAddr, net: &HostNet) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = net.connect(device, CONNECT_TIMEOUT) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || copy(client, upstream));
    copy(upstream2, client2);
    let _ = up.join();
}

/// Copies until end of stream or an error, then passes the end on: a FIN as a
/// FIN, a reset (a device that stops resets every connection) as a reset.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                // Closing `to` with a zero linger sends an RST; ending the read
                // of the other direction lets its thread close its copy of it.
                let _ = socket2::SockRef::from(&to).set_linger(Some(Duration::ZERO));
                let _ = to.shutdown(Shutdown::Read);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
