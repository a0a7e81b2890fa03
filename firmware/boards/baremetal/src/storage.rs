//! The pool's storage as statics sized by a board's `SIZES`, handed out once.
//!
//! Statics, not locals: they live for the whole run and do not weigh on the stack.
//! `ConstStaticCell` hands each out once as `&'static mut`, without `unsafe`.
//! [`take_storage!`](crate::take_storage) declares them from the sizes and takes them.
//! Each part is a static of its own: the socket buffers are zero and stay in `.bss`,
//! whatever the other parts' empty values are.

#[doc(hidden)]
pub use socklab_app::smoltcp::iface::SocketStorage;
#[doc(hidden)]
pub use socklab_app::{ClosingSocket, LabSlot, Storage, UdpPacketMetadata};
#[doc(hidden)]
pub use static_cell::ConstStaticCell;

/// Declares the pool's statics for the given `Sizes` (a constant) and takes them, once,
/// as the application's `Storage<'static>` (a second take panics).
#[macro_export]
macro_rules! take_storage {
    ($sizes:expr) => {{
        use $crate::storage::{
            ClosingSocket, ConstStaticCell, LabSlot, SocketStorage, Storage, UdpPacketMetadata,
        };
        static SOCKETS: ConstStaticCell<[SocketStorage<'static>; $sizes.sockets()]> =
            ConstStaticCell::new([SocketStorage::EMPTY; $sizes.sockets()]);
        static LAB: ConstStaticCell<[LabSlot; $sizes.lab_states()]> =
            ConstStaticCell::new([LabSlot::EMPTY; $sizes.lab_states()]);
        static CLOSING: ConstStaticCell<[ClosingSocket; $sizes.closing_sockets()]> =
            ConstStaticCell::new([ClosingSocket::EMPTY; $sizes.closing_sockets()]);
        static BUFFERS: ConstStaticCell<[u8; $sizes.buffer_bytes()]> =
            ConstStaticCell::new([0; $sizes.buffer_bytes()]);
        static UDP: ConstStaticCell<[UdpPacketMetadata; $sizes.udp_packets()]> =
            ConstStaticCell::new([UdpPacketMetadata::EMPTY; $sizes.udp_packets()]);
        Storage {
            sockets: SOCKETS.take(),
            lab: LAB.take(),
            closing: CLOSING.take(),
            buffers: BUFFERS.take(),
            udp: UDP.take(),
        }
    }};
}
