//! socklab's host side: everything that talks to a socklab device from a
//! normal Linux machine.
//!
//! * [`board`] names the boards ([`board::BoardKind`]) and starts any of them;
//! * [`addr`] parses the `ADDR` argument (`host[:port]`, `[v6]:port`);
//! * [`client`] is a blocking lab-protocol client ([`client::LabClient`]);
//! * [`netns`] creates network namespaces and TAPs, and opens sockets inside
//!   a namespace ([`netns::Netns::run`], [`netns::HostNet`]), with the `ip`
//!   runner in [`ip`];
//! * [`process`] signals and watches the processes this program started;
//! * [`cleanup`] removes what an interrupted command created;
//! * [`forward`] forwards a device's ports to 127.0.0.1 in the user's own
//!   namespace (`socklab run tap`);
//! * [`ping`] sends ICMP echo requests (IPv4 and IPv6);
//! * [`launch`] starts devices and tears them down ([`launch::TapDevice`],
//!   [`launch::QemuDevice`], the [`launch::RunningBoard`] trait);
//! * [`api`] reads the device's JSON API (port 80) into typed documents
//!   (`socklab top`), over the small HTTP/1.1 client in [`http`];
//! * [`bench`](mod@bench) measures a device, and Linux's TCP stack as a baseline
//!   (`socklab bench`);
//! * [`figures`] renders the docs' tables of figures from the JSON their
//!   measuring command wrote (`socklab report`).
//!
//! * [`print`] holds `println!`, `print!` and `eprintln!` that never panic
//!   on a closed stdout or stderr, for this library and the `socklab`
//!   command.
//!
//! The `socklab` command (the `socklab` crate) is the command line, the
//! terminal views and the progress bars over this library.
//!
//! Ports, command words and response formats come from
//! `socklab_app::protocol`, shared with the device: nothing is written twice.

#[macro_use]
pub mod print;

pub mod addr;
pub mod api;
pub mod bench;
pub mod board;
pub mod cleanup;
pub mod client;
pub mod figures;
pub mod forward;
pub mod http;
pub mod ip;
pub mod launch;
pub mod netns;
pub mod ping;
pub mod process;
