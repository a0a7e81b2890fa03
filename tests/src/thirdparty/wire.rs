//! The wire of a linux-tap device, captured where the kernel sees it: an
//! `AF_PACKET` socket on the namespace's side of the TAP, with
//! `PACKET_VNET_HDR`, so that each frame comes with its offload description
//! (`NEEDS_CSUM`, `csum_start`/`csum_offset`, `gso_type`/`gso_size`). With
//! offloads on, the device's TCP frames carry a partial checksum (the
//! pseudo-header sum) that the kernel completes, and super-frames that it
//! cuts into `gso_size` segments: the capture completes each partial sum
//! exactly as the kernel does (`skb_checksum_help`), so that tshark verifies
//! the checksum a segment will carry on a real link, and keeps the offload
//! description for the checks tshark cannot make (the `gso_size` against the
//! peer's MSS).

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Dut;

/// `virtio_net_hdr` as `PACKET_VNET_HDR` prepends it (little-endian on x86).
const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` holds a partial sum to complete over `csum_start..`.
const F_NEEDS_CSUM: u8 = 1;
/// The largest frame a TAP hands over (a 64 KiB super-frame and its headers).
const MAX_FRAME: usize = 65_536 + 14 + 4;
/// How often the capture thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(100);
/// The socket's receive buffer: the mixed session's bursts fit in it whole.
const RCVBUF: libc::c_int = 64 << 20;

/// A frame's offload description, as the kernel gives it with the frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*` (0: none).
    pub gso_type: u8,
    /// The segment payload size the kernel cuts a super-frame into.
    pub gso_size: u16,
    /// Where the checksummed bytes start.
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

impl Offload {
    fn parse(b: &[u8]) -> Offload {
        let word = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Offload {
            flags: b[0],
            gso_type: b[1],
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        }
    }

    /// The frame carries a partial checksum for the kernel to complete.
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct WireFrame {
    /// When the socket received it.
    pub at: SystemTime,
    /// Sent by the namespace to the device (`PACKET_OUTGOING`); otherwise the
    /// device sent it.
    pub to_device: bool,
    /// Its offload description.
    pub offload: Offload,
    /// The Ethernet frame, its partial checksum (if any) completed.
    pub frame: Vec<u8>,
    /// What completing the partial checksum found wrong, if anything.
    pub partial_sum_problem: Option<String>,
}

/// A capture running on the namespace's side of a device's TAP.
pub struct WireCapture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<Vec<WireFrame>>>>,
}

impl WireCapture {
    /// Starts capturing every frame on `dut`'s TAP, both ways.
    pub fn start(dut: &Dut) -> WireCapture {
        let tap = dut.tap_name().expect("the device is on a TAP").to_owned();
        let socket = dut
            .host_net()
            .run(move || open(&tap))
            .expect("enter the device's namespace")
            .unwrap_or_else(|e| panic!("cannot capture on the TAP: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || capture(&socket, &stopping));
        WireCapture {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the capture, writes it to `pcap` (Ethernet, partial checksums
    /// completed) and returns its frames, in the order of the file.
    pub fn finish(mut self, pcap: &Path) -> Vec<WireFrame> {
        self.stop.store(true, Ordering::Relaxed);
        let frames = self
            .thread
            .take()
            .expect("the capture thread")
            .join()
            .expect("the capture thread panicked")
            .unwrap_or_else(|e| panic!("the capture on the TAP failed: {e}"));
        write_pcap(pcap, &frames)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", pcap.display()));
        frames
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens the capture socket on `tap` (in the calling thread's namespace).
fn open(tap: &str) -> io::Result<OwnedFd> {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(all)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let set = |level, name, value: libc::c_int| -> io::Result<()> {
        // SAFETY: the option value is a c_int that lives across the call.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    set(libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
    set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF)?;
    let name = std::ffi::CString::new(tap).expect("a TAP name has no NUL");
    // SAFETY: `name` is a NUL-terminated string that lives across the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = all;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: POLL.as_micros() as libc::suseconds_t,
    };
    // SAFETY: the option value is a timeval that lives across the call.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Receives frames until `stop`, then drains what the socket still holds.
fn capture(socket: &OwnedFd, stop: &AtomicBool) -> io::Result<Vec<WireFrame>> {
    let mut frames = Vec::new();
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_FRAME];
    let mut stopping = false;
    loop {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are valid for the lengths given.
        let n = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                if stopping { libc::MSG_DONTWAIT } else { 0 },
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    if stopping {
                        return Ok(frames);
                    }
                    stopping = stop.load(Ordering::Relaxed);
                    continue;
                }
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
        let n = n as usize;
        if n < VNET_HDR_LEN {
            continue;
        }
        let offload = Offload::parse(&buf[..VNET_HDR_LEN]);
        let mut frame = buf[VNET_HDR_LEN..n].to_vec();
        let partial_sum_problem = offload
            .needs_csum()
            .then(|| complete_partial_sum(&mut frame, &offload))
            .flatten();
        frames.push(WireFrame {
            at: SystemTime::now(),
            to_device: from.sll_pkttype == libc::PACKET_OUTGOING,
            offload,
            frame,
            partial_sum_problem,
        });
        if !stopping {
            stopping = stop.load(Ordering::Relaxed);
        }
    }
}

/// The ones'-complement sum of `bytes` (16-bit big-endian words), unfolded.
fn sum(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut total: u32 = 0;
    for word in &mut chunks {
        total = total.wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])));
        total = (total & 0xffff) + (total >> 16);
    }
    if let [last] = chunks.remainder() {
        total += u32::from(*last) << 8;
    }
    total
}

fn fold(mut total: u32) -> u16 {
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    total as u16
}

/// Completes a partial checksum as the kernel does for a frame it sends on
/// a link without checksum offload: the ones'-complement sum of everything
/// from `csum_start` (the partial sum in the field included), inverted,
/// into the field. Before that, checks the convention the kernel relies on
/// (also to cut a super-frame into segments): `csum_start` is where the TCP
/// or UDP header starts and the field holds the pseudo-header sum over the
/// whole transport length, not inverted. Returns what is wrong, if anything.
fn complete_partial_sum(frame: &mut [u8], offload: &Offload) -> Option<String> {
    let start = usize::from(offload.csum_start);
    let field = start + usize::from(offload.csum_offset);
    if field + 2 > frame.len() {
        return Some(format!(
            "the checksum field ({start} + {}) is outside the {}-byte frame",
            offload.csum_offset,
            frame.len()
        ));
    }
    let mut problem = None;
    if let Some((l4, protocol, pseudo)) = pseudo_header(frame) {
        let expected_offset = match protocol {
            6 => 16,
            17 => 6,
            _ => 0,
        };
        let partial = u16::from_be_bytes([frame[field], frame[field + 1]]);
        if start != l4 || usize::from(offload.csum_offset) != expected_offset {
            problem = Some(format!(
                "csum_start {start} / csum_offset {} for a protocol {protocol} header at {l4}",
                offload.csum_offset
            ));
        } else if partial != fold(pseudo) {
            problem = Some(format!(
                "the partial sum is {partial:#06x}, the pseudo-header sum is {:#06x}",
                fold(pseudo)
            ));
        }
    } else {
        problem = Some("NEEDS_CSUM on a frame that is not IPv4 or IPv6".to_owned());
    }
    let complete = !fold(sum(&frame[start..]));
    frame[field..field + 2].copy_from_slice(&complete.to_be_bytes());
    problem
}

/// Where the transport header starts, its protocol, and the unfolded sum of
/// its pseudo-header (addresses, protocol, transport length).
fn pseudo_header(frame: &[u8]) -> Option<(usize, u8, u32)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match ethertype {
        0x0800 => {
            let ip = frame.get(14..34)?;
            let header = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let l4_len = total.checked_sub(header)?;
            let protocol = ip[9];
            let total = sum(&ip[12..20]) + u32::from(protocol) + l4_len as u32;
            Some((14 + header, protocol, total))
        }
        0x86dd => {
            let ip = frame.get(14..54)?;
            let l4_len = u32::from(u16::from_be_bytes([ip[4], ip[5]]));
            let protocol = ip[6];
            let total = sum(&ip[8..40]) + u32::from(protocol) + l4_len;
            Some((54, protocol, total))
        }
        _ => None,
    }
}

/// Writes `frames` as a classic pcap file (Ethernet, microseconds).
fn write_pcap(path: &Path, frames: &[WireFrame]) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&0i32.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&(MAX_FRAME as u32).to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    for f in frames {
        let since = f.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        out.write_all(&(since.as_secs() as u32).to_le_bytes())?;
        out.write_all(&since.subsec_micros().to_le_bytes())?;
        let len = (f.frame.len() as u32).to_le_bytes();
        out.write_all(&len)?;
        out.write_all(&len)?;
        out.write_all(&f.frame)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::{complete_partial_sum, fold, pseudo_header, sum, Offload, F_NEEDS_CSUM};

    /// An IPv4 TCP frame (no options) with `payload`, checksum field 0.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (40 + payload.len()) as u16;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[192, 168, 69, 1]);
        f[30..34].copy_from_slice(&[192, 168, 69, 100]);
        f[34..36].copy_from_slice(&7u16.to_be_bytes());
        f[36..38].copy_from_slice(&40000u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x18;
        f.extend_from_slice(payload);
        f
    }

    fn offload() -> Offload {
        Offload {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Offload::default()
        }
    }

    #[test]
    fn a_correct_partial_sum_completes_to_a_valid_checksum() {
        let mut f = tcp_frame(b"hello, wire");
        let (_, _, pseudo) = pseudo_header(&f).unwrap();
        f[50..52].copy_from_slice(&fold(pseudo).to_be_bytes());
        assert_eq!(complete_partial_sum(&mut f, &offload()), None);
        // A valid checksum: the sum over pseudo-header and segment is 0xffff.
        let (_, _, pseudo) = pseudo_header(&f).unwrap();
        assert_eq!(fold(pseudo + sum(&f[34..])), 0xffff);
    }

    #[test]
    fn a_wrong_partial_sum_or_place_is_reported() {
        let mut f = tcp_frame(b"odd");
        f[50..52].copy_from_slice(&0x1234u16.to_be_bytes());
        let problem = complete_partial_sum(&mut f, &offload()).unwrap();
        assert!(problem.contains("partial sum"), "{problem}");
        let mut f = tcp_frame(b"odd");
        let wrong = Offload {
            csum_offset: 6,
            ..offload()
        };
        let problem = complete_partial_sum(&mut f, &wrong).unwrap();
        assert!(problem.contains("csum_offset"), "{problem}");
    }
}
