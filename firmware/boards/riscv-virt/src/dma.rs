//! DMA memory for the virtio driver: pages from a static, page-aligned pool, no allocator.
//!
//! The virt machine has no IOMMU and this image runs without address translation, so a
//! physical address is the virtual one and sharing a buffer with the device is a no-op.
//! The driver asks for its queues' pages once at start-up and keeps them for the whole
//! run, so the pool only ever grows: a bump index, never freed.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Pages in the pool: the two virtqueues of [`crate::nic::QUEUE_SIZE`] entries need four
/// (descriptor table and available ring in one, used ring in another, per queue);
/// the rest is headroom for a larger queue size.
pub const DMA_PAGES: usize = 16;

#[repr(C, align(4096))]
struct DmaArea(UnsafeCell<[u8; DMA_PAGES * PAGE_SIZE]>);

// SAFETY: the pool's bytes are only reached through the pages `dma_alloc` hands out, each
// to one owner (the bump index never hands a page out twice).
unsafe impl Sync for DmaArea {}

static POOL: DmaArea = DmaArea(UnsafeCell::new([0; DMA_PAGES * PAGE_SIZE]));
/// Pages handed out so far.
static USED: AtomicUsize = AtomicUsize::new(0);

/// The virtio driver's view of this machine's memory.
pub struct DmaPool;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, never-reused pages from a static that
// lives for the whole run, with physical = virtual as on this machine; `share` hands the
// device the buffer's own address, which is where the device reads and writes.
unsafe impl Hal for DmaPool {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = USED.fetch_add(pages, Ordering::Relaxed);
        if first + pages > DMA_PAGES {
            // The driver turns a zero address into `Error::DmaError`.
            return (0, NonNull::dangling());
        }
        // SAFETY: `first * PAGE_SIZE` is inside the pool (checked above).
        let page = unsafe { POOL.0.get().cast::<u8>().add(first * PAGE_SIZE) };
        // The pool is zeroed (bss) and these pages were never handed out before.
        let page = NonNull::new(page).expect("the pool is not at address 0");
        (page.as_ptr() as PhysAddr, page)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // The queues live as long as the driver, i.e. for the whole run.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
