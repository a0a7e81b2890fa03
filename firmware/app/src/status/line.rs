//! One reply line being formatted: a fixed buffer the size of the longest
//! line the device sends, and a `fmt::Write` over it.

use core::fmt::{self, Write};

use heapless::Vec;

use crate::wire::protocol::MAX_RESPONSE_LINE;

/// A line being formatted for sending (may hold non-UTF-8 bytes from `ECHO`).
pub(crate) type OutLine = Vec<u8, MAX_RESPONSE_LINE>;

/// Formats into an [`OutLine`], truncating nothing: every line the device
/// formats is shorter than [`MAX_RESPONSE_LINE`] by construction.
pub(crate) struct LineWriter<'b>(pub &'b mut OutLine);

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}
