//! What the device says about itself: the shared connection counters, the
//! history of connection state changes, the read-only view services are
//! polled with, and the `NETSTAT`, `INFO` and `EVENTS` rows.

pub(crate) mod counters;
pub mod events;
pub(crate) mod line;
pub(crate) mod report;
pub(crate) mod view;
