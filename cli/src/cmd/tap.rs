//! `socklab tap up|down`: create or delete a TAP interface with the host-side
//! addresses (192.168.69.100/24, fdaa::100/64), optionally in a namespace.

use std::process::ExitCode;

use anyhow::Context;
use socklab_app::config::{DEFAULT_IPV4, DEFAULT_IPV6, HOST_IPV4, HOST_IPV6};
use socklab_host::netns::{self, Netns, Tap};

use super::Global;

/// Create or delete.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Action {
    /// Create the TAP (and the namespace, if `--netns` names a new one).
    Up,
    /// Delete the TAP (and the namespace, if `--netns` is given and nothing else is left in it).
    Down,
}

/// Arguments of `socklab tap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `up` creates, `down` deletes.
    #[arg(value_enum)]
    pub action: Action,

    /// The TAP's name.
    #[arg(long, default_value = "tap0")]
    pub name: String,

    /// The TAP's MTU, up to 65521 (e.g. 65000 for `socklab-tap --pool jumbo`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=65521))]
    pub mtu: Option<u32>,

    /// The user allowed to attach a device to the TAP without root
    /// [default: $SUDO_USER, else the current user].
    #[arg(long)]
    pub user: Option<String>,
}

/// Runs `socklab tap`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        netns::is_root(),
        "creating and deleting TAPs needs root: run `sudo socklab tap ...`"
    );
    match args.action {
        Action::Up => up(global, &args),
        Action::Down => down(global, &args),
    }
}

fn up(global: &Global, args: &Args) -> anyhow::Result<ExitCode> {
    let mut ns = global
        .netns
        .as_deref()
        .map(Netns::open_or_create)
        .transpose()?;
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok());
    let mut tap = Tap::create(&args.name, ns.as_ref(), user.as_deref())
        .with_context(|| format!("cannot create TAP {}", args.name))?;
    if let Some(mtu) = args.mtu {
        tap.set_mtu(mtu)
            .with_context(|| format!("cannot set the MTU of {} to {mtu}", args.name))?;
    }
    tap.keep();
    let place = match &mut ns {
        Some(ns) => {
            let created = ns.is_owned();
            ns.keep();
            format!(
                " in network namespace {ns}{}",
                if created { " (created)" } else { "" }
            )
        }
        None => String::new(),
    };
    println!(
        "TAP {} is up{place}: host side {HOST_IPV4}/{}, {HOST_IPV6}/{}{}",
        args.name,
        DEFAULT_IPV4.prefix_len(),
        DEFAULT_IPV6.prefix_len(),
        user.map(|u| format!(", owned by {u}")).unwrap_or_default(),
    );
    let netns_flag = global
        .netns
        .as_deref()
        .map(|n| format!(" --netns {n}"))
        .unwrap_or_default();
    println!(
        "start the device:  socklab{netns_flag} run tap --name {}",
        args.name
    );
    println!(
        "remove it:         sudo socklab{netns_flag} tap down --name {}",
        args.name
    );
    super::ok()
}

fn down(global: &Global, args: &Args) -> anyhow::Result<ExitCode> {
    let ns = global.netns.as_deref().map(Netns::open).transpose()?;
    if !Tap::exists(&args.name, global.netns.as_deref()) {
        let (place, list) = match &global.netns {
            Some(ns) => (
                format!(" in network namespace {ns}"),
                format!("ip -n {ns} link show"),
            ),
            None => (String::new(), "ip link show".to_owned()),
        };
        anyhow::bail!(
            "there is no TAP {}{place}: nothing to delete (`{list}` lists the interfaces)",
            args.name
        );
    }
    Tap::open(&args.name, ns.as_ref())?
        .delete()
        .with_context(|| format!("cannot delete TAP {}", args.name))?;
    println!("TAP {} deleted", args.name);
    if let Some(ns) = ns {
        // Delete the namespace only if nothing but the loopback is left in it.
        let links = ns.ip(["-o", "link", "show"])?;
        let others = links.lines().filter(|l| !l.contains(" lo:")).count();
        if others == 0 {
            let name = ns.name().to_owned();
            ns.delete()?;
            println!("network namespace {name} deleted (it was empty)");
        } else {
            println!("network namespace {ns} kept: {others} other interface(s) in it");
        }
    }
    super::ok()
}
