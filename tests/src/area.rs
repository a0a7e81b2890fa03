//! Keeps the suite's areas apart in one test binary: the tests of one area
//! (a module of the `suite` binary: `tap`, `iperf`, `bad_link`, …) run side
//! by side, as many as the harness has threads, but never next to a test of
//! another area.
//!
//! An area's cases are written for the load of their own area: the iperf3
//! agreement measures with nothing else on the CPUs, the third-party cases
//! that time the device or flood it share the machine only with their
//! lighter neighbours ([`crate::thirdparty::alone`] keeps those apart from
//! each other), and the bad-link transfers run next to each other only.
//! Every test of the suite opens with
//! `let _area = socklab_tests::area::enter(module_path!());` (the case
//! macros of this crate do it for the tests they declare).
//!
//! The harness hands out tests in name order, so an area's tests are all
//! handed out before the next area's: a test that waits here waits only
//! for the end of the area before it, never for ever.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Which area runs, and how many of its tests.
#[derive(Debug, Default)]
struct Running {
    area: Option<String>,
    tests: usize,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    area: None,
    tests: 0,
});
static CHANGED: Condvar = Condvar::new();

/// The area of a test from its `module_path!()`: the module under the test
/// binary's root (`suite::riscv::tap` → `riscv`); the root itself for a test
/// at the root.
pub fn area_of(module_path: &str) -> &str {
    let mut segments = module_path.split("::");
    let root = segments.next().unwrap_or(module_path);
    segments.next().unwrap_or(root)
}

/// Held by a running test: while any is held, only tests of the same area
/// start.
#[must_use = "the area is left when the guard drops: bind it to `_area`"]
#[derive(Debug)]
pub struct AreaGuard {
    _private: (),
}

/// Waits until no test of another area runs, then counts this test as
/// running in the area of `module_path` (pass `module_path!()`) until the
/// guard drops.
pub fn enter(module_path: &str) -> AreaGuard {
    let area = area_of(module_path);
    let mut running = lock();
    while running.area.as_deref().is_some_and(|a| a != area) {
        running = CHANGED
            .wait(running)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    running.area = Some(area.to_owned());
    running.tests += 1;
    AreaGuard { _private: () }
}

impl Drop for AreaGuard {
    fn drop(&mut self) {
        let mut running = lock();
        running.tests -= 1;
        if running.tests == 0 {
            running.area = None;
            CHANGED.notify_all();
        }
    }
}

/// The state; a test that failed while holding the lock does not stop the
/// others (the state is updated before anything can panic).
fn lock() -> MutexGuard<'static, Running> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    #[test]
    fn area_is_the_module_under_the_root() {
        assert_eq!(area_of("suite::riscv::tap"), "riscv");
        assert_eq!(area_of("suite::cli"), "cli");
        assert_eq!(area_of("suite"), "suite");
    }

    #[test]
    fn areas_never_overlap_and_one_area_runs_side_by_side() {
        // Two tests of area `a` hold it together; a test of `b` waits until
        // both have left.
        let inside_a = AtomicUsize::new(0);
        let both_in = Barrier::new(2);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let _area = enter("t::a");
                    inside_a.fetch_add(1, Ordering::SeqCst);
                    both_in.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    inside_a.fetch_sub(1, Ordering::SeqCst);
                });
            }
            scope.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(10);
                while inside_a.load(Ordering::SeqCst) < 2 {
                    assert!(Instant::now() < deadline, "area `a` never held twice");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _area = enter("t::b");
                assert_eq!(inside_a.load(Ordering::SeqCst), 0);
            });
        });
    }
}
