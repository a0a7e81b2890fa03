//! The application's fixed bounds, which several modules size their tables
//! by: the largest pools it supports, the management sockets and the HTTP
//! server's sockets.

/// Largest lab pool the application supports (bounds per-slot bitmaps).
pub const MAX_LAB_SLOTS: usize = 2048;
/// Sockets on the management port ([`MGMT_PORT`](crate::protocol::MGMT_PORT)),
/// apart from the lab's slots and backlog: a full lab can still be inspected
/// (`WHO`, `NETSTAT`, `INFO`, `EVENTS`). Each has lab-sized buffers.
pub const MGMT_SOCKETS: usize = 2;
/// Number of bulk services (echo, discard, chargen).
pub const BULK_SERVICES: usize = 3;
/// Most sockets one bulk service may have.
pub const MAX_BULK_SLOTS: usize = 64;
/// Sockets of the HTTP server: clients served at once (a browser needs one).
pub const HTTP_SOCKETS: usize = 4;
/// Receive buffer of each HTTP socket, bytes: a request head and the next.
pub const HTTP_RX_BUFFER: usize = 2048;
/// Transmit buffer of each HTTP socket, bytes.
pub const HTTP_TX_BUFFER: usize = 4096;
/// Largest HTTP request head accepted, bytes (431 beyond).
pub const MAX_REQUEST_HEAD: usize = 1024;
