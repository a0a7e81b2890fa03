//! The TAP interface as a smoltcp `phy::Device`: one `read` or `write` per
//! frame, straight into two buffers allocated once (smoltcp's own
//! `TunTapInterface` allocates and zeroes a buffer per frame).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socklab_app::smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use socklab_app::smoltcp::time::Instant;
use socklab_app::smoltcp::wire::EthernetFrame;

/// `_IOW('T', 202, int)`: attach the file to a TUN/TAP interface.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// A TAP (Ethernet frames), not a TUN (IP packets).
const IFF_TAP: libc::c_short = 0x0002;
/// No packet-information header before each frame.
const IFF_NO_PI: libc::c_short = 0x1000;

/// An open TAP interface.
pub struct Tap {
    fd: OwnedFd,
    /// The interface's MTU (IP bytes per frame).
    mtu: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Writes the kernel refused (counted, never fatal: a lost frame is TCP's
    /// business).
    pub tx_errors: u64,
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
    /// Attaches to the TAP interface `name` (which must exist and be ours).
    pub fn open(name: &str) -> io::Result<Tap> {
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
        req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
        // SAFETY: TUNSETIFF reads an ifreq we own for the call's duration.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mtu = interface_mtu(name)?;
        let frame = mtu + EthernetFrame::<&[u8]>::header_len();
        Ok(Tap {
            fd,
            mtu,
            rx: vec![0; frame],
            tx: vec![0; frame],
            tx_errors: 0,
        })
    }
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

/// A received frame, in the TAP's receive buffer.
pub struct TapRx<'a>(&'a [u8]);

/// Room for one frame to send, in the TAP's transmit buffer.
pub struct TapTx<'a> {
    fd: RawFd,
    buffer: &'a mut [u8],
    errors: &'a mut u64,
}

impl RxToken for TapRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for TapTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let frame = &mut self.buffer[..len];
        let result = f(frame);
        // SAFETY: writes `len` initialised bytes we own to our descriptor.
        let written = unsafe { libc::write(self.fd, frame.as_ptr().cast(), len) };
        if written != len as isize {
            *self.errors += 1;
        }
        result
    }
}

impl Device for Tap {
    type RxToken<'a> = TapRx<'a>;
    type TxToken<'a> = TapTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(TapRx<'_>, TapTx<'_>)> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: reads at most rx.len() bytes into a buffer we own.
        let n = unsafe { libc::read(fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
        if n <= 0 {
            // EAGAIN: nothing waiting. Other errors would repeat on every
            // poll; the board's wait on the descriptor reports them.
            return None;
        }
        Some((
            TapRx(&self.rx[..n as usize]),
            TapTx {
                fd,
                buffer: &mut self.tx,
                errors: &mut self.tx_errors,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TapTx<'_>> {
        Some(TapTx {
            fd: self.fd.as_raw_fd(),
            buffer: &mut self.tx,
            errors: &mut self.tx_errors,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + EthernetFrame::<&[u8]>::header_len();
        caps
    }
}
