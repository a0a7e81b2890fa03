//! The connection counters every service adds to, shown by `INFO`.

/// Connection counters shared by the services (each service keeps its own
/// in its module), shown by `INFO`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Frames received from the board's device.
    pub frames_rx: u64,
    /// Frames handed to the board's device.
    pub frames_tx: u64,
    /// Connections accepted on any service.
    pub accepted: u64,
    /// SYNs answered with RST: nothing listening, or every slot busy.
    pub refused: u64,
    /// Connections the device ended because one of its timeouts fired.
    pub timed_out: u64,
    /// Connections that ended without an orderly close (peer RST, dead peer).
    pub reset: u64,
    /// Connections that ended with an orderly close.
    pub closed: u64,
    /// TIME-WAIT sockets recycled because the closing pool was full.
    pub time_wait_recycled: u64,
}
