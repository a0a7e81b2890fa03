//! The demo's step engine: numbered sections, explanations wrapped at 80
//! columns, checked steps (✔ passed, ✘ failed, – skipped) and the score;
//! with `--pause`, a wait for Enter (a line on stdin) before each section.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal};

/// The demo stopped at a failed step.
pub(super) struct Stopped;

/// A step that could not run: an earlier one failed, or the board's network
/// cannot do it (counted as skipped, never as passed).
#[derive(Debug)]
pub(super) struct Skipped(pub(super) &'static str);

impl Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skipped {}

/// `Some(value)`, or a [`Skipped`] error naming what is missing.
pub(super) fn need<'a, T>(value: &'a Option<T>, what: &'static str) -> anyhow::Result<&'a T> {
    value.as_ref().ok_or_else(|| Skipped(what).into())
}

/// The transcript and the score.
pub(super) struct Demo {
    keep_going: bool,
    pub(super) passed: usize,
    pub(super) failed: usize,
    pub(super) skipped: usize,
    section: usize,
    pause: Option<Pause>,
}

/// `--pause`: a line from stdin before each section but the first.
struct Pause {
    /// stdin is a terminal (else lines come from a pipe or a file).
    tty: bool,
    /// stdin ended: no more waiting.
    ended: bool,
}

impl Demo {
    pub(super) fn new(keep_going: bool, pause: bool) -> Self {
        let pause = pause.then(|| {
            let tty = std::io::stdin().is_terminal();
            if !tty {
                eprintln!(
                    "socklab: --pause: stdin is not a terminal; reading one line from it \
                     before each section"
                );
            }
            Pause { tty, ended: false }
        });
        Demo {
            keep_going,
            passed: 0,
            failed: 0,
            skipped: 0,
            section: 0,
            pause,
        }
    }

    /// With `--pause`: waits for a line on stdin (Enter, in a terminal).
    fn wait_for_enter(&mut self) {
        let Some(pause) = &mut self.pause else {
            return;
        };
        if pause.ended {
            return;
        }
        let prompt = if pause.tty {
            "[Enter: next section]"
        } else {
            "[next section after a line on stdin]"
        };
        println!();
        println!("{prompt}");
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                pause.ended = true;
                eprintln!("socklab: --pause: stdin ended; the demo goes on without pausing");
            }
            Ok(_) => {}
        }
    }

    /// A numbered heading.
    pub(super) fn section(&mut self, title: &str) {
        if self.section > 0 {
            self.wait_for_enter();
        }
        self.section += 1;
        println!();
        println!("{}. {title}", self.section);
    }

    /// Explanation: indented, wrapped at 80 columns.
    pub(super) fn explain(&self, text: &str) {
        for line in wrap(text, 76) {
            println!("  {line}");
        }
    }

    /// Runs one checked step; the closure returns its value and the line
    /// that says what happened.
    pub(super) fn step<T>(
        &mut self,
        what: &str,
        f: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> Result<Option<T>, Stopped> {
        match f() {
            Ok((value, detail)) => {
                self.passed += 1;
                // The first line of the detail goes after the mark, the rest
                // (device output) below it.
                let mut lines = detail.lines();
                println!("✔ {what}: {}", lines.next().unwrap_or_default());
                for line in lines {
                    println!("      {line}");
                }
                Ok(Some(value))
            }
            Err(e) if e.downcast_ref::<Skipped>().is_some() => {
                self.skipped += 1;
                println!("– {what}: {e}");
                Ok(None)
            }
            Err(e) => {
                self.failed += 1;
                println!("✘ {what}: {e:#}");
                if self.keep_going {
                    Ok(None)
                } else {
                    Err(Stopped)
                }
            }
        }
    }
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("  one  ", 10), ["one"]);
        assert!(wrap("", 10).is_empty());
    }
}
