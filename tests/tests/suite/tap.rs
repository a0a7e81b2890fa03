//! The conformance suite on the linux-tap board: `socklab-tap` on a TAP in a
//! private network namespace, reached with real kernel sockets.

use socklab_tests::{network_cases, transport_cases, BoardKind};

transport_cases!(BoardKind::Tap);
network_cases!(BoardKind::Tap);
