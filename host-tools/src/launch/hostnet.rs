//! The host side of a device on a TAP, for every launcher: the network
//! namespace (private, named, or the caller's) and the TAP in it, opened if
//! it exists, else created with the host-side addresses.

use super::{LaunchError, NetnsChoice};
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
