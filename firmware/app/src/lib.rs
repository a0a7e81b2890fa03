//! socklab's TCP server application: board-independent, `no_std`, no `alloc`.
//!
//! A board hands in a [`smoltcp::phy::Device`], the time, and fixed storage
//! sized by its [`Sizes`]; the [`App`] builds the interface, the services'
//! sockets and the closing pool over it and polls every service of its
//! table.
//!
//! The services and their ports are the table in [`services`]
//! ([`services::PORTS`]); ICMP echo requests, IPv4 and IPv6, are answered by
//! the interface itself.
//!
//! Any other TCP port answers a SYN with RST: the client's connect is refused.
//! Any other UDP port answers a datagram with ICMP / ICMPv6 port unreachable.
//!
//! The crate is grouped by layer, as smoltcp is:
//!
//! | module | job |
//! |---|---|
//! | [`App`] (`app`) | the interface, the service table and the poll loop |
//! | [`services`] | the services, the table they are polled from, the `NETSTAT`/`INFO`/`EVENTS` reports |
//! | `pool` | the closing pool the services hand their closes to, the TCP socket helpers |
//! | `status` | counters, the event history, the view services are polled with |
//! | `phy` | device layers: counted frames, the bad link ([`badlink`]) |
//! | `wire` | the protocol words shared with the host ([`protocol`]), the JSON reader |
//! | `board` | what a board hands in: [`config`], [`bootopts`], [`Sizes`], [`storage`] |
//!
//! ```ignore
//! let mut app = App::new(config, SIZES, storage, &mut device, now)?;
//! loop {
//!     let delay = app.poll(clock.now(), &mut device);
//!     board.wait_for_frame_or(delay);
//! }
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod app;
mod board;
mod phy;
mod pool;
pub mod services;
mod status;
mod wire;

pub use smoltcp;

pub use app::App;
pub use board::config::{
    BacklogPolicy, BoardStatus, BootReason, Config, NetConfig, Nets, StackMeter, Timeouts, MAX_NETS,
};
pub use board::sizes::{BoardRam, Ram, RamRecord, Sizes, RAM};
pub use board::storage::{Storage, StorageError, UdpPacketMetadata};
pub use board::{bootopts, config, storage};
pub use phy::badlink;
pub use phy::optional::Optional;
pub use pool::closing::{ClosingSizes, ClosingSocket};
pub use services::{BulkSizes, Iperf2Sizes, Iperf3Sizes, LabSizes, LabSlot};
pub use status::counters::Counters;
pub use status::events;
pub use wire::protocol;
