//! The QEMU machines socklab boots, and the one QEMU command line they all
//! share: the machine's own words come from its [`MachineSpec`] (one module
//! per machine), the network, semihosting and capture are the same for all.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use socklab_app::config::DEFAULT_MAC;

use super::{QemuLink, FORWARDED_PORTS};

/// A QEMU machine with a socklab board crate. Adding a machine: a variant
/// here, a module with its [`MachineSpec`], and the board crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Machine {
    /// Cortex-M3 with a LAN9118 (`firmware/boards/mps2-an385`).
    #[default]
    #[value(name = "mps2-an385")]
    Mps2An385,
    /// riscv32imac with virtio-net (`firmware/boards/riscv-virt`).
    #[value(name = "riscv-virt")]
    RiscvVirt,
}

impl Machine {
    /// Every machine, for help texts and tests.
    pub const ALL: &'static [Machine] = &[Machine::Mps2An385, Machine::RiscvVirt];

    /// What QEMU needs to know about it.
    pub fn spec(self) -> &'static MachineSpec {
        match self {
            Machine::Mps2An385 => &super::mps2_an385::SPEC,
            Machine::RiscvVirt => &super::riscv_virt::SPEC,
        }
    }
}

/// A machine's facts: how QEMU runs it and where its image comes from.
#[derive(Debug)]
pub struct MachineSpec {
    /// The board's name, as `INFO` gives it.
    pub board: &'static str,
    /// The QEMU program.
    pub qemu: &'static str,
    /// The Debian package that has it (for the error message).
    pub qemu_package: &'static str,
    /// `-machine ... -cpu ...` and whatever else the machine needs.
    pub machine_args: &'static [&'static str],
    /// The NIC on netdev `n0`; `{mac}` stands for the device's MAC.
    pub nic: &'static [&'static str],
    /// The image's name: its argv[0] through semihosting.
    pub elf_name: &'static str,
    /// Where the build puts the image, from the source root.
    pub image_path: &'static str,
    /// The command that builds it, from the source root.
    pub build: &'static [&'static str],
    /// The source folders the image is built from (staleness check).
    pub sources: &'static [&'static str],
    /// Environment variable naming a prebuilt image to boot instead.
    pub image_env: &'static str,
    /// The board in two sentences, for a newcomer (`socklab demo`).
    pub about: &'static str,
}

/// The device's MAC as QEMU writes it.
pub fn mac_text() -> String {
    let m = DEFAULT_MAC.0;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// QEMU's arguments for `spec` up to (not including) the caller's extra ones
/// and `-kernel`: the machine, semihosting (the exit status of a panic or
/// fault, and the firmware's command line), the network and the capture.
pub fn qemu_args(
    spec: &MachineSpec,
    link: &QemuLink,
    tap: Option<&str>,
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
    let mut semihosting = format!("enable=on,target=native,arg={}", spec.elf_name);
    for arg in firmware_args {
        let _ = write!(semihosting, ",arg={}", arg.replace(',', ",,"));
    }
    let mac = mac_text();
    let mut args: Vec<OsString> = spec.machine_args.iter().map(OsString::from).collect();
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
        spec.nic
            .iter()
            .map(|a| OsString::from(a.replace("{mac}", &mac))),
    );
    if let Some(pcap) = pcap {
        let mut object = OsString::from("filter-dump,id=d0,netdev=n0,file=");
        object.push(pcap);
        args.push("-object".into());
        args.push(object);
    }
    args
}
