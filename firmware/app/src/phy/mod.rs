//! Device layers between smoltcp and the board's device: the counted frames
//! the application polls through, the bad link a board may add, and the
//! wrapper that is there or not.

pub mod badlink;
pub(crate) mod counted;
pub mod optional;
