//! What a board hands the application: its configuration, its boot options,
//! the sizes of its pools and the fixed storage they live in.

pub mod bootopts;
pub mod config;
pub(crate) mod sizes;
pub mod storage;
