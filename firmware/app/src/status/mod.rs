//! What the device knows about itself, below the services: the shared
//! connection counters, the history of connection state changes, the
//! read-only view services are polled with, and the reply line they format
//! into.

pub(crate) mod counters;
pub mod events;
pub(crate) mod line;
pub(crate) mod view;
