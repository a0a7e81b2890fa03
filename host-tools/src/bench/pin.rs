//! CPU pinning for the latency benchmark: both ends of a ping-pong on one CPU,
//! so that a message wakes the other side on the same core instead of
//! crossing to another vCPU (waking a process on the other vCPU of a 2-vCPU
//! VM costs about 50 µs, which would dwarf the device's own latency).
//!
//! A process is pinned thread by thread (`/proc/PID/task/*`), and its old
//! masks are restored when the [`PinnedProcess`] is dropped.

use std::fs;
use std::io;

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs this process may run on (its affinity mask), ascending.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    Ok(cpus_of(&get_affinity(Pid::from_raw(0))?))
}

/// The CPUs in `set`, ascending.
fn cpus_of(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

fn get_affinity(tid: Pid) -> io::Result<CpuSet> {
    Ok(sched_getaffinity(tid)?)
}

fn set_affinity(tid: Pid, set: &CpuSet) -> io::Result<()> {
    Ok(sched_setaffinity(tid, set)?)
}

fn only(cpu: usize) -> io::Result<CpuSet> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    Ok(set)
}

/// Checks that `cpu` is one this process may use.
pub fn check_cpu(cpu: usize) -> Result<(), String> {
    let allowed = allowed_cpus().map_err(|e| format!("cannot read the CPU affinity: {e}"))?;
    if allowed.contains(&cpu) {
        Ok(())
    } else {
        Err(format!(
            "CPU {cpu} is not available here; this machine lets socklab use CPUs {}",
            allowed
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

/// Pins the calling thread to `cpu` (for a thread of its own: it is not undone).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    set_affinity(Pid::from_raw(0), &only(cpu)?)
}

/// A process whose threads are pinned to one CPU; dropping it gives every
/// thread its old mask back.
#[derive(Debug)]
pub struct PinnedProcess {
    pid: u32,
    saved: Vec<(Pid, CpuSet)>,
}

impl PinnedProcess {
    /// Pins every thread of process `pid` to `cpu`. Threads it creates later
    /// inherit the mask of the thread that creates them.
    pub fn pin(pid: u32, cpu: usize) -> io::Result<Self> {
        let mut pinned = PinnedProcess {
            pid,
            saved: Vec::new(),
        };
        let target = only(cpu)?;
        for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = entry?
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
                .map(Pid::from_raw)
            else {
                continue;
            };
            let old = match get_affinity(tid) {
                Ok(old) => old,
                // The thread ended meanwhile.
                Err(e) if e.raw_os_error() == Some(Errno::ESRCH as i32) => continue,
                Err(e) => return Err(e),
            };
            set_affinity(tid, &target)?;
            pinned.saved.push((tid, old));
        }
        if pinned.saved.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {pid} has no threads"),
            ));
        }
        Ok(pinned)
    }

    /// The process.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for PinnedProcess {
    fn drop(&mut self) {
        for (tid, old) in &self.saved {
            // A thread that has ended meanwhile needs nothing.
            let _ = set_affinity(*tid, old);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn own_cpus_are_allowed_and_others_are_not() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        check_cpu(cpus[0]).unwrap();
        let message = check_cpu(CpuSet::count() - 1).unwrap_err();
        assert!(message.contains("not available"), "{message}");
    }

    #[test]
    fn pinning_a_thread_and_a_process_round_trips() {
        let cpu = *allowed_cpus().unwrap().last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![cpu]);
        })
        .join()
        .unwrap();
        // A child process of our own, pinned then restored.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let before = cpus_of(&get_affinity(pid).unwrap());
        {
            let _pinned = PinnedProcess::pin(child.id(), cpu).unwrap();
            assert_eq!(cpus_of(&get_affinity(pid).unwrap()), vec![cpu]);
        }
        assert_eq!(cpus_of(&get_affinity(pid).unwrap()), before);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
