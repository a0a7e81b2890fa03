//! The serve loop: the application polled over the board's NICs for good, the first one
//! optionally through the bad link, sleeping between polls until a frame, the
//! application's next deadline or the bad link's next held frame.

use log::{info, warn};
use socklab_app::badlink::{self, BadLink};
use socklab_app::bootopts::BootOptions;
use socklab_app::smoltcp::time::Instant;
use socklab_app::{App, BootReason, Config, Optional, Sizes, Storage, MAX_NETS};
use static_cell::ConstStaticCell;

use crate::board::Board;
use crate::nic::Nic;
use crate::phy::{DriverTime, NicDevice};
use crate::profile::Profile;

/// Longest sleep between polls, even when the application has no deadline (a board's
/// clock may need a read at least this often).
pub const MAX_IDLE_MS: u64 = 1000;
/// Frames the bad link can hold back per direction.
const BAD_LINK_HELD: usize = 4;
/// The largest frame the bad link holds: Ethernet with a 1500-byte MTU.
const BAD_LINK_FRAME: usize = 1514;

/// The board's NICs, as many as it found (at most [`MAX_NETS`]); the first is
/// interface 0.
pub type Nics<N> = heapless::Vec<N, MAX_NETS>;

/// One interface's device: the NIC's adapter, behind the bad link when a fault option is
/// given (on the first interface only: the bad link's buffers are one static).
type Link<B> = Optional<BadLink<'static, NicDevice<B>>, NicDevice<B>>;

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

/// The NIC adapter inside `link`.
fn adapter<B: Board>(link: &mut Link<B>) -> &mut NicDevice<B> {
    match link {
        Optional::On(bad) => bad.inner_mut(),
        Optional::Off(device) => device,
    }
}

/// Starts the application on `nics` with `config`, the pool's `sizes` and `storage`, and
/// serves for good; `options` (from [`boot_options`](crate::boot_options)) adds the bad
/// link and `--profile`. Storage that does not fit the sizes, or a bad link that cannot
/// start, stops the image with a panic that says why.
pub fn serve<B: Board>(
    board: B,
    nics: Nics<B::Nic>,
    config: Config,
    sizes: Sizes,
    storage: Storage<'static>,
    options: BootOptions,
) -> ! {
    if options.stack_overflow {
        assert!(
            B::OVERFLOW_FAULTS,
            "--test-stack-overflow: this board has no guard below its stack, so an overflow \
             would run on instead of faulting; run the hook on mps2-an385 or riscv-virt"
        );
        warn!("--test-stack-overflow: recursing until the stack overflows");
        crate::stack::overflow(0);
    }
    let mut links: heapless::Vec<Link<B>, MAX_NETS> = heapless::Vec::new();
    for (index, nic) in nics.into_iter().enumerate() {
        let device = NicDevice::<B>::new(nic);
        let link = if index == 0 && !options.faults.is_clean() {
            const { assert!(<B::Nic as Nic>::MAX_FRAME_LEN <= BAD_LINK_FRAME) };
            info!("bad link: {:?}, seed {}", options.faults, options.seed);
            Optional::On(
                BadLink::new(
                    device,
                    options.faults,
                    options.seed,
                    BAD_LINK_HELD,
                    BAD_LINK_FRAME,
                    take_bad_link_storage(),
                )
                .unwrap_or_else(|e| panic!("bad link: {e:?}")),
            )
        } else {
            Optional::Off(device)
        };
        let _ = links.push(link);
    }
    // The application is tens of KiB: built in place, in this frame, once; the loop
    // borrows it.
    let mut slot = None;
    let app = App::new_in(&mut slot, config, sizes, storage, &mut links, now::<B>())
        .unwrap_or_else(|e| panic!("pool storage: {e}"));
    let profile = options
        .profile
        .then(|| Profile::new(driver_time(&mut links)));
    // The test hook hangs the power-on boot only, so the device the watchdog resets
    // comes back and stays.
    let hang = options
        .hang_after_ms
        .filter(|_| config.status.boot_reason == Some(BootReason::PowerOn));
    run(board, app, links, profile, hang)
}

/// The time every NIC's driver took so far.
fn driver_time<B: Board>(links: &mut [Link<B>]) -> DriverTime {
    links
        .iter_mut()
        .map(|link| adapter(link).driver_time())
        .fold(DriverTime::default(), |a, b| DriverTime {
            rx_time: a.rx_time + b.rx_time,
            tx_time: a.tx_time + b.tx_time,
            rx_frames: a.rx_frames + b.rx_frames,
            tx_frames: a.tx_frames + b.tx_frames,
        })
}

/// The loop: feed the watchdog, poll, flush what each NIC batched, check their health,
/// sleep until a frame, the application's deadline or (with a bad link) the next held
/// frame; with `--profile`, count where the time went. With `hang_after_ms` (a test's
/// hook) it stops coming round once the clock reaches it.
fn run<B: Board>(
    mut board: B,
    app: &mut App<'static>,
    mut links: heapless::Vec<Link<B>, MAX_NETS>,
    mut profile: Option<Profile<B>>,
    hang_after_ms: Option<u64>,
) -> ! {
    loop {
        board.feed_watchdog();
        if hang_after_ms.is_some_and(|at| B::now_ms() >= at) {
            hang();
        }
        let now = now::<B>();
        let polled = B::counter();
        let delay = app.poll(now, &mut links);
        let mut ms = delay.map_or(MAX_IDLE_MS, |d| d.total_millis().min(MAX_IDLE_MS));
        for link in links.iter_mut() {
            if let Optional::On(bad) = link {
                if let Some(due) = bad.next_due() {
                    ms = ms.min((due - now).total_millis());
                }
            }
            adapter(link).flush();
        }
        let idled = B::counter();
        let mut nics: Nics<&mut B::Nic> = heapless::Vec::new();
        for link in links.iter_mut() {
            let nic = adapter(link).nic();
            board.check_nic(nic);
            let _ = nics.push(nic);
        }
        board.idle(&mut nics, ms);
        drop(nics);
        if let Some(profile) = profile.as_mut() {
            let driver = driver_time(&mut links);
            profile.record(idled - polled, B::counter() - idled, driver);
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
