//! The conformance suite on the mps2-an385 board: the firmware image in QEMU,
//! its LAN9118 on a TAP in a private network namespace, reached at the
//! device's own addresses (192.168.69.1, fdaa::1) with real kernel sockets,
//! ping included. Needs root.

use socklab_tests::{network_cases, transport_cases, BoardKind};

transport_cases!(BoardKind::MPS2_TAP);
network_cases!(BoardKind::MPS2_TAP);
