//! Device layers between smoltcp and the board's device: the counted frames
//! the application polls through, and the bad link a board may add.

pub mod badlink;
pub(crate) mod counted;
