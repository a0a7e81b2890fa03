//! The bench's progress as bars on stderr: one for the whole bench, one for
//! the step at hand (the [`Observer`] of `socklab_host::bench::run`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use socklab_host::bench::{Observer, StepProgress};

/// Progress on stderr: one bar for the whole bench, one for the step at hand.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Bars {
    /// Bars for `steps` steps; hidden when `enabled` is false (or stderr is
    /// not a terminal).
    pub fn new(enabled: bool, steps: u64) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(steps));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps, {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("socklab bench");
        Bars { multi, overall }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// The bar of one step.
pub struct StepBar(ProgressBar);

impl StepProgress for StepBar {
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }

    fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }
}

impl Observer for Bars {
    type Step = StepBar;

    fn step_started(&self, what: String) -> StepBar {
        let bar = self.multi.add(ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {percent:>3}% {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("");
        bar.set_message(what);
        StepBar(bar)
    }

    fn step_finished(&self, StepBar(bar): StepBar) {
        bar.finish_and_clear();
        self.multi.remove(&bar);
        self.overall.inc(1);
    }
}
