//! The demo's "one device, two networks" section (`socklab demo --networks 2`):
//! a client on each network, both accepted by the one listening socket; two
//! local addresses on one port in `NETSTAT`; two interfaces, two addresses in
//! `IFCONFIG`; and no route from one network to the other's address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, ensure};
use socklab_app::protocol::{state, IFCONFIG, LAB_PORT, NETSTAT};
use socklab_host::client::LabClient;
use socklab_host::launch::RunningBoard;

use super::engine::{need, Demo, Stopped};

impl Demo {
    /// The section, on a device started with a second network (nothing without one).
    pub(super) fn two_networks(
        &mut self,
        device: &dyn RunningBoard,
        timeout: Duration,
    ) -> Result<(), Stopped> {
        let Some(second) = device.second_network().cloned() else {
            return Ok(());
        };
        self.section("One device, two networks");
        self.explain(&format!(
            "A machine may be on several networks, with a different IP address on each: \
             number of active network interfaces = number of IP addresses. This device has a \
             second interface, on a second TAP in a namespace of its own: network B, where it \
             is {}. Each network's clients see only their own network.",
            second.ipv4
        ));
        let addr_a = device.lab_addr();
        let addr_b = SocketAddr::new(IpAddr::V4(second.ipv4), LAB_PORT);
        let alice = self.step(
            &format!("alice, on network A, connects to {addr_a}"),
            || {
                let client = LabClient::connect_in(device.host_net(), addr_a, timeout)?;
                let g = client.greeting();
                let detail = format!("slot {}, its socket {} <-> {}", g.slot, g.local, g.peer);
                Ok((client, detail))
            },
        )?;
        let dave = self.step(&format!("dave, on network B, connects to {addr_b}"), || {
            let client = LabClient::connect_in(&second.host_net, addr_b, timeout)?;
            let g = client.greeting();
            let detail = format!(
                "slot {}, its socket {} <-> {}: the same listening port, the other address",
                g.slot, g.local, g.peer
            );
            Ok((client, detail))
        })?;
        let mut dave = dave;
        self.step(
            &format!("dave: {NETSTAT}: two local addresses, one port"),
            || {
                need(&dave, "dave is not connected")?;
                let client = dave.as_mut().expect("checked");
                let rows = client.netstat()?;
                let locals: Vec<String> = rows
                    .iter()
                    .filter(|r| r.state == state::ESTABLISHED && r.local.port() == Some(LAB_PORT))
                    .map(|r| r.local.to_string())
                    .collect();
                for want in [addr_a, addr_b] {
                    ensure!(
                        locals.iter().any(|l| *l == want.to_string()),
                        "no ESTABLISHED socket on {want}: {locals:?}"
                    );
                }
                Ok((
                    (),
                    format!("lab sockets ESTABLISHED on {}", locals.join(" and ")),
                ))
            },
        )?;
        self.step(
            &format!("dave: {IFCONFIG}: two interfaces, two addresses"),
            || {
                need(&dave, "dave is not connected")?;
                let client = dave.as_mut().expect("checked");
                let interfaces = client.ifconfig()?;
                ensure!(interfaces.len() == 2, "{} interfaces", interfaces.len());
                let shown: Vec<String> = interfaces
                    .iter()
                    .map(|i| format!("{} {}", i.name, i.ipv4.as_deref().unwrap_or("none")))
                    .collect();
                Ok(((), shown.join(", ")))
            },
        )?;
        self.step(&format!("network A connects to {addr_b}"), || match device
            .host_net()
            .connect(addr_b, timeout)
        {
            Ok(_) => bail!("network A reached {addr_b}: its networks are not apart"),
            Err(e) if e.kind() == std::io::ErrorKind::NetworkUnreachable => {
                Ok(((), format!("refused: {e}")))
            }
            Err(e) => bail!("failed, but not for want of a route: {e}"),
        })?;
        self.explain(&format!(
            "\"Network is unreachable\": network A's machines have a route to their own network \
             only, 192.168.69.0/24; {} lies on network B, which nothing on network A leads to. \
             The device is on both, so it has an address on each, and its one listening \
             socket serves both: each accepted connection is on the interface it came in on.",
            second.ipv4
        ));
        drop(alice);
        drop(dave);
        Ok(())
    }
}
