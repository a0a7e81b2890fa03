//! The one QEMU command line every machine boots with: the machine's own
//! words come from its board table ([`MachineSpec`]); the network (user
//! networking with [`FORWARDED_PORTS`], or a TAP), semihosting and the
//! capture are the same for all.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use socklab_app::protocol::Mac;
use socklab_app::NetConfig;

use crate::launch::machine::MachineSpec;
use crate::launch::ports::FORWARDED_PORTS;

/// The network of a running QEMU device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuLink {
    /// User networking: host port = `port_base` + device port, on 127.0.0.1.
    User {
        /// The port base.
        port_base: u16,
        /// The device's DHCP lease (10.0.2.15 on QEMU's default network).
        lease: Ipv4Addr,
    },
    /// A TAP: the device at its static addresses.
    Tap,
}

/// The device's MAC as QEMU writes it.
pub fn mac_text(index: usize) -> String {
    Mac(NetConfig::default_for(index).mac).to_string()
}

/// QEMU's arguments for `spec` up to (not including) the caller's extra ones
/// and `-kernel`: the machine, semihosting (the exit status of a panic or
/// fault, and the firmware's command line), the network (a second NIC on
/// `second_tap` when given) and the capture.
pub fn qemu_args(
    spec: &MachineSpec,
    link: &QemuLink,
    tap: Option<&str>,
    second_tap: Option<&str>,
    pcap: Option<&Path>,
    firmware_args: &[String],
) -> Vec<OsString> {
    let netdev = match (link, tap) {
        (QemuLink::User { port_base, .. }, _) => {
            let mut netdev = "user,id=n0".to_owned();
            for port in FORWARDED_PORTS {
                let _ = write!(
                    netdev,
                    ",hostfwd=tcp:127.0.0.1:{}-:{port}",
                    port_base + port
                );
            }
            netdev
        }
        // Without the virtio-net header on the TAP (vnet_hdr=off), a
        // filter-dump capture holds plain Ethernet frames.
        (QemuLink::Tap, Some(tap)) => {
            format!("tap,id=n0,ifname={tap},script=no,downscript=no,vnet_hdr=off")
        }
        (QemuLink::Tap, None) => unreachable!("a TAP link has a TAP"),
    };
    // argv[0] first; QEMU reads `,,` as a comma inside a value.
    let mut semihosting = format!("enable=on,target=native,arg={}", spec.elf);
    for arg in firmware_args {
        let _ = write!(semihosting, ",arg={}", arg.replace(',', ",,"));
    }
    let mut args: Vec<OsString> = spec.machine_args().map(OsString::from).collect();
    args.extend(
        [
            "-nographic",
            "-semihosting-config",
            &semihosting,
            "-netdev",
            &netdev,
        ]
        .iter()
        .map(OsString::from),
    );
    // A named netdev (not `-nic`): `filter-dump` needs one.
    args.extend(
        spec.nic_args("n0", &mac_text(0))
            .into_iter()
            .map(OsString::from),
    );
    if let Some(tap) = second_tap {
        args.push("-netdev".into());
        args.push(format!("tap,id=n1,ifname={tap},script=no,downscript=no,vnet_hdr=off").into());
        args.extend(
            spec.nic_args("n1", &mac_text(1))
                .into_iter()
                .map(OsString::from),
        );
    }
    if let Some(pcap) = pcap {
        let mut object = OsString::from("filter-dump,id=d0,netdev=n0,file=");
        object.push(pcap);
        args.push("-object".into());
        args.push(object);
    }
    args
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::launch::machine::Machine;
    use crate::launch::ports::DEFAULT_PORT_BASE;

    fn words(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn user_args_forward_every_port_on_loopback() {
        let link = QemuLink::User {
            port_base: DEFAULT_PORT_BASE,
            lease: Ipv4Addr::new(10, 0, 2, 15),
        };
        let args = words(qemu_args(
            Machine::Mps2An385.spec(),
            &link,
            None,
            None,
            None,
            &[],
        ));
        let netdev = &args[args.iter().position(|a| a == "-netdev").unwrap() + 1];
        for (host, device) in [
            (16666, 6666),
            (16667, 6667),
            (10007, 7),
            (10009, 9),
            (10019, 19),
            (15201, 5201),
            (15001, 5001),
        ] {
            assert!(
                netdev.contains(&format!("hostfwd=tcp:127.0.0.1:{host}-:{device}")),
                "{netdev}"
            );
        }
        assert_eq!(netdev.matches("hostfwd=").count(), FORWARDED_PORTS.len());
        assert!(args.iter().any(|a| a.contains("macaddr=02:00:00:00:00:01")));
        assert!(!args.iter().any(|a| a.contains("filter-dump")));
    }

    #[test]
    fn riscv_virtio_net_has_event_idx_off() {
        let args = words(qemu_args(
            Machine::RiscvVirt.spec(),
            &QemuLink::Tap,
            Some("sl1-0"),
            Some("sl1-0b"),
            None,
            &[],
        ));
        let devices: Vec<&String> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "-device")
            .map(|(i, _)| &args[i + 1])
            .collect();
        assert_eq!(
            devices,
            [
                "virtio-net-device,netdev=n0,mac=02:00:00:00:00:01,event_idx=off",
                "virtio-net-device,netdev=n1,mac=02:00:00:00:00:02,event_idx=off"
            ]
        );
        assert!(args
            .contains(&"tap,id=n1,ifname=sl1-0b,script=no,downscript=no,vnet_hdr=off".to_owned()));
        assert_eq!(args[..4], ["-machine", "virt", "-bios", "none"]);
    }

    #[test]
    fn tap_args_name_the_tap_the_capture_and_the_boot_options() {
        let args = words(qemu_args(
            Machine::Mps2An385.spec(),
            &QemuLink::Tap,
            Some("sl1-0"),
            None,
            Some(Path::new("/tmp/x.pcap")),
            &["--drop-chance".to_owned(), "5".to_owned(), "a,b".to_owned()],
        ));
        assert!(args
            .contains(&"tap,id=n0,ifname=sl1-0,script=no,downscript=no,vnet_hdr=off".to_owned()));
        assert!(args.contains(&"filter-dump,id=d0,netdev=n0,file=/tmp/x.pcap".to_owned()));
        assert!(args.contains(
            &"enable=on,target=native,arg=socklab-mps2,arg=--drop-chance,arg=5,arg=a,,b".to_owned()
        ));
    }
}
