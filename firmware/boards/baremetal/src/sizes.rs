//! The pool of a small board, one place for what the bare-metal boards size alike.

use socklab_app::Sizes;

/// A microcontroller-sized pool: eight lab clients at once and four waiting, two
/// connections per bulk service (echo, discard, chargen), iperf3's control connection,
/// one spare to answer "busy" and 4 streams (`-P 4`, or `--bidir -P 2`), two iperf2
/// connections. Every bulk and iperf socket gets `rx` bytes of receive buffer and `tx`
/// bytes of transmit buffer: how big a window the NIC and RAM take is the board's call.
pub const fn small_pool(rx: usize, tx: usize) -> Sizes {
    Sizes {
        lab_slots: 8,
        lab_backlog: 4,
        lab_rx: 1024,
        lab_tx: 2048,
        bulk_slots: 2,
        bulk_rx: rx,
        bulk_tx: tx,
        iperf3_sockets: 6,
        iperf3_rx: rx,
        iperf3_tx: tx,
        iperf2_sockets: 2,
        iperf2_rx: rx,
        lab_closing: 4,
        bulk_closing: 2,
    }
}
