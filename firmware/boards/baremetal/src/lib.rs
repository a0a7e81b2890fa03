//! What every bare-metal socklab board shares, so that a board crate keeps only what is
//! its own: its NIC driver, clock, UART registers, interrupt and idle code, memory layout,
//! `SIZES` and a short entry point.
//!
//! A board's `main` wires its parts in:
//!
//! 1. its UART becomes the `log` sink: a [`ByteWriter`] in a [`UartLogger`] static,
//!    [`console::install`]ed;
//! 2. [`boot_options`] makes the application's `Config` and applies the semihosting
//!    command line to it, through the board's semihosting call;
//! 3. its NIC driver implements [`Nic`] (zero-copy, lending buffers) or [`FifoNic`]
//!    (frames copied through a FIFO, wrapped in [`Buffered`]);
//! 4. [`take_storage!`] hands out the pool's statics, sized by the board's `SIZES`
//!    (often a [`small_pool`]);
//! 5. [`serve`] runs the application for good over the NIC, with the board's
//!    [`Board`] hooks: clock, profile counter, NIC health, idle.
//!
//! First thing in `main`, [`boardstatus::start`] paints the [`stack`] and reads the
//! [`bootrecord`]; the board hands the result to the application in `Config::status`
//! for `INFO`. The board's `memory.x` defines the symbols both read.
//!
//! A panic or fault is written with [`console::report_panic`] or a [`Console`]; the board
//! ends the machine with its failure status.
#![no_std]

pub mod board;
pub mod boardstatus;
pub mod bootopts;
pub mod bootrecord;
pub mod console;
pub mod nic;
pub mod phy;
pub mod profile;
pub mod serve;
pub mod sizes;
pub mod stack;
pub mod storage;

pub use board::Board;
pub use bootopts::boot_options;
pub use console::{ByteWriter, Console, UartLogger};
pub use nic::{Buffered, FifoNic, Nic, RxFrame, TxFrame};
pub use serve::serve;
pub use sizes::small_pool;
