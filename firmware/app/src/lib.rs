//! socklab's TCP server application: board-independent, `no_std`, no `alloc`.
//!
//! A board hands in a [`smoltcp::phy::Device`], the time, and fixed storage
//! sized by its [`Sizes`]; the [`App`] builds the interface and the socket pool
//! over it and runs every service:
//!
//! | port | service |
//! |---|---|
//! | 6666 | the lab line protocol ([`protocol`]), one client per pool slot |
//! | 7 | echo (RFC 862) |
//! | 9 | discard (RFC 863) |
//! | 19 | chargen (RFC 864) |
//! | UDP 7 | echo (RFC 862): each datagram sent back to its sender |
//! | UDP 9 | discard (RFC 863): each datagram dropped |
//! | UDP 19 | chargen (RFC 864): each datagram answered with 0..=512 pattern bytes |
//! | 5201 | iperf3 server (esnet iperf3's protocol, TCP tests) |
//! | 5001 | iperf2 server (a sink for `iperf` 2.x TCP tests) |
//! | 80 | HTTP/1.1: the status page and its JSON API ([`http`]) |
//! | ICMP | echo replies, IPv4 and IPv6 (answered by the interface) |
//!
//! Any other TCP port answers a SYN with RST: the client's connect is refused.
//! Any other UDP port answers a datagram with ICMP / ICMPv6 port unreachable.
//!
//! ```ignore
//! let mut app = App::new(config, SIZES, storage, &mut device, now)?;
//! loop {
//!     let delay = app.poll(clock.now(), &mut device);
//!     board.wait_for_frame_or(delay);
//! }
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod badlink;
pub mod bootopts;
pub mod config;
pub mod events;
pub mod http;
pub mod protocol;
pub mod storage;

mod bulk;
mod counters;
mod frames;
mod iperf2;
mod iperf3;
mod json;
mod lab;
mod limits;
mod line;
mod pool;
mod report;
mod sizes;
mod sock;
mod udp;

pub use smoltcp;

pub use bulk::MAX_BULK_SLOTS;
pub use config::{BacklogPolicy, Config, Timeouts};
pub use counters::Counters;
pub use lab::LabSlot;
pub use pool::ClosingSocket;
pub use storage::{Sizes, Storage, StorageError, UdpPacketMetadata};

use log::info;
use smoltcp::iface::{
    self, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, tcp, Socket};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr};

use bulk::{Bulk, Service};
use counters::FrameCounters;
use events::Events;
use frames::Counted;
use http::Http;
use iperf2::Iperf2;
use iperf3::Iperf3;
use lab::Lab;
use pool::{Class, Pool};
use report::View;
use udp::Udp;

/// Frames processed per call of [`App::poll`] before the services run and
/// what they wrote is sent: keeps acknowledgments flowing under a flood.
const MAX_INGRESS_PER_POLL: usize = 64;

/// Where the IPv4 address in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipv4Source {
    /// Configured; no DHCP.
    Static,
    /// DHCP asked, no lease yet: the static address is in use.
    Fallback,
    /// A DHCP lease.
    Dhcp,
}

impl Ipv4Source {
    fn name(self) -> &'static str {
        match self {
            Ipv4Source::Static => "static",
            Ipv4Source::Fallback => "dhcp-fallback",
            Ipv4Source::Dhcp => "dhcp",
        }
    }
}

/// The application: interface, socket pool and services.
pub struct App<'a> {
    config: Config,
    sizes: Sizes,
    iface: Interface,
    sockets: SocketSet<'a>,
    lab: Lab<'a>,
    bulk: Bulk,
    iperf3: Iperf3,
    iperf2: Iperf2,
    udp: Udp,
    /// When the iperf3 server next needs a look for its timeouts (ms).
    iperf3_deadline: Option<i64>,
    pool: Pool<'a>,
    /// The other services' sockets (iperf, HTTP), in the order `NETSTAT` lists them.
    others: heapless::Vec<
        SocketHandle,
        { storage::MAX_IPERF3_SOCKETS + storage::MAX_IPERF2_SOCKETS + http::HTTP_SOCKETS },
    >,
    dhcp: Option<SocketHandle>,
    ipv4_source: Ipv4Source,
    counters: Counters,
    frames: FrameCounters,
    mtu: usize,
    started: Instant,
    /// When the lab next needs a look for its timeouts (ms).
    lab_deadline: Option<i64>,
    /// When the closing pool next needs a look for its timeouts (ms).
    pool_deadline: Option<i64>,
    http: Http,
    /// When the HTTP server next needs a look (ms).
    http_deadline: Option<i64>,
    events: Events,
}

impl<'a> App<'a> {
    /// Builds the interface and every socket over the board's storage.
    pub fn new<D: Device + ?Sized>(
        config: Config,
        sizes: Sizes,
        storage: Storage<'a>,
        device: &mut D,
        now: Instant,
    ) -> Result<Self, StorageError> {
        sizes.check(&storage)?;
        if sizes.bulk_slots > MAX_BULK_SLOTS {
            return Err(StorageError::BadSizes("bulk_slots must be at most 64"));
        }
        let Storage {
            sockets: socket_storage,
            lab: lab_slots,
            closing,
            buffers,
            udp: udp_packets,
        } = storage;

        let mut iface_config = iface::Config::new(HardwareAddress::Ethernet(config.mac));
        iface_config.random_seed = config.random_seed;
        let mut iface = Interface::new(iface_config, device, now);
        iface.update_ip_addrs(|addrs| {
            // Two addresses fit smoltcp's default IFACE_MAX_ADDR_COUNT.
            let _ = addrs.push(IpCidr::Ipv4(config.ipv4));
            let _ = addrs.push(IpCidr::Ipv6(config.ipv6));
        });
        if let Some(gateway) = config.gateway4 {
            let _ = iface.routes_mut().add_default_ipv4_route(gateway);
        }
        if let Some(gateway) = config.gateway6 {
            let _ = iface.routes_mut().add_default_ipv6_route(gateway);
        }

        let mut sockets = SocketSet::new(socket_storage);
        let mut buffers: &'a mut [u8] = buffers;
        let mut take = |len: usize| -> &'a mut [u8] {
            let (head, tail) = core::mem::take(&mut buffers).split_at_mut(len);
            buffers = tail;
            head
        };

        // The lab's slots, its backlog, then the management sockets.
        for (index, slot) in lab_slots.iter_mut().enumerate() {
            let mut socket = new_socket(take(sizes.lab_rx), take(sizes.lab_tx), &config.timeouts);
            // A lab answer carries its ACK anyway; what is left to acknowledge
            // at once is a FIN, so that a TIME-WAIT socket has sent its last
            // ACK within the poll that took the FIN (see `pool::TIME_WAIT_MIN_MS`).
            socket.set_ack_delay(None);
            let management = index >= sizes.lab_sockets();
            let port = match management {
                true => protocol::MGMT_PORT,
                false => protocol::LAB_PORT,
            };
            sock::listen(&mut socket, port);
            let backlog = index >= sizes.lab_slots && !management;
            if backlog && config.backlog == BacklogPolicy::Refuse {
                // No backlog: a client beyond the slots is refused.
                socket.abort();
            }
            slot.attach(sockets.add(socket));
        }
        let mut bulk = Bulk::new();
        for service in Service::ALL {
            for _ in 0..sizes.bulk_slots {
                let mut socket =
                    new_socket(take(sizes.bulk_rx), take(sizes.bulk_tx), &config.timeouts);
                sock::listen(&mut socket, service.port());
                // Bulk transfers want every segment acknowledged at once.
                socket.set_ack_delay(None);
                bulk.add(sockets.add(socket), service);
            }
        }
        let mut others = heapless::Vec::new();
        let mut iperf3 = Iperf3::new();
        for _ in 0..sizes.iperf3_sockets {
            let mut socket = new_socket(
                take(sizes.iperf3_rx),
                take(sizes.iperf3_tx),
                &config.timeouts,
            );
            sock::listen(&mut socket, protocol::IPERF3_PORT);
            socket.set_ack_delay(None);
            let handle = sockets.add(socket);
            let _ = others.push(handle);
            iperf3.add(handle);
        }
        let mut iperf2 = Iperf2::new();
        for _ in 0..sizes.iperf2_sockets {
            let mut socket = new_socket(
                take(sizes.iperf2_rx),
                take(storage::IPERF2_TX_BUFFER),
                &config.timeouts,
            );
            sock::listen(&mut socket, protocol::IPERF2_PORT);
            socket.set_ack_delay(None);
            let handle = sockets.add(socket);
            let _ = others.push(handle);
            iperf2.add(handle);
        }
        let udp = Udp::new(&mut sockets, udp_packets, &mut take, config.random_seed);
        // The closing pool: CLOSED sockets that take over connections being
        // closed. Added last, so that a SYN finds the services' listening
        // sockets first.
        let mut pool = Pool::new(closing);
        for index in 0..sizes.closing_sockets() {
            let (class, rx, tx) = if index < sizes.lab_closing {
                (Class::Lab, sizes.lab_rx, sizes.lab_tx)
            } else {
                (Class::Bulk, sizes.bulk_rx, sizes.bulk_tx)
            };
            // Every socket that may close acknowledges at once (the lab's
            // and the services' alike): they change places with the slots.
            let mut socket = new_socket(take(rx), take(tx), &config.timeouts);
            socket.set_ack_delay(None);
            pool.add(index, sockets.add(socket), class);
        }
        let mut http = Http::new();
        for _ in 0..http::HTTP_SOCKETS {
            let mut socket = new_socket(
                take(http::HTTP_RX_BUFFER),
                take(http::HTTP_TX_BUFFER),
                &config.timeouts,
            );
            sock::listen(&mut socket, protocol::HTTP_PORT);
            let handle = sockets.add(socket);
            http.add(handle);
            // NETSTAT lists them with the other services' sockets.
            let _ = others.push(handle);
        }
        let dhcp = config.dhcp.then(|| sockets.add(dhcpv4::Socket::new()));

        // smoltcp counts the Ethernet header in the device's MTU; INFO shows the IP MTU.
        let mtu = device
            .capabilities()
            .max_transmission_unit
            .saturating_sub(smoltcp::wire::EthernetFrame::<&[u8]>::header_len());
        info!(
            "socklab {} on {}: {} lab slots ({} B rx, {} B tx), {} per bulk service, {} buffer bytes",
            protocol::VERSION,
            config.board,
            sizes.lab_slots,
            sizes.lab_rx,
            sizes.lab_tx,
            sizes.bulk_slots,
            sizes.buffer_bytes()
        );
        info!(
            "listening on {} and {}, TCP ports 6666 (lab) 6668 (management) 7 9 19 80 5201 5001, UDP ports 7 9 19",
            config.ipv4, config.ipv6
        );
        info!(
            "iperf3: {} sockets ({} B rx, {} B tx), at most {} streams; iperf2: {} sockets",
            sizes.iperf3_sockets,
            sizes.iperf3_rx,
            sizes.iperf3_tx,
            sizes.iperf3_max_streams(),
            sizes.iperf2_sockets
        );
        Ok(App {
            config,
            sizes,
            iface,
            sockets,
            lab: Lab {
                slots: lab_slots,
                serving: sizes.lab_slots,
                mgmt_start: sizes.lab_sockets(),
                policy: config.backlog,
                next_ticket: 0,
                busy: false,
            },
            bulk,
            iperf3,
            iperf2,
            udp,
            iperf3_deadline: None,
            pool,
            others,
            dhcp,
            ipv4_source: if config.dhcp {
                Ipv4Source::Fallback
            } else {
                Ipv4Source::Static
            },
            counters: Counters::default(),
            frames: FrameCounters::default(),
            mtu,
            started: now,
            lab_deadline: None,
            pool_deadline: None,
            http,
            http_deadline: None,
            events: Events::new(),
        })
    }

    /// Processes the frames waiting in `device`, runs the services that have
    /// something to do, and sends what they wrote. Returns how long the board
    /// may sleep before the next call if no frame arrives (`None`: until a
    /// frame arrives).
    ///
    /// In that order, so that an acknowledgment rides on the answer it
    /// acknowledges: one frame per echo round trip, not two.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> Option<Duration> {
        self.iface.poll_maintenance(now);
        let mut counted = Counted {
            inner: &mut *device,
            counters: &self.frames,
        };
        let mut frames = 0;
        let mut more = false;
        while frames < MAX_INGRESS_PER_POLL {
            match self
                .iface
                .poll_ingress_single(now, &mut counted, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                _ => frames += 1,
            }
            if self.frames.reset_seen() {
                // A reset may have sent a socket in SYN-RECEIVED back to
                // LISTEN with that handshake's timers: the services renew
                // it before the next SYN can reach it.
                more = true;
                break;
            }
        }
        self.poll_dhcp();

        // A service runs when a frame came for it, when one of its sockets
        // changed state on a stack timer, when its own deadline is due, or on
        // any wake-up without traffic. Otherwise a busy echo stream would
        // scan every lab slot on every frame.
        let touched = self.frames.take_touched();
        let woken_by_time = frames == 0;
        let now_ms = now.total_millis();
        let due = |deadline: Option<i64>| deadline.is_some_and(|at| now_ms >= at);
        let uptime_ms = (now - self.started).total_millis();
        self.counters.frames_rx = self.frames.rx.get();
        self.counters.frames_tx = self.frames.tx.get();
        self.counters.refused = self.frames.refused.get();
        let mut view = View {
            config: &self.config,
            sizes: self.sizes,
            mac: self.config.mac,
            mtu: self.mtu,
            ipv4: self.ipv4(),
            ipv6: self.config.ipv6,
            ipv4_source: self.ipv4_source.name(),
            uptime_ms: uptime_ms as i64,
            counters: self.counters,
            closing_in_use: self.pool.in_use(),
            events: &self.events,
            http_requests: self.http.requests,
        };
        let mut ran = false;
        if woken_by_time || touched.lab || due(self.lab_deadline) || self.lab.changed(&self.sockets)
        {
            ran = true;
            self.lab_deadline = self.lab.poll(
                &mut self.sockets,
                (
                    &mut self.pool,
                    &self.bulk,
                    (&self.others, self.udp.handles()),
                ),
                &view,
                &mut self.counters,
                now,
                touched.lab_reset,
            );
            // What the lab changed, as the HTTP server's page shows it.
            view.counters = self.counters;
            view.closing_in_use = self.pool.in_use();
        }
        // The HTTP server's few sockets are looked at on every poll.
        self.http_deadline = self
            .http
            .poll(&mut self.sockets, &view, &self.lab, now, uptime_ms);
        if woken_by_time || touched.bulk || self.bulk.changed(&self.sockets) {
            ran = true;
            self.bulk.poll(
                &mut self.sockets,
                &mut self.pool,
                &mut self.counters,
                now_ms,
                touched.bulk_reset,
            );
        }
        if ran || due(self.pool_deadline) || self.pool.changed(&self.sockets) {
            self.pool_deadline = self.pool.poll(
                &mut self.sockets,
                &mut self.counters,
                self.config.timeouts.closing_ms,
                now_ms,
            );
        }
        // The iperf servers have a few sockets each: they look at them on
        // every poll, which keeps a sending stream's buffer full.
        self.iperf3_deadline =
            self.iperf3
                .poll(&mut self.sockets, &mut self.counters, now.total_millis());
        self.iperf2.poll(&mut self.sockets, &mut self.counters);
        self.udp.poll(&mut self.sockets);

        // Send everything the sockets have: one pass sends at most one
        // segment per socket. A frame that arrives meanwhile stays queued in
        // the device, so the board's wait returns at once.
        let mut counted = Counted {
            inner: device,
            counters: &self.frames,
        };
        while self.iface.poll_egress(now, &mut counted, &mut self.sockets)
            == PollResult::SocketStateChanged
        {}
        self.events.scan(&self.sockets, now, self.started);

        // A stack timer that fired while sending (a dead peer dropped, a
        // TIME-WAIT over, a reset sent) changed a socket the services have
        // not seen: their pass must run now, not when the next frame comes.
        let moved = self.lab.changed(&self.sockets)
            || self.bulk.changed(&self.sockets)
            || self.pool.changed(&self.sockets);
        let stack = if more || frames == MAX_INGRESS_PER_POLL || moved {
            // More may be waiting, or there is work for the services: come
            // back at once.
            Some(Duration::ZERO)
        } else {
            self.iface.poll_delay(now, &self.sockets)
        };
        let app = [
            self.lab_deadline,
            self.pool_deadline,
            self.iperf3_deadline,
            self.http_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| Duration::from_millis(at.saturating_sub(now_ms).max(0) as u64));
        match (stack, app) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resets every connection before the device stops: each TCP socket with a
    /// peer is aborted and its RST sent through `device` now, so that clients see
    /// the reset at once instead of waiting on a device that is gone. Returns how
    /// many connections were reset. The app is not polled again after this.
    pub fn reset_all<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> usize {
        let mut reset = 0;
        for (_, socket) in self.sockets.iter_mut() {
            if let Socket::Tcp(socket) = socket {
                if socket.is_active() {
                    socket.abort();
                    reset += 1;
                }
            }
        }
        let mut counted = Counted {
            inner: &mut *device,
            counters: &self.frames,
        };
        self.iface.poll_egress(now, &mut counted, &mut self.sockets);
        info!("stopping: reset {reset} connections");
        reset
    }

    /// The counters `INFO` shows.
    pub fn counters(&self) -> Counters {
        let mut counters = self.counters;
        counters.frames_rx = self.frames.rx.get();
        counters.frames_tx = self.frames.tx.get();
        counters.refused = self.frames.refused.get();
        counters
    }

    /// Lab clients being served.
    pub fn lab_in_use(&self) -> usize {
        self.lab.in_use()
    }

    /// Lab clients waiting in the backlog.
    pub fn lab_queued(&self) -> usize {
        self.lab.queued()
    }

    /// The pool's sizes.
    pub fn sizes(&self) -> Sizes {
        self.sizes
    }

    /// The IPv4 address in use (static, or from DHCP).
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|cidr| match cidr {
            IpCidr::Ipv4(v4) => Some(*v4),
            _ => None,
        })
    }

    /// Applies DHCP events: a lease replaces the static address, losing it
    /// brings the static one back.
    fn poll_dhcp(&mut self) {
        let Some(handle) = self.dhcp else {
            return;
        };
        let event = self.sockets.get_mut::<dhcpv4::Socket>(handle).poll();
        let (address, router, source) = match event {
            None => return,
            Some(dhcpv4::Event::Configured(lease)) => {
                info!("DHCP lease {} router {:?}", lease.address, lease.router);
                (lease.address, lease.router, Ipv4Source::Dhcp)
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if self.ipv4_source == Ipv4Source::Fallback {
                    return;
                }
                info!("DHCP lease lost: back to {}", self.config.ipv4);
                (self.config.ipv4, self.config.gateway4, Ipv4Source::Fallback)
            }
        };
        self.iface.update_ip_addrs(|addrs| {
            for cidr in addrs.iter_mut() {
                if let IpCidr::Ipv4(v4) = cidr {
                    *v4 = address;
                }
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(router) = router {
            let _ = self.iface.routes_mut().add_default_ipv4_route(router);
        }
        self.ipv4_source = source;
    }
}

/// A closed TCP socket over the given buffers, with keep-alive and a
/// dead-peer timeout so a vanished client frees it.
fn new_socket<'a>(rx: &'a mut [u8], tx: &'a mut [u8], timeouts: &Timeouts) -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    socket.set_keep_alive(Some(Duration::from_millis(timeouts.keep_alive_ms)));
    socket.set_timeout(Some(Duration::from_millis(timeouts.dead_peer_ms)));
    socket.set_nagle_enabled(false);
    socket
}
