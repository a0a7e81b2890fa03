//! The serve loop: the application polled over the board's NIC for good, optionally
//! through the bad link, sleeping between polls until a frame, the application's next
//! deadline or the bad link's next held frame.

use log::{info, warn};
use socklab_app::badlink::{self, BadLink};
use socklab_app::bootopts::BootOptions;
use socklab_app::smoltcp::phy::Device;
use socklab_app::smoltcp::time::Instant;
use socklab_app::{App, BootReason, Config, Sizes, Storage};
use static_cell::ConstStaticCell;

use crate::board::Board;
use crate::nic::Nic;
use crate::phy::NicDevice;
use crate::profile::Profile;

/// Longest sleep between polls, even when the application has no deadline (a board's
/// clock may need a read at least this often).
pub const MAX_IDLE_MS: u64 = 1000;
/// Frames the bad link can hold back per direction.
const BAD_LINK_HELD: usize = 4;
/// The largest frame the bad link holds: Ethernet with a 1500-byte MTU.
const BAD_LINK_FRAME: usize = 1514;

/// Bytes of the bad link's hold buffers: a static of every image (INFO `ram_bad_link`).
pub const BAD_LINK_BYTES: usize = badlink::storage_bytes(BAD_LINK_HELD, BAD_LINK_FRAME);

/// The bad link's hold buffers, taken once when a fault option is given.
fn take_bad_link_storage() -> &'static mut [u8] {
    static STORAGE: ConstStaticCell<[u8; BAD_LINK_BYTES]> =
        ConstStaticCell::new([0; BAD_LINK_BYTES]);
    STORAGE.take()
}

/// The application's clock.
fn now<B: Board>() -> Instant {
    Instant::from_millis(B::now_ms() as i64)
}

/// Starts the application on `nic` with `config`, the pool's `sizes` and `storage`, and
/// serves for good; `options` (from [`boot_options`](crate::boot_options)) adds the bad
/// link and `--profile`. Storage that does not fit the sizes, or a bad link that cannot
/// start, stops the image with a panic that says why.
pub fn serve<B: Board>(
    board: B,
    nic: B::Nic,
    config: Config,
    sizes: Sizes,
    storage: Storage<'static>,
    options: BootOptions,
) -> ! {
    if options.stack_overflow {
        assert!(
            B::OVERFLOW_FAULTS,
            "--test-stack-overflow: this board has no guard below its stack, so an overflow \
             would run on instead of faulting; run the hook on mps2-an385"
        );
        warn!("--test-stack-overflow: recursing until the stack overflows");
        crate::stack::overflow(0);
    }
    let mut device = NicDevice::<B>::new(nic);
    let app = App::new(config, sizes, storage, &mut device, now::<B>())
        .unwrap_or_else(|e| panic!("pool storage: {e}"));
    let profile = options.profile.then(|| Profile::new(device.driver_time()));
    // The test hook hangs the power-on boot only, so the device the watchdog resets
    // comes back and stays.
    let hang = options
        .hang_after_ms
        .filter(|_| config.status.boot_reason == Some(BootReason::PowerOn));
    if options.faults.is_clean() {
        run(board, app, device, profile, hang, |d| d, |_| None)
    } else {
        const { assert!(<B::Nic as Nic>::MAX_FRAME_LEN <= BAD_LINK_FRAME) };
        info!("bad link: {:?}, seed {}", options.faults, options.seed);
        let link = BadLink::new(
            device,
            options.faults,
            options.seed,
            BAD_LINK_HELD,
            BAD_LINK_FRAME,
            take_bad_link_storage(),
        )
        .unwrap_or_else(|e| panic!("bad link: {e:?}"));
        run(
            board,
            app,
            link,
            profile,
            hang,
            |l| l.inner_mut(),
            |l| l.next_due(),
        )
    }
}

/// The loop: feed the watchdog, poll, flush what the NIC batched, check its health,
/// sleep until a frame, the application's deadline or (with a bad link) the next held
/// frame; with `--profile`, count where the time went. With `hang_after_ms` (a test's
/// hook) it stops coming round once the clock reaches it.
#[allow(clippy::too_many_arguments)]
fn run<B: Board, D: Device>(
    mut board: B,
    mut app: App<'static>,
    mut device: D,
    mut profile: Option<Profile<B>>,
    hang_after_ms: Option<u64>,
    nic: impl Fn(&mut D) -> &mut NicDevice<B>,
    next_due: impl Fn(&D) -> Option<Instant>,
) -> ! {
    loop {
        board.feed_watchdog();
        if hang_after_ms.is_some_and(|at| B::now_ms() >= at) {
            hang();
        }
        let now = now::<B>();
        let polled = B::counter();
        let delay = app.poll(now, &mut device);
        nic(&mut device).flush();
        let idled = B::counter();
        let mut ms = delay.map_or(MAX_IDLE_MS, |d| d.total_millis().min(MAX_IDLE_MS));
        if let Some(due) = next_due(&device) {
            ms = ms.min((due - now).total_millis());
        }
        let adapter = nic(&mut device);
        board.check_nic(adapter.nic());
        board.idle(adapter.nic(), ms);
        if let Some(profile) = profile.as_mut() {
            profile.record(idled - polled, B::counter() - idled, adapter.driver_time());
        }
    }
}

/// The test hook `--test-hang-after-ms`: a service stuck for good, which only the
/// watchdog ends.
fn hang() -> ! {
    warn!("--test-hang-after-ms: the serve loop hangs now, without feeding the watchdog");
    loop {
        core::hint::spin_loop();
    }
}
