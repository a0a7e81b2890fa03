//! The board's `log` sink: one line per record on stderr, with the time since start.
//!
//! Each line is formatted first and handed to the kernel in one `write`:
//! stderr is unbuffered, and `writeln!` straight onto it made one system call
//! per formatted piece (about 30 per line), which bounded the connection rate
//! (three lines per connection) at a tenth of the kernel's.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

struct Stderr {
    started: Instant,
}

static LOGGER: OnceLock<Stderr> = OnceLock::new();

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = self.started.elapsed();
        let line = format!(
            "[{:>5}.{:03}] {:<5} {}\n",
            t.as_secs(),
            t.subsec_millis(),
            record.level(),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the stderr logger at `level`.
pub fn init(level: log::LevelFilter) {
    let logger = LOGGER.get_or_init(|| Stderr {
        started: Instant::now(),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
