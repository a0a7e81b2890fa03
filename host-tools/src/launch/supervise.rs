//! Process supervision for every launcher: spawn a device process, copy its
//! output into a log (file, terminal, or a tail kept in memory), collect the
//! lines that tell readiness, notice its exit at once, and stop it.
//!
//! A watcher thread waits for the exit without reaping the child first
//! (`waitid(WNOWAIT)`), so a crash (the firmware's panic and HardFault
//! handlers end QEMU with status 1) is seen at once, and the PID is never
//! signalled after it could have been reused: the watcher reaps only under
//! the lock that [`Process::signal`] takes.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{LaunchError, KEEP_LOGS_ENV};
use crate::client::{wait_for_hello, HelloWait};
use crate::netns::HostNet;
use crate::{cleanup, process};

/// Waits for the lab's `HELLO` at `addr` from `net` ([`wait_for_hello`]),
/// stopping with `alive`'s error; a wait that times out becomes
/// `not_ready`'s error, told how many connections were tried and why the
/// last one failed. Both launchers' last readiness step.
pub fn await_hello(
    net: &HostNet,
    addr: std::net::SocketAddr,
    deadline: Instant,
    alive: impl FnMut() -> Result<(), LaunchError>,
    not_ready: impl FnOnce(String) -> LaunchError,
) -> Result<(), LaunchError> {
    match wait_for_hello(net, addr, deadline, alive) {
        Ok(()) => Ok(()),
        Err(HelloWait::Stopped(error)) => Err(error),
        Err(HelloWait::TimedOut {
            attempts,
            last_error,
        }) => Err(not_ready(format!(
            "no HELLO on {addr} after {attempts} attempts ({last_error})"
        ))),
    }
}

/// Lines of log kept in memory when the log has no file.
const TAIL_LINES: usize = 400;
/// How long a stopped device has to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Where a device's log goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeviceLog {
    /// To a file in a temporary directory (removed on drop), read with
    /// [`RunningBoard::log`](super::RunningBoard::log).
    #[default]
    Capture,
    /// To this file (kept).
    File(PathBuf),
    /// To this process's stderr; the last lines are also kept for
    /// [`RunningBoard::log`](super::RunningBoard::log). The lines wait until
    /// [`Process::release_terminal`], so that they never cut into what the
    /// caller prints about the device first; from then on they come as they
    /// arrive.
    Terminal,
}

/// A temporary directory for a captured log: registered for the Ctrl-C
/// clean-up, removed on drop unless `SOCKLAB_KEEP_LOGS` is set or the thread
/// is panicking (a failing test), then its path is printed.
#[derive(Debug)]
pub struct LogDir {
    dir: PathBuf,
    file: PathBuf,
}

impl LogDir {
    /// Creates `$TMPDIR/socklab-log-<id>/` for the log file `name`.
    pub fn create(id: &str, name: &str) -> Result<Self, LaunchError> {
        let dir = std::env::temp_dir().join(format!("socklab-log-{id}"));
        fs::create_dir_all(&dir).map_err(LaunchError::Log)?;
        cleanup::register_dir(&dir);
        Ok(LogDir {
            file: dir.join(name),
            dir,
        })
    }

    /// The log file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        cleanup::unregister_dir(&self.dir);
        if std::env::var_os(KEEP_LOGS_ENV).is_some() || thread::panicking() {
            eprintln!("socklab: device log kept in {}", self.file.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where the output goes: a file, the terminal, and (without a file) a tail
/// kept in memory.
#[derive(Debug)]
struct LogSink {
    file: Option<File>,
    terminal: bool,
    /// Terminal lines waiting while the terminal is held.
    held: Option<Vec<String>>,
    tail: VecDeque<String>,
}

impl LogSink {
    fn line(&mut self, line: &str, to_terminal: bool) {
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{line}");
        } else {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.to_owned());
        }
        if self.terminal && to_terminal {
            match &mut self.held {
                Some(held) => held.push(line.to_owned()),
                None => print_err(line),
            }
        }
    }
}

/// One line to stderr; a closed stderr is not an error worth a panic.
fn print_err(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// What the watcher and the readers know about the process.
#[derive(Debug)]
pub struct State {
    /// The child; reaped (by the watcher) only under the lock.
    child: Child,
    /// How it ended, once it has.
    pub status: Option<ExitStatus>,
    /// Readers of its output still running.
    pub open_streams: usize,
    /// Output lines that matter for readiness (see [`Process::read`]).
    pub marks: Vec<String>,
    sink: LogSink,
}

/// What a reader does with one stream of the process's output.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Write its lines to the log.
    pub log: bool,
    /// Keep the lines for which this holds as readiness marks.
    pub mark: fn(&str) -> bool,
}

/// A device process, watched by a thread that notices its exit at once.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    name: String,
    shared: Arc<(Mutex<State>, Condvar)>,
    watcher: Option<thread::JoinHandle<()>>,
    log_path: Option<PathBuf>,
    /// Removed (or kept and named) on drop, after the process stops.
    _log_dir: Option<LogDir>,
}

impl Process {
    /// Spawns `command` (its output streams must be piped by the caller and
    /// handed to [`Process::read`]) with its log going where `log` says; `id`
    /// names a captured log's directory.
    pub fn spawn(
        mut command: Command,
        name: &str,
        log: &DeviceLog,
        id: &str,
        log_name: &str,
    ) -> Result<Self, LaunchError> {
        let (log_dir, log_path) = match log {
            DeviceLog::Capture => {
                let dir = LogDir::create(id, log_name)?;
                let path = dir.file().to_owned();
                (Some(dir), Some(path))
            }
            DeviceLog::File(path) => (None, Some(path.clone())),
            DeviceLog::Terminal => (None, None),
        };
        let file = log_path
            .as_deref()
            .map(File::create)
            .transpose()
            .map_err(LaunchError::Log)?;
        let child = command.spawn().map_err(|error| LaunchError::Spawn {
            binary: command.get_program().into(),
            error,
        })?;
        let pid = child.id();
        cleanup::register_pid(pid);
        let shared = Arc::new((
            Mutex::new(State {
                child,
                status: None,
                open_streams: 0,
                marks: Vec::new(),
                sink: LogSink {
                    file,
                    terminal: *log == DeviceLog::Terminal,
                    // Held from the start: the caller prints what it has to
                    // say first, then releases the log.
                    held: (*log == DeviceLog::Terminal).then(Vec::new),
                    tail: VecDeque::new(),
                },
            }),
            Condvar::new(),
        ));
        let watched = Arc::clone(&shared);
        let owned_name = name.to_owned();
        let watcher = thread::Builder::new()
            .name(format!("{name} {pid} watcher"))
            .spawn(move || watch(pid, &owned_name, &watched))
            .map_err(|error| LaunchError::Spawn {
                binary: "a watcher thread".into(),
                error,
            })?;
        Ok(Process {
            pid,
            name: name.to_owned(),
            shared,
            watcher: Some(watcher),
            log_path,
            _log_dir: log_dir,
        })
    }

    /// Takes the child's piped stdout, for [`Process::read`].
    pub fn take_stdout(&self) -> Option<std::process::ChildStdout> {
        self.with(|state| state.child.stdout.take())
    }

    /// Takes the child's piped stderr, for [`Process::read`].
    pub fn take_stderr(&self) -> Option<std::process::ChildStderr> {
        self.with(|state| state.child.stderr.take())
    }

    /// Reads one of the process's output streams line by line, on a thread.
    pub fn read(&self, stream: impl Read + Send + 'static, what: Stream) {
        let shared = Arc::clone(&self.shared);
        self.with(|state| state.open_streams += 1);
        let spawned = thread::Builder::new()
            .name(format!("{} {} reader", self.name, self.pid))
            .spawn(move || {
                let (lock, changed) = &*shared;
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']);
                    let mut state = lock_state(lock);
                    if what.log {
                        state.sink.line(line, true);
                    }
                    if (what.mark)(line) {
                        state.marks.push(line.to_owned());
                        changed.notify_all();
                    }
                }
                lock_state(lock).open_streams -= 1;
                changed.notify_all();
            });
        if spawned.is_err() {
            self.with(|state| state.open_streams -= 1);
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `f` on the shared state, under its lock.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock_state(&self.shared.0))
    }

    /// How the process ended, if it has (it is reaped then).
    pub fn status(&self) -> Option<ExitStatus> {
        self.with(|state| state.status)
    }

    /// `Ok` while the process runs; once it has ended, how, with `log`.
    pub fn alive(&self, log: impl FnOnce() -> String) -> Result<(), LaunchError> {
        match self.status() {
            Some(status) => Err(LaunchError::Exited { status, log: log() }),
            None => Ok(()),
        }
    }

    /// Prints the held log lines and lets the next ones through.
    pub fn release_terminal(&self) {
        let held = self.with(|state| state.sink.held.take());
        for line in held.into_iter().flatten() {
            print_err(&line);
        }
    }

    /// Waits until `done` holds or `deadline` passes; true if it holds.
    pub fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&State) -> bool) -> bool {
        let (lock, changed) = &*self.shared;
        let mut state = lock_state(lock);
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = changed
                .wait_timeout(state, left.min(Duration::from_millis(100)))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The log so far: the file's text, or the tail kept in memory. After an
    /// exit, the readers write the process's last words first.
    pub fn log(&self) -> String {
        if self.status().is_some() {
            self.wait_until(Instant::now() + Duration::from_secs(1), |s| {
                s.open_streams == 0
            });
        }
        match &self.log_path {
            Some(path) => fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default(),
            None => self.with(|state| {
                let mut log = String::new();
                for line in &state.sink.tail {
                    log.push_str(line);
                    log.push('\n');
                }
                log
            }),
        }
    }

    /// Where the log is written (`None`: to the terminal).
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }

    /// Sends `signal` unless the process is reaped already (then its PID
    /// may be someone else's).
    pub fn signal(&self, signal: Signal) {
        let state = lock_state(&self.shared.0);
        if state.status.is_none() {
            process::kill(self.pid, signal);
        }
    }

    /// SIGTERM (QEMU flushes its pcap and exits; `socklab-tap` resets every
    /// connection and exits, its capture holding whole records), up to
    /// [`STOP_GRACE`], then SIGKILL; waits for the watcher to reap it. (The
    /// QEMU launcher ends the connections to its device before this.)
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let Some(watcher) = self.watcher.take() else {
            return self.status();
        };
        self.signal(Signal::SIGTERM);
        if !self.wait_until(Instant::now() + STOP_GRACE, |s| s.status.is_some()) {
            self.signal(Signal::SIGKILL);
            self.wait_until(Instant::now() + Duration::from_secs(5), |s| {
                s.status.is_some()
            });
        }
        if self.status().is_some() {
            let _ = watcher.join();
        } else {
            print_err(&format!(
                "socklab: {} (pid {}) did not exit after SIGKILL",
                self.name, self.pid
            ));
        }
        self.status()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        // `log_dir` goes next (removed, or kept and named).
    }
}

/// The watcher: waits for the exit without reaping, then reaps under the
/// lock, and writes the exit after the process's last lines.
fn watch(pid: u32, name: &str, shared: &(Mutex<State>, Condvar)) {
    process::peek_exit(pid, true);
    let (lock, changed) = shared;
    let mut state = lock_state(lock);
    let status = state.child.wait().ok();
    state.status = status;
    cleanup::unregister_pid(pid);
    changed.notify_all();
    let deadline = Instant::now() + Duration::from_secs(1);
    while state.open_streams > 0 && Instant::now() < deadline {
        state = changed
            .wait_timeout(state, Duration::from_millis(50))
            .map(|(s, _)| s)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    if let Some(status) = status {
        state
            .sink
            .line(&format!("[socklab: {name} exited, {status}]"), false);
    }
    changed.notify_all();
}

fn lock_state(lock: &Mutex<State>) -> MutexGuard<'_, State> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
