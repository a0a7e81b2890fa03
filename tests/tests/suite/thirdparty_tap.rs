//! Third-party tools against the linux-tap board: tshark, nmap, hping3,
//! ping, a Java course client and Python asyncio, each run in the device's
//! private namespace against `socklab-tap` on its TAP. Needs root and the
//! tools scripts/setup installs.

use socklab_tests::{thirdparty_cases, thirdparty_every_board, BoardKind};

thirdparty_every_board!(BoardKind::Tap);

// The UDP scan: linux-tap only (not run on the QEMU boards).
thirdparty_cases!(BoardKind::Tap;
    nmap::udp_scan_finds_the_udp_services,
);

// A client of our own on the TAP that stops answering at will (linux-tap
// only: once on a real link, next to the in-process versions).
thirdparty_cases!(BoardKind::Tap;
    timers::reused_slot_retransmits_on_a_fresh_timer,
    timers::dead_peer_timeout_frees_the_slot_on_time,
);
