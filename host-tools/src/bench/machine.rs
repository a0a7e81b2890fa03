//! Where a bench ran: CPU model, vCPUs and kernel, for its header and JSON
//! (figures from another machine differ), and how both targets are driven.

use serde::{Deserialize, Serialize};

use super::throughput::{READ_CHUNK, WRITE_CHUNK};

/// The machine a bench ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of the first CPU in /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub vcpus: usize,
    /// The kernel release (`uname -r`).
    pub kernel: String,
}

impl Machine {
    /// Reads this machine's facts; `unknown` where a file cannot be read.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpu_model: cpu_model(&cpuinfo).unwrap_or("unknown").to_owned(),
            vcpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
        }
    }

    /// One line for the header.
    pub fn describe(&self) -> String {
        format!(
            "machine: {}, {} vCPU{}, Linux {} (figures from another machine differ)",
            self.cpu_model,
            self.vcpus,
            if self.vcpus == 1 { "" } else { "s" },
            self.kernel
        )
    }
}

/// How the bench drives every target alike, for the header and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Driving {
    /// Bytes per `write` of a throughput stream.
    pub write_bytes: usize,
    /// Bytes per `read` of a throughput stream.
    pub read_bytes: usize,
}

impl Default for Driving {
    fn default() -> Self {
        Driving {
            write_bytes: WRITE_CHUNK,
            read_bytes: READ_CHUNK,
        }
    }
}

impl Driving {
    /// One line for the header.
    pub fn describe(&self) -> String {
        format!(
            "every target alike: the same host client, writes of {} KiB and reads of {} KiB, \
             the kernel's default (autotuned) socket buffers on the host side; the kernel \
             baseline's server keeps its defaults too, the device its pool's buffers (INFO)",
            self.write_bytes / 1024,
            self.read_bytes / 1024
        )
    }
}

/// The `model name` of the first CPU listed.
fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_read_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model(text), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn this_machine_is_described() {
        let m = Machine::detect();
        assert!(m.vcpus >= 1);
        assert!(!m.kernel.is_empty() && m.kernel != "unknown");
        assert!(m.describe().contains(&m.kernel));
    }
}
