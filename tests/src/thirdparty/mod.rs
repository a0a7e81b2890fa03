//! Third-party tools against the device: tshark, nmap, hping3, ping, a Java
//! socket client and Python asyncio, each run as its own process inside the
//! device's private network namespace, so every packet they send goes to the
//! device's TAP and nowhere else.
//!
//! Each submodule holds the cases of one tool; `tests/tests/thirdparty_*.rs`
//! runs them on each board through [`thirdparty_cases!`](crate::thirdparty_cases).
//! A missing tool fails the case with the package to install (scripts/setup
//! installs them all).

pub mod asyncio;
pub mod closes;
pub mod hping;
pub mod java;
pub mod nmap;
pub mod ping;
pub mod timers;
pub mod tshark;
pub mod wire;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use socklab_app::protocol;
use socklab_host::client::LabClient;

use crate::{eventually, Dut};

/// What a tool printed and how it ended.
#[derive(Debug)]
pub struct ToolOutput {
    /// The command line, for messages.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ToolOutput {
    /// Panics with everything the tool said unless it exited with status 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The package that provides `program` on Debian, for the message when it is
/// missing.
fn package_of(program: &str) -> &str {
    match program {
        "tshark" => "tshark",
        "nmap" => "nmap",
        "hping3" => "hping3",
        "ping" => "iputils-ping",
        "java" | "javac" => "openjdk-17-jdk-headless",
        "python3" => "python3",
        other => other,
    }
}

/// Taken by the cases that load the machine (floods, full port scans, 200
/// clients at once) or time the device to the millisecond, so that no two
/// of them run at the same time in one test binary: on two cores, one
/// case's flood would otherwise show in another case's figures.
pub fn alone() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A case that failed while holding it poisons it; the next may still run.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Panics with what to install unless `program` is on `PATH`.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed: run scripts/setup (as root), or \
         `apt-get install {}`",
        package_of(program)
    );
}

/// The device's network namespace (every third-party case needs one: the
/// tools run there).
pub fn netns(dut: &Dut) -> &str {
    dut.host_net()
        .netns_name()
        .expect("third-party tools run in the device's private network namespace")
}

/// A command that runs `program` inside the device's namespace.
pub fn in_netns(dut: &Dut, program: &str) -> Command {
    require(program);
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns(dut), program]);
    command
}

/// Runs `command` to completion, killing it (by its PID) if it runs longer
/// than `limit`; its output is collected as it comes, so a chatty tool never
/// blocks on a full pipe.
pub fn run(mut command: Command, limit: Duration) -> ToolOutput {
    let shown = shown(&command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let (stdout, stderr) = collect(&mut child);
    let status = wait_bounded(&mut child, limit)
        .unwrap_or_else(|| panic!("`{shown}` ran longer than {limit:?}; killed"));
    ToolOutput {
        command: shown,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: start.elapsed(),
    }
}

/// Runs `command` for `duration`, then interrupts it (SIGINT, as Ctrl-C
/// would; then SIGKILL if it does not stop within 5 s) and returns what it
/// printed.
pub fn run_for(mut command: Command, duration: Duration) -> ToolOutput {
    let shown = shown(&command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let (stdout, stderr) = collect(&mut child);
    let early = wait_bounded(&mut child, duration);
    if let Some(status) = early {
        panic!(
            "`{shown}` ended after {:?} ({status}), before it was stopped:\n{}",
            start.elapsed(),
            stderr.join().unwrap_or_default()
        );
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a PID fits pid_t");
    // Our own child, not reaped yet; one that already ended is fine.
    let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
    let status = wait_bounded(&mut child, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("`{shown}` did not stop on SIGINT within 5 s; killed"));
    ToolOutput {
        command: shown,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: start.elapsed(),
    }
}

fn shown(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

type Reader = thread::JoinHandle<String>;

fn collect(child: &mut Child) -> (Reader, Reader) {
    fn reader(mut pipe: impl Read + Send + 'static) -> Reader {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }
    let stdout = reader(child.stdout.take().expect("stdout is piped"));
    let stderr = reader(child.stderr.take().expect("stderr is piped"));
    (stdout, stderr)
}

/// Waits up to `limit` for `child`; on time out kills it and returns `None`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a tool") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A file shipped with the suite (`tests/java/...`, `tests/python/...`).
pub fn suite_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `socklab-<what>-<pid>-<n>` under the system's temp dir.
    pub fn new(what: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("socklab-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A value from the device's `INFO`.
pub fn info_value(client: &mut LabClient, key: &str) -> u64 {
    let info = client.info().expect("INFO answered");
    info.parse(key)
        .unwrap_or_else(|| panic!("INFO has no numeric `{key}`: {:?}", info.entries))
}

/// Waits until every socket of the device listens again, apart from the
/// observer's own connection and sockets finishing a close in TIME-WAIT
/// (those are apart from the pool's slots); panics with NETSTAT if that
/// takes over `limit`. UDP sockets have no state and are not looked at.
pub fn assert_every_socket_listens(observer: &mut LabClient, limit: Duration) {
    let own = observer.local_addr().expect("the observer's address");
    let settled = eventually(limit, || {
        let rows = observer.netstat().expect("NETSTAT answered");
        rows.iter()
            .filter(|r| r.proto == protocol::TCP && r.remote.to_string() != own.to_string())
            .all(|r| r.state == "LISTEN" || r.state == "TIME-WAIT")
            .then_some(())
    });
    if settled.is_none() {
        let rows = observer.netstat().expect("NETSTAT answered");
        let busy: Vec<_> = rows
            .iter()
            .filter(|r| r.proto == protocol::TCP && r.state != "LISTEN" && r.state != "TIME-WAIT")
            .map(|r| format!("{} {} {}", r.local, r.remote, r.state))
            .collect();
        panic!("sockets still not listening after {limit:?} (the observer is {own}):\n{busy:#?}");
    }
}

/// Declares the third-party cases for a board, one `#[test]` each:
/// `thirdparty_cases!(BoardKind::Tap; ping::v4_and_v6_are_answered, ...)`.
#[macro_export]
macro_rules! thirdparty_cases {
    ($board:expr; $($module:ident :: $case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _area = $crate::area::enter(module_path!());
                $crate::thirdparty::$module::$case($board);
            }
        )+
    };
}

/// Declares the third-party cases every board passes, one `#[test]` each:
/// the one list run on linux-tap, mps2-an385 and riscv-virt (each on a TAP).
#[macro_export]
macro_rules! thirdparty_every_board {
    ($board:expr) => {
        $crate::thirdparty_cases!($board;
            tshark::device_frames_are_well_formed_with_valid_checksums,
            closes::every_clean_close_ends_with_fin_ack_both_ways,
            nmap::tcp_scans_find_exactly_the_listening_ports,
            hping::segments_get_the_rfc_answers,
            hping::syn_flood_from_random_sources_leaves_the_device_serving,
            ping::v4_v6_and_full_mtu_with_df_are_answered,
            ping::fragmented_pings_are_reassembled_and_answered,
            ping::flood_of_twenty_thousand_loses_at_most_one_percent,
            java::course_client_session,
            asyncio::two_hundred_clients_fill_pool_and_backlog,
        );
    };
}
