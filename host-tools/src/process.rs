//! Signals and exit states of the device processes this program started,
//! through `nix` (no `unsafe` here): send a signal, and see whether a child
//! has exited without reaping it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Sends `signal` to process `pid`. The caller makes sure `pid` is a child
/// of ours that is not reaped yet, so the PID cannot be someone else's.
pub fn kill(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = signal::kill(Pid::from_raw(pid), signal);
    }
}

/// How child `pid` ended, if it has, without reaping it (`waitid` with
/// `WNOWAIT`): whoever owns it can still wait for it. `block`: wait until it
/// exits.
pub fn peek_exit(pid: u32, block: bool) -> Option<ExitStatus> {
    let pid = Pid::from_raw(i32::try_from(pid).ok()?);
    let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    if !block {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Some(ExitStatus::from_raw((code & 0xff) << 8))
            }
            Ok(WaitStatus::Signaled(_, signal, core)) => {
                return Some(ExitStatus::from_raw(
                    signal as i32 | if core { 0x80 } else { 0 },
                ))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            // Still running, or not (or no longer) our child.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::process::Command;

    #[test]
    fn peek_sees_the_exit_and_leaves_the_child_to_its_owner() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let seen = peek_exit(child.id(), true).unwrap();
        assert_eq!(seen.code(), Some(3));
        assert_eq!(child.wait().unwrap().code(), Some(3));
        let mut sleeper = Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(peek_exit(sleeper.id(), false), None);
        kill(sleeper.id(), Signal::SIGTERM);
        let status = peek_exit(sleeper.id(), true).unwrap();
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
        assert_eq!(sleeper.wait().unwrap().signal(), Some(15));
    }
}
