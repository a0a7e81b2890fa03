//! The application: the network interfaces, the service table, the closing pool
//! and the poll loop that runs them.
//!
//! Every interface is its own smoltcp `Interface` (its NIC, MAC, addresses,
//! ARP/NDP cache and counters), and all of them share one `SocketSet`: a
//! listening socket bound to a port and no address takes a SYN from whichever
//! interface it came in on, as a kernel's `INADDR_ANY` listener does, so the
//! lab's slots and backlog are one pool for every network.
//!
//! Each interface polls every socket of the set. smoltcp resets a TCP socket
//! whose local address the polling interface does not hold ("source IP address
//! no longer available"), so each interface also holds the others' addresses,
//! as host routes (/32, /128): it never routes to their networks (no ARP or NDP
//! for them goes out on it), and a connection of another network fails the
//! route lookup and is sent by its own interface. A kernel's weak host model
//! does the same. docs/ARCHITECTURE.md says why this arrangement and what it
//! costs.

use log::info;
use smoltcp::iface::{
    self, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, Socket};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr, Ipv6Cidr};

use crate::board::config::{Config, NetConfig, MAX_NETS};
use crate::board::sizes::Sizes;
use crate::board::storage::{self, Storage, StorageError};
use crate::phy::counted::{Counted, FrameCounters};
use crate::pool::closing::{Class, ClosingPool};
use crate::services::service::{Context, Peers, SocketFactory};
use crate::services::{Table, Transport, COUNT, DECLARED};
use crate::status::counters::Counters;
use crate::status::events::Events;
use crate::status::view::View;
use crate::wire::protocol::{self, IfaceRow};

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

const _: () = assert!(
    MAX_NETS <= protocol::IFACE_NAMES.len(),
    "an interface without a name"
);

/// One network interface: smoltcp's interface over one of the board's devices,
/// its frame counters and where its IPv4 address came from.
struct Net {
    iface: Interface,
    frames: FrameCounters,
    ipv4_source: Ipv4Source,
    /// The IP MTU (smoltcp counts the Ethernet header in the device's).
    mtu: usize,
}

impl Net {
    fn new<D: Device + ?Sized>(config: &NetConfig, seed: u64, device: &mut D, now: Instant) -> Net {
        let mut iface_config = iface::Config::new(HardwareAddress::Ethernet(config.mac));
        iface_config.random_seed = seed;
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
        let mtu = device
            .capabilities()
            .max_transmission_unit
            .saturating_sub(smoltcp::wire::EthernetFrame::<&[u8]>::header_len());
        Net {
            iface,
            frames: FrameCounters::new(config.mac),
            ipv4_source: if config.dhcp {
                Ipv4Source::Fallback
            } else {
                Ipv4Source::Static
            },
            mtu,
        }
    }

    /// What `IFCONFIG` and `INFO` show of interface `index`, configured with `config`.
    fn status(&self, index: usize, config: &NetConfig) -> IfaceRow<'static> {
        let f = &self.frames;
        IfaceRow {
            name: protocol::IFACE_NAMES[index],
            mac: config.mac,
            ipv6: config.ipv6,
            ipv4: self.ipv4(),
            ipv4_source: self.ipv4_source.name(),
            mtu: self.mtu,
            rx_frames: f.rx.get(),
            rx_bytes: f.rx_bytes.get(),
            rx_dropped: f.rx_dropped.get(),
            tx_frames: f.tx.get(),
            tx_bytes: f.tx_bytes.get(),
            tx_dropped: f.tx_dropped.get(),
        }
    }

    /// The IPv4 address in use (static, or from DHCP).
    fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|cidr| match cidr {
            IpCidr::Ipv4(v4) => Some(*v4),
            _ => None,
        })
    }
}

/// The application: network interfaces, service table and closing pool.
pub struct App<'a> {
    config: Config,
    sizes: Sizes,
    nets: heapless::Vec<Net, MAX_NETS>,
    sockets: SocketSet<'a>,
    services: Table<'a>,
    /// When each service of the table next needs a look, by table index.
    deadlines: [Option<Instant>; COUNT],
    closing: ClosingPool<'a>,
    /// The DHCP client of the first interface, if it asks for a lease.
    dhcp: Option<SocketHandle>,
    counters: Counters,
    started: Instant,
    events: Events,
    /// Which interface sends first when none received (turns about each poll).
    turn: usize,
}

impl<'a> App<'a> {
    /// Builds one interface per device in `devices` (interface `i` on
    /// `devices[i]`, with `config.nets[i]`, or [`NetConfig::default_for`] where
    /// the board gave fewer) and every socket over the board's storage. Devices
    /// beyond [`MAX_NETS`] are left out; `config.nets` keeps as many interfaces
    /// as there are devices.
    pub fn new<D: Device>(
        config: Config,
        sizes: Sizes,
        storage: Storage<'a>,
        devices: &mut [D],
        now: Instant,
    ) -> Result<Self, StorageError> {
        let mut slot = None;
        Self::new_in(&mut slot, config, sizes, storage, devices, now)?;
        Ok(slot.take().expect("new_in fills the slot"))
    }

    /// [`App::new`] into `slot`, where the application then stays: it is tens of
    /// KiB (its interfaces' IP buffers, the services' state, the event ring), and
    /// built in place a bare-metal board's stack holds it once, not once per move.
    pub fn new_in<'s, D: Device>(
        slot: &'s mut Option<Self>,
        mut config: Config,
        sizes: Sizes,
        storage: Storage<'a>,
        devices: &mut [D],
        now: Instant,
    ) -> Result<&'s mut Self, StorageError> {
        storage::check(&sizes, &storage)?;
        let Storage {
            sockets: socket_storage,
            lab: lab_slots,
            closing,
            buffers,
            udp: udp_meta,
        } = storage;

        let count = devices.len().clamp(1, MAX_NETS);
        while config.nets.len() < count {
            let next = NetConfig::default_for(config.nets.len());
            let _ = config.nets.push(next);
        }
        config.nets.truncate(count);

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
        let dhcp = config.nets[0]
            .dhcp
            .then(|| sockets.add(dhcpv4::Socket::new()));

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
        for (index, net) in config.nets.iter().enumerate() {
            info!(
                "interface {} ({}): {} and {}",
                index,
                protocol::Mac(net.mac),
                net.ipv4,
                net.ipv6
            );
        }
        info!("listening on every interface: {}", Ports);
        info!(
            "iperf3: {} sockets ({} B rx, {} B tx), at most {} streams; iperf2: {} sockets",
            sizes.iperf3.sockets,
            sizes.iperf3.rx,
            sizes.iperf3.tx,
            sizes.iperf3.max_streams(),
            sizes.iperf2.sockets
        );
        let app = slot.insert(App {
            config,
            sizes,
            nets: heapless::Vec::new(),
            sockets,
            services,
            deadlines: [None; COUNT],
            closing: pool,
            dhcp,
            counters: Counters::default(),
            started: now,
            turn: 0,
            events: Events::new(),
        });
        // The interfaces last, each straight into its place.
        for (index, device) in devices.iter_mut().take(count).enumerate() {
            let net = &app.config.nets[index];
            let seed = app.config.random_seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let _ = app.nets.push(Net::new(net, seed, device, now));
        }
        share_addresses(&mut app.nets, &app.config.nets);
        Ok(app)
    }

    /// Processes the frames waiting in each of `devices` (the ones [`App::new`]
    /// was given, in the same order), runs the services that have something to
    /// do, and sends what they wrote. Returns how long the board may sleep
    /// before the next call if no frame arrives (`None`: until a frame arrives).
    ///
    /// In that order, so that an acknowledgment rides on the answer it
    /// acknowledges: one frame per echo round trip, not two. The services
    /// run in table order ([`crate::services`]), then the closing pool.
    pub fn poll<D: Device>(&mut self, now: Instant, devices: &mut [D]) -> Option<Duration> {
        let mut frames = 0;
        let mut full = false;
        let mut cut_short = false;
        let mut seen = crate::phy::counted::TcpSeen::default();
        let mut received = [false; MAX_NETS];
        for ((net, device), received) in self
            .nets
            .iter_mut()
            .zip(devices.iter_mut())
            .zip(received.iter_mut())
        {
            net.iface.poll_maintenance(now);
            let mut counted = Counted {
                inner: &mut *device,
                counters: &net.frames,
            };
            let mut taken = 0;
            // A SYN the closing pool holds back is this interface's next
            // frame: it is read here, whatever the count.
            while taken < MAX_INGRESS_PER_POLL || self.closing.holds() {
                match self
                    .closing
                    .ingress(&mut net.iface, now, &mut counted, &mut self.sockets)
                {
                    PollIngressSingleResult::None => break,
                    _ => taken += 1,
                }
                if net.frames.reset_seen() && !self.closing.holds() {
                    // A reset may have sent a socket in SYN-RECEIVED back to
                    // LISTEN with that handshake's timers: the services renew
                    // it before the next SYN can reach it.
                    cut_short = true;
                    break;
                }
            }
            frames += taken;
            *received = taken > 0;
            full |= taken == MAX_INGRESS_PER_POLL;
            seen.merge(net.frames.take_seen());
        }
        self.poll_dhcp();

        // A service that waits to be woken runs when a segment came for one
        // of its ports, when one of its sockets changed state on a stack
        // timer, when its own deadline is due, or on any wake-up without
        // traffic. Otherwise a busy echo stream would scan every lab slot on
        // every frame.
        let woken_by_time = frames == 0;
        self.counters = self.counters();
        let mut statuses = heapless::Vec::<IfaceRow<'static>, MAX_NETS>::new();
        for (index, (net, config)) in self.nets.iter().zip(self.config.nets.iter()).enumerate() {
            let _ = statuses.push(net.status(index, config));
        }
        let view = View {
            config: &self.config,
            nets: &statuses,
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
        // segment per socket. A frame that arrives meanwhile stays queued in
        // the device, so the board's wait returns at once. Each interface
        // walks every socket and sends what it has a route for; a
        // connection of another network fails its route lookup there, and
        // smoltcp then holds that socket back for a second unless its own
        // interface knows the peer's link address. So the interfaces that
        // just received go first (the answer to a SYN can ask for its
        // peer's address at once), the others in turn (see
        // docs/ARCHITECTURE.md).
        let count = self.nets.len().min(devices.len());
        // smoltcp's DHCP client is tied to no interface: while the first
        // interface waits for its lease, it sends first, so the request
        // leaves where the DHCP server is.
        let leasing = self.dhcp.is_some() && self.nets[0].ipv4_source != Ipv4Source::Dhcp;
        self.turn = if leasing {
            0
        } else {
            self.turn.wrapping_add(1)
        };
        let mut order = heapless::Vec::<usize, MAX_NETS>::new();
        for first in [true, false] {
            for k in 0..count {
                let index = (self.turn + k) % count;
                if received[index] == first {
                    let _ = order.push(index);
                }
            }
        }
        let mut stack: Option<Duration> = None;
        for &index in &order {
            let (net, device) = (&mut self.nets[index], &mut devices[index]);
            let mut counted = Counted {
                inner: &mut *device,
                counters: &net.frames,
            };
            let delay = loop {
                let sent = net.iface.poll_egress(now, &mut counted, &mut self.sockets)
                    == PollResult::SocketStateChanged;
                let delay = net.iface.poll_delay(now, &self.sockets);
                if !sent || delay != Some(Duration::ZERO) {
                    break delay;
                }
            };
            stack = match (stack, delay) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
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
        if cut_short || full || moved {
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
    pub fn reset_all<D: Device>(&mut self, now: Instant, devices: &mut [D]) -> usize {
        let mut reset = 0;
        for (_, socket) in self.sockets.iter_mut() {
            if let Socket::Tcp(socket) = socket {
                if socket.is_active() {
                    socket.abort();
                    reset += 1;
                }
            }
        }
        for (net, device) in self.nets.iter_mut().zip(devices.iter_mut()) {
            let mut counted = Counted {
                inner: &mut *device,
                counters: &net.frames,
            };
            net.iface.poll_egress(now, &mut counted, &mut self.sockets);
        }
        info!("stopping: reset {reset} connections");
        reset
    }

    /// The shared connection counters `INFO` shows (frames summed over every
    /// interface).
    pub fn counters(&self) -> Counters {
        let mut counters = self.counters;
        let sum = |f: fn(&FrameCounters) -> u64| self.nets.iter().map(|n| f(&n.frames)).sum();
        counters.frames_rx = sum(|f| f.rx.get());
        counters.frames_tx = sum(|f| f.tx.get());
        counters.refused = sum(|f| f.refused.get());
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

    /// The network interfaces in use, the first one first.
    pub fn nets(&self) -> &[NetConfig] {
        &self.config.nets
    }

    /// The IPv4 address in use on interface `index` (static, or from DHCP).
    pub fn ipv4(&self, index: usize) -> Option<Ipv4Cidr> {
        self.nets.get(index).and_then(Net::ipv4)
    }

    /// Applies DHCP events to the first interface: a lease replaces the static
    /// address, losing it brings the static one back.
    fn poll_dhcp(&mut self) {
        let Some(handle) = self.dhcp else {
            return;
        };
        let event = self.sockets.get_mut::<dhcpv4::Socket>(handle).poll();
        let (net, config) = (&mut self.nets[0], &self.config.nets[0]);
        let (address, router, source) = match event {
            None => return,
            Some(dhcpv4::Event::Configured(lease)) => {
                info!("DHCP lease {} router {:?}", lease.address, lease.router);
                (lease.address, lease.router, Ipv4Source::Dhcp)
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if net.ipv4_source == Ipv4Source::Fallback {
                    return;
                }
                info!("DHCP lease lost: back to {}", config.ipv4);
                (config.ipv4, config.gateway4, Ipv4Source::Fallback)
            }
        };
        net.iface.update_ip_addrs(|addrs| {
            for cidr in addrs.iter_mut() {
                if let IpCidr::Ipv4(v4) = cidr {
                    *v4 = address;
                }
            }
        });
        net.iface.routes_mut().remove_default_ipv4_route();
        if let Some(router) = router {
            let _ = net.iface.routes_mut().add_default_ipv4_route(router);
        }
        net.ipv4_source = source;
        share_addresses(&mut self.nets, &self.config.nets);
    }
}

/// Gives every interface its own addresses first, then each other interface's as a
/// host route (/32, /128; the IPv4 one as in use, leased or static): see the module
/// documentation for why.
fn share_addresses(nets: &mut [Net], configs: &[NetConfig]) {
    let held: heapless::Vec<(Option<Ipv4Cidr>, Ipv6Cidr), MAX_NETS> = nets
        .iter()
        .zip(configs)
        .map(|(net, config)| (net.ipv4(), config.ipv6))
        .collect();
    for (index, net) in nets.iter_mut().enumerate() {
        let (own4, own6) = held[index];
        net.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            // Own two, and two per other interface: smoltcp's address list is
            // sized for MAX_NETS interfaces (`iface-max-addr-count-4`).
            let _ = addrs.push(IpCidr::Ipv4(own4.unwrap_or(configs[index].ipv4)));
            let _ = addrs.push(IpCidr::Ipv6(own6));
            for (other, (v4, v6)) in held.iter().enumerate() {
                if other != index {
                    if let Some(v4) = v4 {
                        let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(v4.address(), 32)));
                    }
                    let _ = addrs.push(IpCidr::Ipv6(Ipv6Cidr::new(v6.address(), 128)));
                }
            }
        });
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
