//! Event counters: frames through the device and what happened to connections.

use core::cell::Cell;

/// Connection counters kept by the services, shown by `INFO`.
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
    /// Clients told `ERR busy` (backlog policy `busy`).
    pub busy: u64,
    /// Lab lines over the length limit.
    pub lines_too_long: u64,
    /// iperf3 tests run to the end.
    pub iperf3_tests: u64,
    /// iperf3 tests ended early (error, timeout, client gone).
    pub iperf3_failed: u64,
    /// iperf3 clients told "the server is busy".
    pub iperf3_busy: u64,
    /// iperf2 connections served.
    pub iperf2_tests: u64,
    /// TIME-WAIT sockets recycled because the closing pool was full.
    pub time_wait_recycled: u64,
}

/// Counters the device middleware updates from inside smoltcp's tokens, which
/// only borrow them shared.
#[derive(Debug, Default)]
pub(crate) struct FrameCounters {
    pub rx: Cell<u64>,
    pub tx: Cell<u64>,
    pub refused: Cell<u64>,
    /// A TCP frame for the lab port arrived since the last [`FrameCounters::take_touched`].
    pub lab_touched: Cell<bool>,
    /// A TCP frame for a bulk port arrived since then.
    pub bulk_touched: Cell<bool>,
    /// A TCP reset for the lab port arrived since then.
    pub lab_reset: Cell<bool>,
    /// A TCP reset for a bulk port arrived since then.
    pub bulk_reset: Cell<bool>,
}

/// Which services received frames since the last look.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Touched {
    pub lab: bool,
    pub bulk: bool,
    /// A reset came for the lab port: a listening socket may have been
    /// through a handshake the peer reset.
    pub lab_reset: bool,
    /// The same for a bulk port.
    pub bulk_reset: bool,
}

impl FrameCounters {
    /// Which services received frames since the last call.
    pub fn take_touched(&self) -> Touched {
        Touched {
            lab: self.lab_touched.take(),
            bulk: self.bulk_touched.take(),
            lab_reset: self.lab_reset.take(),
            bulk_reset: self.bulk_reset.take(),
        }
    }

    /// True if a reset for a service port arrived since the last
    /// [`FrameCounters::take_touched`].
    pub fn reset_seen(&self) -> bool {
        self.lab_reset.get() || self.bulk_reset.get()
    }

    pub fn bump(cell: &Cell<u64>) {
        cell.set(cell.get().wrapping_add(1));
    }
}
