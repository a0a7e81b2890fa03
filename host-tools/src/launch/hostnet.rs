//! The host side of a device on a TAP, for every launcher: the network
//! namespace (private, named, or the caller's) and the TAP in it, opened if
//! it exists, else created with the host-side addresses; and a second
//! network's TAP, moved into a namespace of its own.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socklab_app::protocol::LAB_PORT;
use socklab_app::NetConfig;

use super::supervise::await_hello;
use super::{LaunchError, NetnsChoice, Network};
use crate::netns::{is_root, HostNet, Netns, Tap};

/// The TAP name used when none is given outside a private namespace.
pub const DEFAULT_TAP: &str = "tap0";

/// A device's namespace and TAP. The TAP drops before the namespace.
#[derive(Debug)]
pub struct HostSide {
    /// The TAP the device attaches to.
    pub tap: Tap,
    /// The namespace the TAP (and the device) live in; `None`: the caller's.
    pub netns: Option<Netns>,
}

impl HostSide {
    /// Sets up the namespace `choice` and the TAP `tap` in it; `id` names
    /// what is created (`socklab-<id>`, `sl<id>`: IFNAMSIZ allows 15
    /// characters). `user` owns a TAP created here; `mtu` is set on it.
    pub fn attach(
        choice: &NetnsChoice,
        tap: Option<&str>,
        id: &str,
        user: Option<&str>,
        mtu: Option<u32>,
    ) -> Result<Self, LaunchError> {
        let tap_name = match (tap, choice) {
            (Some(name), _) => name.to_owned(),
            (None, NetnsChoice::Private) => format!("sl{id}"),
            (None, _) => DEFAULT_TAP.to_owned(),
        };
        // Only attaching to an existing TAP in our own namespace (one that
        // belongs to this user) works unprivileged.
        let needs_root = *choice != NetnsChoice::Current || !Tap::exists(&tap_name, None);
        if needs_root && !is_root() {
            return Err(LaunchError::NotRoot);
        }
        let netns = match choice {
            NetnsChoice::Private => Some(Netns::create(&format!("socklab-{id}"))?),
            NetnsChoice::Named(name) => Some(Netns::open_or_create(name)?),
            NetnsChoice::Current => None,
        };
        let tap = if Tap::exists(&tap_name, netns.as_ref().map(Netns::name)) {
            Tap::open(&tap_name, netns.as_ref())?
        } else {
            Tap::create(&tap_name, netns.as_ref(), user)?
        };
        if let Some(mtu) = mtu {
            tap.set_mtu(mtu)?;
        }
        Ok(HostSide { tap, netns })
    }

    /// Where the host's sockets to this device are opened.
    pub fn host_net(&self) -> HostNet {
        HostNet::from_option(self.netns.as_ref().map(Netns::name))
    }
}

/// A device's second network: the TAP the device opened beside its first, moved
/// into a namespace of its own and given the host side of network 1 there. The TAP
/// drops before the namespace.
#[derive(Debug)]
pub struct SecondSide {
    /// How that network's clients reach the device.
    pub network: Network,
    /// Kept for what it deletes on drop.
    _side: HostSide,
}

impl SecondSide {
    /// Moves `tap`, which the device has open, into a new namespace
    /// `socklab-<id>-b` and addresses it there.
    pub fn attach(tap: Tap, id: &str) -> Result<Self, LaunchError> {
        let netns = Netns::create(&format!("socklab-{id}-b"))?;
        let tap = tap.move_to(&netns, 1)?;
        let net = NetConfig::default_for(1);
        let network = Network {
            host_net: HostNet::from_option(Some(netns.name())),
            tap: tap.name().to_owned(),
            ipv4: net.ipv4.address(),
            ipv6: net.ipv6.address(),
        };
        Ok(SecondSide {
            network,
            _side: HostSide {
                tap,
                netns: Some(netns),
            },
        })
    }

    /// Waits up to `timeout` until a lab client on this network gets `HELLO`;
    /// `alive` checks the device meanwhile, `log` is its log for the error.
    pub fn await_hello(
        &self,
        timeout: Duration,
        alive: impl FnMut() -> Result<(), LaunchError>,
        log: impl FnOnce() -> String,
    ) -> Result<(), LaunchError> {
        let addr = SocketAddr::new(IpAddr::V4(self.network.ipv4), LAB_PORT);
        await_hello(
            &self.network.host_net,
            addr,
            Instant::now() + timeout,
            alive,
            |reason| LaunchError::NotReady {
                timeout,
                reason: format!("on its second network: {reason}"),
                log: log(),
            },
        )
    }
}
