//! Network namespaces and TAP interfaces for the host side: create and delete
//! them by name with `ip`, and open sockets inside a namespace from a thread of
//! their own, so the caller's network (and thread) is never changed.
//!
//! A namespace is a private copy of the network stack: its own interfaces,
//! addresses and routes. A device started in one can use the default
//! addresses (192.168.69.0/24, fdaa::/64) without touching the machine's real
//! network, and several can run side by side.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use socklab_app::NetConfig;

use crate::cleanup;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

pub use crate::ip::{ip, is_root, NetnsError};

/// A name no other socklab process uses: `<prefix><pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id())
}

/// A named network namespace. One created by [`Netns::create`] is deleted on
/// drop; one opened with [`Netns::open`] is left alone.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owned: bool,
}

impl Netns {
    /// Creates the namespace `name` (with `lo` up); deleted on drop.
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        ip(["netns", "add", name])?;
        cleanup::register_netns(name);
        let netns = Netns {
            name: name.to_owned(),
            owned: true,
        };
        netns.ip(["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Creates a namespace with a fresh unique name starting with `prefix`.
    pub fn create_unique(prefix: &str) -> Result<Self, NetnsError> {
        Self::create(&unique_name(prefix))
    }

    /// Uses the existing namespace `name`; it is not deleted on drop.
    pub fn open(name: &str) -> Result<Self, NetnsError> {
        if !Self::exists(name) {
            return Err(NetnsError::NotFound(name.to_owned()));
        }
        Ok(Netns {
            name: name.to_owned(),
            owned: false,
        })
    }

    /// Opens `name` if it exists, else creates it (then it is deleted on drop).
    pub fn open_or_create(name: &str) -> Result<Self, NetnsError> {
        if Self::exists(name) {
            Self::open(name)
        } else {
            Self::create(name)
        }
    }

    /// True if a namespace of that name exists.
    pub fn exists(name: &str) -> bool {
        Path::new(NETNS_DIR).join(name).exists()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if this value created the namespace and deletes it on drop.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Keeps the namespace after this value is dropped.
    pub fn keep(&mut self) {
        if self.owned {
            cleanup::unregister_netns(&self.name);
        }
        self.owned = false;
    }

    /// The file that names it (`/var/run/netns/NAME`).
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Runs `ip -n NAME ARGS...` (an `ip` command inside the namespace).
    pub fn ip<I, S>(&self, args: I) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), self.name.clone().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        ip(all)
    }

    /// A command that runs `program` inside the namespace
    /// (`ip netns exec NAME program`; `ip` execs, so the child's PID is the
    /// program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args([
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(&self.name),
        ]);
        command.arg(program);
        command
    }

    /// Runs `f` on a new thread that has entered the namespace: sockets it
    /// creates live there (and stay there when handed back). The calling
    /// thread's namespace is never changed.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_in(&self.name, f)
    }

    /// Deletes the namespace now (everything in it goes too), reporting errors.
    pub fn delete(mut self) -> Result<(), NetnsError> {
        self.owned = false;
        cleanup::unregister_netns(&self.name);
        ip(["netns", "del", &self.name]).map(drop)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            cleanup::unregister_netns(&self.name);
            if let Err(e) = ip(["netns", "del", &self.name]) {
                eprintln!(
                    "socklab: could not delete network namespace {}: {e}",
                    self.name
                );
            }
        }
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Runs `f` on a fresh thread that has entered the namespace `name`.
fn run_in<T, F>(name: &str, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let enter_error = |error| NetnsError::Enter {
        name: name.to_owned(),
        error,
    };
    let file = File::open(Path::new(NETNS_DIR).join(name)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => NetnsError::NotFound(name.to_owned()),
        _ => enter_error(e),
    })?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn_scoped(scope, move || {
                // Only this thread, which exists just to run `f`, changes namespace.
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                drop(file);
                Ok(f())
            })
            .map_err(enter_error)?;
        match thread.join() {
            Ok(result) => result.map_err(enter_error),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Where the host side of a device's network lives: the caller's own network
/// namespace, or a named one. Client commands open their sockets there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HostNet {
    /// The namespace this process runs in.
    #[default]
    Current,
    /// A named namespace (`/var/run/netns/NAME`).
    Netns(String),
}

impl HostNet {
    /// `--netns NS` as given on the command line.
    pub fn from_option(netns: Option<&str>) -> Self {
        netns.map_or(HostNet::Current, |n| HostNet::Netns(n.to_owned()))
    }

    /// The namespace's name, if it is a named one.
    pub fn netns_name(&self) -> Option<&str> {
        match self {
            HostNet::Current => None,
            HostNet::Netns(name) => Some(name),
        }
    }

    /// Runs `f` where this network is: directly, or on a thread inside the
    /// namespace.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        match self {
            HostNet::Current => Ok(f()),
            HostNet::Netns(name) => run_in(name, f),
        }
    }

    /// Opens a TCP connection from this network.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        self.run(|| TcpStream::connect_timeout(&addr, timeout))?
    }
}

impl fmt::Display for HostNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostNet::Current => f.write_str("the current network namespace"),
            HostNet::Netns(name) => write!(f, "network namespace {name}"),
        }
    }
}

/// A TAP interface with the host-side addresses (192.168.69.100/24,
/// fdaa::100/64), up. One created by [`Tap::create`] is deleted on drop.
#[derive(Debug)]
pub struct Tap {
    name: String,
    netns: Option<String>,
    owned: bool,
}

impl Tap {
    /// Creates TAP `name` in `netns` (or the current namespace), owned by
    /// `user` if given (so an unprivileged device can attach), with the
    /// host-side addresses, and brings it up. Deleted on drop.
    pub fn create(
        name: &str,
        netns: Option<&Netns>,
        user: Option<&str>,
    ) -> Result<Self, NetnsError> {
        let tap = Self::create_bare(name, netns, user)?;
        tap.configure(0)?;
        Ok(tap)
    }

    /// Creates TAP `name` in `netns` (or the current namespace), owned by
    /// `user` if given, with no address and down: for a device to open before
    /// it moves to the namespace of its network ([`Tap::move_to`]). Deleted on
    /// drop.
    pub fn create_bare(
        name: &str,
        netns: Option<&Netns>,
        user: Option<&str>,
    ) -> Result<Self, NetnsError> {
        let mut add = vec!["tuntap", "add", "dev", name, "mode", "tap"];
        if let Some(user) = user {
            add.extend(["user", user]);
        }
        match netns {
            Some(ns) => ns.ip(&add)?,
            None => ip(&add)?,
        };
        Ok(Tap {
            name: name.to_owned(),
            netns: netns.map(|ns| ns.name().to_owned()),
            owned: true,
        })
    }

    /// Gives the TAP the host-side addresses of the device's network `index`
    /// (192.168.(69 + index).100/24, fda(a + index)::100/64) and brings it up.
    fn configure(&self, index: usize) -> Result<(), NetnsError> {
        let (v4, v6) = NetConfig::host_side(index);
        let net = NetConfig::default_for(index);
        let v4 = format!("{v4}/{}", net.ipv4.prefix_len());
        let v6 = format!("{v6}/{}", net.ipv6.prefix_len());
        let name = self.name.as_str();
        let run = |args: &[&str]| match &self.netns {
            Some(ns) => ip(["-n", ns.as_str()].iter().chain(args)),
            None => ip(args),
        };
        run(&["addr", "add", &v4, "dev", name])?;
        run(&["addr", "add", &v6, "dev", name, "nodad"])?;
        run(&["link", "set", name, "up"]).map(drop)
    }

    /// Moves the TAP into `netns` (a device that has it open keeps its
    /// descriptor: its frames now meet that namespace), gives it the host-side
    /// addresses of the device's network `index` there and brings it up. The
    /// TAP is then deleted on drop from there if it was before.
    pub fn move_to(mut self, netns: &Netns, index: usize) -> Result<Tap, NetnsError> {
        let mut args = Vec::new();
        if let Some(ns) = &self.netns {
            args.extend(["-n", ns.as_str()]);
        }
        args.extend([
            "link",
            "set",
            "dev",
            self.name.as_str(),
            "netns",
            netns.name(),
        ]);
        ip(args)?;
        let moved = Tap {
            name: self.name.clone(),
            netns: Some(netns.name().to_owned()),
            owned: self.owned,
        };
        self.owned = false;
        moved.configure(index)?;
        Ok(moved)
    }

    /// Sets the TAP's MTU (68 to 65521: the kernel keeps room for the
    /// Ethernet header under 65535). A device must open the TAP after this to
    /// see the new MTU.
    pub fn set_mtu(&self, mtu: u32) -> Result<(), NetnsError> {
        let mtu = mtu.to_string();
        let mut args = Vec::new();
        if let Some(ns) = &self.netns {
            args.extend(["-n", ns.as_str()]);
        }
        args.extend([
            "link",
            "set",
            "dev",
            self.name.as_str(),
            "mtu",
            mtu.as_str(),
        ]);
        ip(args).map(|_| ())
    }

    /// Uses the existing TAP `name` (in `netns` or the current namespace); it
    /// is not deleted on drop.
    pub fn open(name: &str, netns: Option<&Netns>) -> Result<Self, NetnsError> {
        let netns = netns.map(|ns| ns.name().to_owned());
        if !Self::exists(name, netns.as_deref()) {
            let place = netns
                .as_deref()
                .map(|n| format!(" in network namespace {n}"))
                .unwrap_or_default();
            return Err(NetnsError::NoTap {
                name: name.to_owned(),
                place,
            });
        }
        Ok(Tap {
            name: name.to_owned(),
            netns,
            owned: false,
        })
    }

    /// True if an interface `name` exists in `netns` (or the current namespace).
    pub fn exists(name: &str, netns: Option<&str>) -> bool {
        let mut args = Vec::new();
        if let Some(ns) = netns {
            args.extend(["-n", ns]);
        }
        args.extend(["link", "show", "dev", name]);
        ip(args).is_ok()
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace it lives in (`None`: the current one).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// True if this value created the TAP and deletes it on drop.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Keeps the TAP after this value is dropped.
    pub fn keep(&mut self) {
        self.owned = false;
    }

    /// Deletes the TAP now, reporting errors.
    pub fn delete(mut self) -> Result<(), NetnsError> {
        self.owned = false;
        self.del()
    }

    fn del(&self) -> Result<(), NetnsError> {
        let mut args = Vec::new();
        if let Some(ns) = &self.netns {
            if !Netns::exists(ns) {
                return Ok(()); // Gone with its namespace.
            }
            args.extend(["-n", ns.as_str()]);
        }
        args.extend(["link", "del", "dev", self.name.as_str()]);
        ip(args).map(drop)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = self.del() {
                eprintln!("socklab: could not delete TAP {}: {e}", self.name);
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn unique_names_differ_and_fit_ifnamsiz() {
        let a = unique_name("sl");
        let b = unique_name("sl");
        assert_ne!(a, b);
        assert!(a.len() <= 15, "{a}");
    }

    #[test]
    fn current_net_runs_inline() {
        let here = std::thread::current().id();
        assert_eq!(
            HostNet::Current
                .run(|| std::thread::current().id())
                .unwrap(),
            here
        );
        assert!(matches!(
            HostNet::Netns("socklab-no-such-ns".into()).run(|| ()),
            Err(NetnsError::NotFound(_))
        ));
    }

    /// Needs root: a namespace with a TAP, a socket opened inside it.
    #[test]
    fn namespace_and_tap_round_trip() {
        assert!(
            is_root(),
            "this test needs root (namespaces, TAPs): run it with sudo"
        );
        let ns = Netns::create_unique("socklab-t").unwrap();
        let tap = Tap::create(&unique_name("slt"), Some(&ns), None).unwrap();
        assert!(Tap::exists(tap.name(), Some(ns.name())));
        assert!(
            !Tap::exists(tap.name(), None),
            "the TAP must not leak into the caller's namespace"
        );
        // A listener bound to the TAP's address exists only inside.
        let listener = ns
            .run(|| std::net::TcpListener::bind((socklab_app::config::HOST_IPV4, 0)))
            .unwrap()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = HostNet::Netns(ns.name().into())
            .connect(addr, Duration::from_secs(2))
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
        let name = ns.name().to_owned();
        drop(tap);
        drop(ns);
        assert!(!Netns::exists(&name));
    }
}
