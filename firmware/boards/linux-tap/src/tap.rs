//! The TAP interface as a smoltcp `phy::Device`: one `read` or `write` per
//! frame, straight into two buffers allocated once (smoltcp's own
//! `TunTapInterface` allocates and zeroes a buffer per frame). With offloads
//! (`IFF_VNET_HDR`) a frame is up to 64 KB and carries a `virtio_net_hdr`
//! (see `vnet`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use std::num::{NonZeroU16, NonZeroUsize};

use socklab_app::smoltcp::phy::{
    Checksum, Device, DeviceCapabilities, Medium, PacketMeta, RxToken, TxToken,
};
use socklab_app::smoltcp::time::Instant;
use socklab_app::smoltcp::wire::EthernetFrame;

use crate::vnet::{self, VnetHeader};

/// `_IOW('T', 202, int)`: attach the file to a TUN/TAP interface.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// A TAP (Ethernet frames), not a TUN (IP packets).
const IFF_TAP: libc::c_short = 0x0002;
/// No packet-information header before each frame.
const IFF_NO_PI: libc::c_short = 0x1000;
/// A `virtio_net_hdr` before each frame (offloads).
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `_IOW('T', 216, int)`: the size of the `virtio_net_hdr`.
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
/// `_IOW('T', 208, unsigned int)`: the offloads the device accepts.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: partial checksums and TCP
/// super-frames over IPv4 and IPv6, both ways.
const OFFLOADS: libc::c_uint = 0x1 | 0x2 | 0x4;

/// An open TAP interface.
pub struct Tap {
    fd: OwnedFd,
    /// The interface's MTU (IP bytes per frame).
    mtu: usize,
    /// Frames carry a `virtio_net_hdr`: checksum and segmentation offload.
    offload: bool,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Writes the kernel refused (counted, never fatal: a lost frame is TCP's
    /// business).
    pub tx_errors: u64,
    /// Frames from the kernel dropped because their offload header did not
    /// fit the frame.
    pub rx_errors: u64,
    /// When to read again after a frame, see [`ReadAhead`].
    ahead: ReadAhead,
    /// Complete the TCP checksums the kernel left partial (for a capture).
    complete_tcp: bool,
}

/// Frames at least this long are taken as part of a stream, after which
/// more are likely queued.
const STREAM_FRAME: usize = 1024;
/// After this many polls that read one frame and did not look for a second,
/// look once anyway (a burst of small frames from many clients).
const PROBE_EVERY: u32 = 8;
/// Bytes read in one poll before the device stops reading, so that the
/// services drain what came and the stack acknowledges it before more is
/// read. Without it, a jumbo pool (4 MiB receive buffers) read 50 frames of
/// 64 KB in one poll and acknowledged them all at once: the sender, out of
/// window, stopped until that ACK, and host→device at MTU 65000 ran at a
/// quarter of the kernel's with the device 88 % idle.
const READ_BUDGET: usize = 256 * 1024;

/// Whether to read again after a frame in the same poll, or go back to the
/// wait. A read that finds nothing costs a system call: in a ping-pong (one
/// small frame per wake) it is a quarter of the device's calls per round
/// trip. So after a small frame the device reads again only while the last
/// such look found a frame (a burst), and every [`PROBE_EVERY`] polls; after
/// a large one, always. Skipping a read never delays a frame: the wait
/// returns at once while one is queued.
#[derive(Debug, Default)]
struct ReadAhead {
    /// The poll the reads belong to (smoltcp passes one timestamp per poll).
    poll: Option<Instant>,
    /// Frames read in this poll.
    reads: u32,
    /// Bytes read in this poll.
    bytes: usize,
    /// The last look for a frame behind another found one.
    burst: bool,
    /// Polls since the last look behind a small frame.
    skipped: u32,
}

impl ReadAhead {
    /// Whether to read now, in the poll of `timestamp`.
    fn should_read(&mut self, timestamp: Instant) -> bool {
        if self.poll != Some(timestamp) {
            self.poll = Some(timestamp);
            self.reads = 0;
            self.bytes = 0;
        }
        if self.bytes >= READ_BUDGET {
            return false;
        }
        if self.reads == 0 || self.burst {
            return true;
        }
        self.skipped += 1;
        if self.skipped < PROBE_EVERY {
            return false;
        }
        self.skipped = 0;
        true
    }

    /// A read found a frame of `len` bytes, or nothing (`None`).
    fn read(&mut self, len: Option<usize>) {
        match len {
            Some(len) => {
                if self.reads > 0 || len >= STREAM_FRAME {
                    self.burst = true;
                }
                self.reads += 1;
                self.bytes += len;
            }
            None if self.reads > 0 => self.burst = false,
            None => {}
        }
    }
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not an interface name (1 to 15 bytes)"),
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

impl Tap {
    /// Attaches to the TAP interface `name` (which must exist and be ours),
    /// with checksum and segmentation offloads if `offload` and the kernel
    /// accepts them; [`Tap::offload`] says which it got. The error of a
    /// refused offload is logged and the TAP opened without.
    pub fn open(name: &str, offload: bool) -> io::Result<Tap> {
        if offload {
            match Tap::attach(name, true) {
                Ok(tap) => return Ok(tap),
                Err(error) if error.kind() == io::ErrorKind::Unsupported => {
                    log::warn!("offload off: {error}")
                }
                Err(error) => return Err(error),
            }
        }
        Tap::attach(name, false)
    }

    /// Whether frames carry offloads.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// With offloads, complete the TCP checksums of frames the kernel made on
    /// this host (which it leaves partial), so that a capture shows them
    /// valid; otherwise they are trusted as they are.
    pub fn complete_tcp_checksums(&mut self, complete: bool) {
        self.complete_tcp = complete;
    }

    fn attach(name: &str, offload: bool) -> io::Result<Tap> {
        let path: &CStr = c"/dev/net/tun";
        // SAFETY: a plain open(2) of a NUL-terminated path.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | if offload { IFF_VNET_HDR } else { 0 };
        // SAFETY: TUNSETIFF reads an ifreq we own for the call's duration.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if offload {
            negotiate(&fd)?;
        } else {
            // The kernel keeps a TAP's offloads after the descriptor that set
            // them closes: without this, a TAP last used with offloads would
            // go on handing over partial checksums and super-frames.
            // SAFETY: TUNSETOFFLOAD takes its flags by value; no memory is passed.
            if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, 0 as libc::c_uint) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mtu = interface_mtu(name)?;
        let frame = mtu + EthernetFrame::<&[u8]>::header_len();
        let (rx, tx) = if offload {
            (
                vnet::HEADER_LEN + vnet::MAX_RX_FRAME.max(frame),
                vnet::HEADER_LEN + vnet::MAX_SUPER_FRAME.max(frame),
            )
        } else {
            (frame, frame)
        };
        Ok(Tap {
            fd,
            mtu,
            offload,
            rx: vec![0; rx],
            tx: vec![0; tx],
            tx_errors: 0,
            rx_errors: 0,
            ahead: ReadAhead::default(),
            complete_tcp: false,
        })
    }
}

/// Sets the header size and the offloads on a TAP opened with
/// `IFF_VNET_HDR` (the kernel forgets them when the descriptor closes). A
/// refusal comes back as `Unsupported`, saying what was refused.
fn negotiate(fd: &OwnedFd) -> io::Result<()> {
    let size = vnet::HEADER_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int we own for the call's duration.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETHDRSZ as _, &size) } < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the kernel refused a {size}-byte virtio_net_hdr: {error}"),
        ));
    }
    // SAFETY: TUNSETOFFLOAD takes its flags by value; no memory is passed.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, OFFLOADS) } < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the kernel refused TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6: {error}"),
        ));
    }
    Ok(())
}

/// Makes the kernel's queue of frames towards the device (the TAP's transmit
/// queue, `txqueuelen`, 1000 frames unless set) hold at least `frames`
/// frames, and returns its length. A frame that arrives while the queue is
/// full is dropped by the kernel (`ip -s link` counts it as a TX drop), and
/// its sender retransmits it only after its retransmission timeout (200 ms
/// at least on Linux): under a burst from a thousand clients that is the
/// tail of the latency. Setting it needs `CAP_NET_ADMIN`; the error says so.
pub fn raise_queue(name: &str, frames: usize) -> io::Result<usize> {
    // SAFETY: a plain socket(2); closed by OwnedFd.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFTXQLEN fills the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFTXQLEN as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFTXQLEN set the union's int member (the kernel's
    // `ifr_qlen`, which libc names after the MTU that shares its place).
    let len = unsafe { req.ifr_ifru.ifru_mtu }.max(0) as usize;
    if len >= frames {
        return Ok(len);
    }
    req.ifr_ifru.ifru_mtu = libc::c_int::try_from(frames).unwrap_or(libc::c_int::MAX);
    // SAFETY: SIOCSIFTXQLEN reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFTXQLEN as _, &mut req) } < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!(
                "cannot raise the TAP's queue from {len} to {frames} frames ({error}); as root: \
                 `ip link set {name} txqueuelen {frames}`"
            ),
        ));
    }
    Ok(frames)
}

/// Reads an interface's MTU with SIOCGIFMTU.
fn interface_mtu(name: &str) -> io::Result<usize> {
    // SAFETY: a plain socket(2); closed by OwnedFd.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFMTU fills the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFMTU set the ifru_mtu member.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as usize)
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A received frame, in the TAP's receive buffer.
pub struct TapRx<'a>(&'a [u8]);

/// Room for one frame to send, in the TAP's transmit buffer.
pub struct TapTx<'a> {
    fd: RawFd,
    buffer: &'a mut [u8],
    errors: &'a mut u64,
    /// Frames carry a `virtio_net_hdr`.
    offload: bool,
    /// The MSS smoltcp asks the kernel to cut this segment into.
    mss: Option<NonZeroU16>,
}

impl RxToken for TapRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for TapTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let start = if self.offload { vnet::HEADER_LEN } else { 0 };
        let Some(frame) = self.buffer.get_mut(start..start + len) else {
            // Larger than the device said it sends: smoltcp never asks this.
            *self.errors += 1;
            return f(&mut vec![0; len]);
        };
        let result = f(frame);
        if self.offload {
            let (header, frame) = self.buffer.split_at_mut(vnet::HEADER_LEN);
            let description = vnet::prepare_tx(&mut frame[..len], self.mss.map(NonZeroU16::get));
            let header: &mut [u8; vnet::HEADER_LEN] =
                header.try_into().expect("split at HEADER_LEN");
            description.write(header);
        }
        let total = start + len;
        // SAFETY: writes `total` initialised bytes we own to our descriptor.
        let written = unsafe { libc::write(self.fd, self.buffer.as_ptr().cast(), total) };
        if written != total as isize {
            *self.errors += 1;
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.mss = meta.segmentation_offload_size;
    }
}

impl Device for Tap {
    type RxToken<'a> = TapRx<'a>;
    type TxToken<'a> = TapTx<'a>;

    fn receive(&mut self, timestamp: Instant) -> Option<(TapRx<'_>, TapTx<'_>)> {
        let fd = self.fd.as_raw_fd();
        if !self.ahead.should_read(timestamp) {
            return None;
        }
        let frame = loop {
            // SAFETY: reads at most rx.len() bytes into a buffer we own.
            let n = unsafe { libc::read(fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
            if n <= 0 {
                // EAGAIN: nothing waiting. Other errors would repeat on every
                // poll; the board's wait on the descriptor reports them.
                self.ahead.read(None);
                return None;
            }
            let n = n as usize;
            self.ahead.read(Some(n));
            if !self.offload {
                break 0..n;
            }
            let Some((header, frame)) =
                self.rx[..n].split_first_chunk_mut::<{ vnet::HEADER_LEN }>()
            else {
                self.rx_errors += 1;
                continue;
            };
            match vnet::accept_rx(&VnetHeader::parse(header), frame, self.complete_tcp) {
                Ok(()) => break vnet::HEADER_LEN..n,
                Err(error) => {
                    self.rx_errors += 1;
                    log::debug!("dropped a {}-byte frame from the kernel: {error:?}", n);
                }
            }
        };
        Some((
            TapRx(&self.rx[frame]),
            TapTx {
                fd,
                buffer: &mut self.tx,
                errors: &mut self.tx_errors,
                offload: self.offload,
                mss: None,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TapTx<'_>> {
        Some(TapTx {
            fd: self.fd.as_raw_fd(),
            buffer: &mut self.tx,
            errors: &mut self.tx_errors,
            offload: self.offload,
            mss: None,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + EthernetFrame::<&[u8]>::header_len();
        if self.offload {
            // The kernel completes the TCP checksums we send; the TCP
            // checksums we receive are verified (or trusted, when the kernel
            // made the packet on this host) by `vnet::accept_rx`. Nothing
            // between the TAP and smoltcp changes a byte: the bad link turns
            // offloads off.
            caps.checksum.tcp = Checksum::None;
            // Super-frames out over IPv4 only: smoltcp 0.14 drops an IPv6
            // packet longer than the MTU even when it asked the device to
            // segment it (its IPv6 send path has no segmentation exception).
            // IPv6 goes out one MSS per frame, checksum offloaded; the kernel
            // still hands the device IPv6 super-frames.
            caps.segmentation.tcpv4 = NonZeroUsize::new(vnet::MAX_SUPER_FRAME);
        }
        caps
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Reads `frames` (lengths; `None`: nothing there) in one poll the way
    /// smoltcp asks, until a read is skipped or finds nothing; returns how
    /// many reads were made.
    fn poll(ahead: &mut ReadAhead, at: i64, frames: &[Option<usize>]) -> usize {
        let stamp = Instant::from_micros(at);
        let mut reads = 0;
        for &frame in frames {
            if !ahead.should_read(stamp) {
                break;
            }
            reads += 1;
            ahead.read(frame);
            if frame.is_none() {
                break;
            }
        }
        reads
    }

    #[test]
    fn a_ping_pong_looks_behind_a_frame_only_every_few_polls() {
        let mut ahead = ReadAhead::default();
        let polls = PROBE_EVERY as usize * 4;
        let reads: usize = (0..polls as i64)
            .map(|i| poll(&mut ahead, i, &[Some(118), None]))
            .sum();
        assert_eq!(reads, polls + 4);
    }

    #[test]
    fn a_stream_or_a_burst_is_read_until_nothing_is_left() {
        let mut ahead = ReadAhead::default();
        assert_eq!(poll(&mut ahead, 1, &[Some(118), None]), 1);
        // A large frame: read on until nothing is there.
        let stream = [Some(65_000), Some(65_000), Some(1514), Some(66), None];
        assert_eq!(poll(&mut ahead, 2, &stream), 5);
        // Small frames in a burst: found by the periodic look, then read on.
        let small = [Some(100), Some(100), Some(100), None];
        let reads: Vec<usize> = (0..PROBE_EVERY as i64)
            .map(|i| poll(&mut ahead, 3 + i, &small))
            .collect();
        assert!(reads.contains(&4), "{reads:?}");
    }

    #[test]
    fn a_poll_reads_at_most_its_budget_then_lets_the_stack_acknowledge() {
        let mut ahead = ReadAhead::default();
        let frames = [Some(65_000); 64];
        let per_poll = READ_BUDGET.div_ceil(65_000);
        assert_eq!(poll(&mut ahead, 1, &frames), per_poll);
        // The next poll reads on.
        assert_eq!(poll(&mut ahead, 2, &frames), per_poll);
    }
}
