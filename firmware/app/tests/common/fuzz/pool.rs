//! Pool storage that is reused, not leaked: a fuzzer runs millions of
//! cases, and [`PooledNet`] keeps its memory flat.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use socklab_app::smoltcp::iface::SocketStorage;
use socklab_app::{ClosingSocket, Config, LabSlot, Sizes, Storage, UdpPacketMetadata};

use crate::common::Net;

/// One pool's storage, allocated once and lent to one [`Net`] at a time.
struct Spare {
    sizes: Sizes,
    sockets: *mut [SocketStorage<'static>],
    lab: *mut [LabSlot],
    closing: *mut [ClosingSocket],
    buffers: *mut [u8],
    udp: *mut [UdpPacketMetadata],
}

impl Spare {
    fn new(sizes: Sizes) -> Spare {
        Spare {
            sizes,
            sockets: Box::into_raw((0..sizes.sockets()).map(|_| SocketStorage::EMPTY).collect()),
            lab: Box::into_raw((0..sizes.lab_states()).map(|_| LabSlot::EMPTY).collect()),
            closing: Box::into_raw(
                (0..sizes.closing_sockets())
                    .map(|_| ClosingSocket::EMPTY)
                    .collect(),
            ),
            buffers: Box::into_raw(vec![0u8; sizes.buffer_bytes()].into()),
            udp: Box::into_raw(
                (0..sizes.udp_packets())
                    .map(|_| UdpPacketMetadata::EMPTY)
                    .collect(),
            ),
        }
    }

    /// The storage, emptied.
    ///
    /// # Safety
    /// Nothing made from an earlier loan may be alive.
    unsafe fn lend(&self) -> Storage<'static> {
        // SAFETY: the boxes live until `self` is dropped, which only
        // happens when no loan is alive; the caller vouches for that now.
        let (sockets, lab, closing, buffers, udp) = unsafe {
            (
                &mut *self.sockets,
                &mut *self.lab,
                &mut *self.closing,
                &mut *self.buffers,
                &mut *self.udp,
            )
        };
        sockets.fill_with(|| SocketStorage::EMPTY);
        lab.fill_with(|| LabSlot::EMPTY);
        closing.fill_with(|| ClosingSocket::EMPTY);
        buffers.fill(0);
        udp.fill_with(|| UdpPacketMetadata::EMPTY);
        Storage {
            sockets,
            lab,
            closing,
            buffers,
            udp,
        }
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        // SAFETY: the pointers come from `Box::into_raw` and no loan is
        // alive (a `PooledNet` drops its net before its spare).
        unsafe {
            drop(Box::from_raw(self.sockets));
            drop(Box::from_raw(self.lab));
            drop(Box::from_raw(self.closing));
            drop(Box::from_raw(self.buffers));
            drop(Box::from_raw(self.udp));
        }
    }
}

thread_local! {
    /// Storage of the pools whose nets are gone, ready for the next.
    static SPARES: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
}

/// A [`Net`] whose pool storage is reused instead of leaked: dropped,
/// it hands its storage to the next `PooledNet` of the same sizes on the
/// same thread. A fuzzer runs millions of cases; this keeps its memory
/// flat (and LeakSanitizer quiet). Use it as a `Net`.
pub struct PooledNet {
    net: ManuallyDrop<Net>,
    spare: Option<Spare>,
}

impl PooledNet {
    /// A device with `config` and `sizes`, and a client with no socket.
    pub fn new(config: Config, sizes: Sizes) -> PooledNet {
        let spare = SPARES
            .with(|spares| {
                let mut spares = spares.borrow_mut();
                let i = spares.iter().position(|s| s.sizes == sizes)?;
                Some(spares.swap_remove(i))
            })
            .unwrap_or_else(|| Spare::new(sizes));
        // SAFETY: a spare is only in the list, or here, once the net made
        // from its previous loan is dropped.
        let storage = unsafe { spare.lend() };
        PooledNet {
            net: ManuallyDrop::new(Net::with_storage(config, sizes, storage)),
            spare: Some(spare),
        }
    }
}

impl Deref for PooledNet {
    type Target = Net;

    fn deref(&self) -> &Net {
        &self.net
    }
}

impl DerefMut for PooledNet {
    fn deref_mut(&mut self) -> &mut Net {
        &mut self.net
    }
}

impl Drop for PooledNet {
    fn drop(&mut self) {
        // SAFETY: `net` is not used again; it goes before its storage.
        unsafe { ManuallyDrop::drop(&mut self.net) };
        if let Some(spare) = self.spare.take() {
            // During a thread's teardown the list may be gone: then the
            // spare frees its storage as it drops.
            let _ = SPARES.try_with(|spares| spares.borrow_mut().push(spare));
        }
    }
}
