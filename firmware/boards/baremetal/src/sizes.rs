//! The pool of a small board, one place for what the bare-metal boards size alike.

use socklab_app::{BulkSizes, Iperf2Sizes, Iperf3Sizes, Sizes};

/// A microcontroller-sized pool: the app's default counts (eight lab clients at once and
/// four waiting, two connections per bulk service, iperf3's control connection, one spare
/// to answer "busy" and 4 streams, two iperf2 connections), where every bulk and iperf
/// socket gets `rx` bytes of receive buffer and `tx` bytes of transmit buffer: how big a
/// window the NIC and RAM take is the board's call.
pub const fn small_pool(rx: usize, tx: usize) -> Sizes {
    Sizes {
        bulk: BulkSizes {
            rx,
            tx,
            ..BulkSizes::DEFAULT
        },
        iperf3: Iperf3Sizes {
            rx,
            tx,
            ..Iperf3Sizes::DEFAULT
        },
        iperf2: Iperf2Sizes {
            rx,
            ..Iperf2Sizes::DEFAULT
        },
        ..Sizes::DEFAULT
    }
}
