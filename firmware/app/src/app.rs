//! The application: the interface, the service table, the closing pool and
//! the poll loop that runs them.

use log::info;
use smoltcp::iface::{
    self, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, Socket};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr};

use crate::board::config::Config;
use crate::board::sizes::Sizes;
use crate::board::storage::{self, Storage, StorageError};
use crate::phy::counted::{Counted, FrameCounters};
use crate::pool::closing::{Class, ClosingPool};
use crate::services::service::{Context, Peers, SocketFactory};
use crate::services::{Table, Transport, COUNT, DECLARED};
use crate::status::counters::Counters;
use crate::status::events::Events;
use crate::status::view::View;
use crate::wire::protocol;

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

/// The application: interface, service table and closing pool.
pub struct App<'a> {
    config: Config,
    sizes: Sizes,
    iface: Interface,
    sockets: SocketSet<'a>,
    services: Table<'a>,
    /// When each service of the table next needs a look, by table index.
    deadlines: [Option<Instant>; COUNT],
    closing: ClosingPool<'a>,
    dhcp: Option<SocketHandle>,
    ipv4_source: Ipv4Source,
    counters: Counters,
    frames: FrameCounters,
    mtu: usize,
    started: Instant,
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
        storage::check(&sizes, &storage)?;
        let Storage {
            sockets: socket_storage,
            lab: lab_slots,
            closing,
            buffers,
            udp: udp_meta,
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
        let mut factory = SocketFactory {
            sockets: &mut sockets,
            buffers,
            udp_meta,
            timeouts: config.timeouts,
        };
        let services = Table::new(&mut factory, &config, sizes.parts(), lab_slots);
        // The closing pool: CLOSED sockets that take over connections being
        // closed. Added after the services', so that a SYN finds their
        // listening sockets first.
        let mut pool = ClosingPool::new(closing, sizes.closing);
        for index in 0..sizes.closing.sockets() {
            let (class, rx, tx) = if index < sizes.closing.lab {
                (Class::Lab, sizes.lab.rx, sizes.lab.tx)
            } else {
                (Class::Bulk, sizes.bulk.rx, sizes.bulk.tx)
            };
            // Every socket that may close acknowledges at once (the lab's
            // and the services' alike): they change places with the slots.
            let mut socket = factory.tcp_socket(rx, tx);
            socket.set_ack_delay(None);
            pool.add(index, factory.sockets.add(socket), class);
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
            sizes.lab.slots,
            sizes.lab.rx,
            sizes.lab.tx,
            sizes.bulk.slots,
            sizes.buffer_bytes()
        );
        info!(
            "listening on {} and {}, {}",
            config.ipv4, config.ipv6, Ports
        );
        info!(
            "iperf3: {} sockets ({} B rx, {} B tx), at most {} streams; iperf2: {} sockets",
            sizes.iperf3.sockets,
            sizes.iperf3.rx,
            sizes.iperf3.tx,
            sizes.iperf3.max_streams(),
            sizes.iperf2.sockets
        );
        Ok(App {
            config,
            sizes,
            iface,
            sockets,
            services,
            deadlines: [None; COUNT],
            closing: pool,
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
            events: Events::new(),
        })
    }

    /// Processes the frames waiting in `device`, runs the services that have
    /// something to do, and sends what they wrote. Returns how long the board
    /// may sleep before the next call if no frame arrives (`None`: until a
    /// frame arrives).
    ///
    /// In that order, so that an acknowledgment rides on the answer it
    /// acknowledges: one frame per echo round trip, not two. The services
    /// run in table order ([`crate::services`]), then the closing pool.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> Option<Duration> {
        self.iface.poll_maintenance(now);
        let mut counted = Counted {
            inner: &mut *device,
            counters: &self.frames,
        };
        let mut frames = 0;
        let mut cut_short = false;
        while frames < MAX_INGRESS_PER_POLL {
            match self
                .closing
                .ingress(&mut self.iface, now, &mut counted, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                _ => frames += 1,
            }
            if self.frames.reset_seen() {
                // A reset may have sent a socket in SYN-RECEIVED back to
                // LISTEN with that handshake's timers: the services renew
                // it before the next SYN can reach it.
                cut_short = true;
                break;
            }
        }
        self.poll_dhcp();

        // A service that waits to be woken runs when a segment came for one
        // of its ports, when one of its sockets changed state on a stack
        // timer, when its own deadline is due, or on any wake-up without
        // traffic. Otherwise a busy echo stream would scan every lab slot on
        // every frame.
        let seen = self.frames.take_seen();
        let woken_by_time = frames == 0;
        self.counters.frames_rx = self.frames.rx.get();
        self.counters.frames_tx = self.frames.tx.get();
        self.counters.refused = self.frames.refused.get();
        let ipv4 = self.ipv4();
        let view = View {
            config: &self.config,
            mtu: self.mtu,
            ipv4,
            ipv4_source: self.ipv4_source.name(),
            started: self.started,
            buffer_bytes: self.sizes.buffer_bytes(),
            events: &self.events,
        };
        let mut woken_ran = false;
        let mut table = self.services.all_mut();
        for (index, declared) in DECLARED.iter().enumerate() {
            let (before, rest) = table.split_at_mut(index);
            let Some((service, after)) = rest.split_first_mut() else {
                break;
            };
            let ports = declared.ports;
            let tcp_ports = || ports.iter().filter(|p| p.transport == Transport::Tcp);
            let every_poll = service.every_poll();
            let run = every_poll
                || woken_by_time
                || tcp_ports().any(|p| seen.ports.contains(p.port))
                || self.deadlines[index].is_some_and(|at| now >= at)
                || service.changed(&self.sockets);
            if !run {
                continue;
            }
            woken_ran |= !every_poll;
            let mut cx = Context {
                now,
                sockets: &mut self.sockets,
                view: &view,
                counters: &mut self.counters,
                closing: &mut self.closing,
                peers: Peers::new(&DECLARED, before, after),
                reset: tcp_ports().any(|p| seen.resets.contains(p.port)),
            };
            self.deadlines[index] = service.poll(&mut cx);
        }
        // The closing pool follows the closes a woken service handed it.
        if woken_ran || self.closing.due(now) || self.closing.changed(&self.sockets) {
            let closing_timeout = Duration::from_millis(self.config.timeouts.closing_ms);
            self.closing
                .poll(&mut self.sockets, &mut self.counters, closing_timeout, now);
        }

        // Send everything the sockets have: one pass sends at most one
        // segment per socket, and another pass runs only while the stack has
        // more to send now (its delay, needed below anyway, says so without a
        // pass that finds nothing). A frame that arrives meanwhile stays
        // queued in the device, so the board's wait returns at once.
        let mut counted = Counted {
            inner: device,
            counters: &self.frames,
        };
        let mut stack = loop {
            let sent = self.iface.poll_egress(now, &mut counted, &mut self.sockets)
                == PollResult::SocketStateChanged;
            let delay = self.iface.poll_delay(now, &self.sockets);
            if !sent || delay != Some(Duration::ZERO) {
                break delay;
            }
        };
        self.events.scan(&self.sockets, now, self.started);

        // A stack timer that fired while sending (a dead peer dropped, a
        // TIME-WAIT over, a reset sent) changed a socket the services have
        // not seen: their pass must run now, not when the next frame comes.
        let moved = self
            .services
            .all_mut()
            .iter()
            .any(|s| !s.every_poll() && s.changed(&self.sockets))
            || self.closing.changed(&self.sockets);
        if cut_short || frames == MAX_INGRESS_PER_POLL || moved {
            // More may be waiting, or there is work for the services: come
            // back at once.
            stack = Some(Duration::ZERO);
        }
        let app = self
            .deadlines
            .iter()
            .chain([&self.closing.deadline()])
            .flatten()
            .min()
            .map(|at| if *at > now { *at - now } else { Duration::ZERO });
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

    /// The shared connection counters `INFO` shows.
    pub fn counters(&self) -> Counters {
        let mut counters = self.counters;
        counters.frames_rx = self.frames.rx.get();
        counters.frames_tx = self.frames.tx.get();
        counters.refused = self.frames.refused.get();
        counters
    }

    /// Lab clients being served.
    pub fn lab_in_use(&self) -> usize {
        self.services.lab_in_use()
    }

    /// Lab clients waiting in the backlog.
    pub fn lab_queued(&self) -> usize {
        self.services.lab_queued()
    }

    /// The pools' sizes.
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

/// Every port of the service table, as the startup log lists them
/// (`TCP ports 6666 (lab) ..., UDP ports 7 (echo) ...`).
struct Ports;

impl core::fmt::Display for Ports {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (transport, name) in [(Transport::Tcp, "TCP"), (Transport::Udp, "UDP")] {
            if transport == Transport::Udp {
                f.write_str(", ")?;
            }
            write!(f, "{name} ports")?;
            for port in crate::services::PORTS
                .iter()
                .filter(|p| p.transport == transport)
            {
                write!(f, " {} ({})", port.port, port.service)?;
            }
        }
        Ok(())
    }
}
