//! CPU pinning for the latency benchmark: both ends of a ping-pong on one CPU,
//! so that a message wakes the other side on the same core instead of
//! crossing to another vCPU (waking a process on the other vCPU of a 2-vCPU
//! VM costs about 50 µs, which would dwarf the device's own latency).
//!
//! A process is pinned thread by thread (`/proc/PID/task/*`), and its old
//! masks are restored when the [`PinnedProcess`] is dropped.

use std::fs;
use std::io;
use std::mem;

/// The CPUs this process may run on (its affinity mask), ascending.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = get_affinity(0)?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads a bit of a valid cpu_set_t; the index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

fn get_affinity(tid: libc::pid_t) -> io::Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel writes at
    // most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if libc::sched_getaffinity(tid, mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn only(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes one bit of it
    // (the caller checked cpu < CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
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
    set_affinity(0, &only(cpu))
}

/// A process whose threads are pinned to one CPU; dropping it gives every
/// thread its old mask back.
#[derive(Debug)]
pub struct PinnedProcess {
    pid: u32,
    saved: Vec<(libc::pid_t, libc::cpu_set_t)>,
}

impl PinnedProcess {
    /// Pins every thread of process `pid` to `cpu`. Threads it creates later
    /// inherit the mask of the thread that creates them.
    pub fn pin(pid: u32, cpu: usize) -> io::Result<Self> {
        let mut pinned = PinnedProcess {
            pid,
            saved: Vec::new(),
        };
        let target = only(cpu);
        for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = entry?
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let old = match get_affinity(tid) {
                Ok(old) => old,
                // The thread ended meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
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
        let message = check_cpu(libc::CPU_SETSIZE as usize - 1).unwrap_err();
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
        let before = get_affinity(child.id() as libc::pid_t).unwrap();
        {
            let _pinned = PinnedProcess::pin(child.id(), cpu).unwrap();
            let now = get_affinity(child.id() as libc::pid_t).unwrap();
            // SAFETY: reads bits of valid sets.
            assert!(unsafe { libc::CPU_ISSET(cpu, &now) });
            // SAFETY: counts the bits of a valid set.
            assert_eq!(unsafe { libc::CPU_COUNT(&now) }, 1);
        }
        let after = get_affinity(child.id() as libc::pid_t).unwrap();
        // SAFETY: reads valid sets.
        assert_eq!(unsafe { libc::CPU_COUNT(&after) }, unsafe {
            libc::CPU_COUNT(&before)
        });
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
