//! Remembers what this process created (namespaces, device processes, log
//! directories) so that an interrupted command (Ctrl-C, SIGTERM) can remove
//! it before exiting.
//!
//! Normal shutdown goes through `Drop`; this registry is only the safety net
//! for a signal handler, which cannot unwind the stacks that own the values.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct Created {
    namespaces: Vec<String>,
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static CREATED: Mutex<Created> = Mutex::new(Created {
    namespaces: Vec::new(),
    pids: Vec::new(),
    dirs: Vec::new(),
});

fn with<R>(f: impl FnOnce(&mut Created) -> R) -> R {
    let mut created = CREATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut created)
}

/// Records a namespace this process created.
pub(crate) fn register_netns(name: &str) {
    with(|c| c.namespaces.push(name.to_owned()));
}

/// Forgets a namespace (deleted or handed over).
pub(crate) fn unregister_netns(name: &str) {
    with(|c| c.namespaces.retain(|n| n != name));
}

/// Records a device process this process started.
pub(crate) fn register_pid(pid: u32) {
    with(|c| c.pids.push(pid));
}

/// Forgets a device process (reaped).
pub(crate) fn unregister_pid(pid: u32) {
    with(|c| c.pids.retain(|&p| p != pid));
}

/// Records a temporary directory this process created.
pub(crate) fn register_dir(dir: &Path) {
    with(|c| c.dirs.push(dir.to_owned()));
}

/// Forgets a temporary directory (removed, or kept on purpose).
pub(crate) fn unregister_dir(dir: &Path) {
    with(|c| c.dirs.retain(|d| d != dir));
}

/// Kills every registered device process, deletes every registered namespace
/// (with the TAPs inside) and temporary directory. For a signal handler, just
/// before exit.
pub fn emergency_cleanup() {
    let (pids, namespaces, dirs) = with(|c| {
        (
            std::mem::take(&mut c.pids),
            std::mem::take(&mut c.namespaces),
            std::mem::take(&mut c.dirs),
        )
    });
    for pid in pids {
        crate::process::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    // Give the kernel a moment to release the TAPs the devices held.
    std::thread::sleep(std::time::Duration::from_millis(50));
    for name in namespaces {
        let _ = crate::ip::ip(["netns", "del", &name]);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}
