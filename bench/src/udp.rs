//! UDP sockets for the load generator: kernel receive timestamps and batched reads.
//!
//! Every latency in the benchmark ends at the kernel's receive timestamp (`SO_TIMESTAMPNS`,
//! `CLOCK_REALTIME`), not at the moment the generator's task got around to reading the socket.
//! That keeps the figures about the server even when the generator's core is busy: a packet that
//! sat in a viewer's socket buffer for a millisecond because 500 viewers share one core did not
//! spend that millisecond in the SFU. Reads are batched with `recvmmsg` to keep the generator's
//! own cost per packet down.
//!
//! Not here: anything WebRTC (see `peer.rs`).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 8;
const BUF: usize = 2048;
const CMSG: usize = 64;

/// Wall-clock nanoseconds since the Unix epoch (`CLOCK_REALTIME`, the clock of `SO_TIMESTAMPNS`).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Bind a UDP socket with kernel receive timestamps and a large receive buffer.
pub fn bind(ip: IpAddr, rcvbuf: usize) -> io::Result<tokio::net::UdpSocket> {
    let std = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    std.set_nonblocking(true)?;
    let fd = std.as_raw_fd();
    let one: libc::c_int = 1;
    let size = rcvbuf as libc::c_int;
    // SAFETY: plain setsockopt calls on a socket we own, with correctly sized option values.
    unsafe {
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        // FORCE works as root past rmem_max; fall back to the capped variant otherwise.
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    tokio::net::UdpSocket::from_std(std)
}

/// One received datagram in a [`RecvBatch`].
pub struct Datagram<'a> {
    pub data: &'a [u8],
    pub src: SocketAddr,
    /// Kernel receive time, ns since the epoch (0 if the kernel gave none).
    pub rx_ns: u64,
}

/// Reusable buffers for `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<[u8; BUF]>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<[u8; CMSG]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    lens: [usize; BATCH],
    stamps: [u64; BATCH],
    srcs: [Option<SocketAddr>; BATCH],
    n: usize,
}

// SAFETY: the raw pointers in the headers only ever point into this struct's own heap buffers
// and are rewritten before every `recvmmsg`; nothing is shared between threads.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let zero_hdr: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        RecvBatch {
            bufs: vec![[0u8; BUF]; BATCH],
            addrs: vec![zero_addr; BATCH],
            cmsgs: vec![[0u8; CMSG]; BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            hdrs: vec![zero_hdr; BATCH],
            lens: [0; BATCH],
            stamps: [0; BATCH],
            srcs: [None; BATCH],
            n: 0,
        }
    }

    /// Read up to [`BATCH`] datagrams without blocking. `Ok(0)` never happens: an empty socket
    /// is `WouldBlock`, as tokio's `try_io` expects.
    pub fn recv(&mut self, sock: &tokio::net::UdpSocket) -> io::Result<usize> {
        let fd = sock.as_raw_fd();
        let n = sock.try_io(tokio::io::Interest::READABLE, || {
            for i in 0..BATCH {
                self.iovs[i] = libc::iovec {
                    iov_base: self.bufs[i].as_mut_ptr() as *mut libc::c_void,
                    iov_len: BUF,
                };
                let h = &mut self.hdrs[i];
                h.msg_hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut self.iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = self.cmsgs[i].as_mut_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_controllen = CMSG as _;
                h.msg_hdr.msg_flags = 0;
                h.msg_len = 0;
            }
            // SAFETY: every header points at buffers owned by self that outlive the call.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else if r == 0 {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(r as usize)
            }
        })?;
        for i in 0..n {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.stamps[i] = stamp(&self.hdrs[i].msg_hdr);
            self.srcs[i] = sockaddr(&self.addrs[i]);
        }
        self.n = n;
        Ok(n)
    }

    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.n {
            return None;
        }
        Some(Datagram {
            data: &self.bufs[i][..self.lens[i]],
            src: self.srcs[i]?,
            rx_ns: self.stamps[i],
        })
    }
}

fn stamp(h: &libc::msghdr) -> u64 {
    // SAFETY: the control buffer was filled by the kernel for this header; the CMSG macros walk
    // it within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    0
}

fn sockaddr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match a.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let s = unsafe { &*(a as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(s.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let s = unsafe { &*(a as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(s.sin6_port)))
        }
        _ => None,
    }
}

/// Fields of a plain RTP header, read from a datagram before decryption (SRTP leaves the header
/// in the clear). `None` for STUN, DTLS, RTCP or anything short.
#[derive(Debug, Clone, Copy)]
pub struct RtpHead {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

pub fn rtp_head(d: &[u8]) -> Option<RtpHead> {
    if d.len() < 12 || !(128..=191).contains(&d[0]) {
        return None;
    }
    // RFC 5761: payload types 64-95 on the second byte are RTCP when muxed.
    if (192..=223).contains(&d[1]) {
        return None;
    }
    Some(RtpHead {
        pt: d[1] & 0x7f,
        seq: u16::from_be_bytes([d[2], d[3]]),
        ts: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
    })
}

/// Extends 16-bit sequence numbers to 64 bits (the usual nearest-neighbour rule).
#[derive(Debug, Default, Clone, Copy)]
pub struct SeqExt {
    last: Option<u64>,
}

impl SeqExt {
    pub fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => (1u64 << 32) + seq as u64,
            Some(last) => {
                let diff = seq.wrapping_sub(last as u16) as i16 as i64;
                (last as i64 + diff) as u64
            }
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_extension_wraps_and_tolerates_reordering() {
        let mut s = SeqExt::default();
        let a = s.extend(65534);
        assert_eq!(s.extend(65535), a + 1);
        assert_eq!(s.extend(1), a + 3);
        assert_eq!(s.extend(0), a + 2);
        assert_eq!(s.extend(2), a + 4);
    }

    #[test]
    fn rtp_header_is_told_from_rtcp_and_others() {
        let mut p = [0u8; 20];
        p[0] = 0x80;
        p[1] = 0x80 | 96;
        p[2..4].copy_from_slice(&7u16.to_be_bytes());
        let h = rtp_head(&p).unwrap();
        assert_eq!((h.pt, h.seq), (96, 7));
        p[1] = 200; // sender report
        assert!(rtp_head(&p).is_none());
        p[0] = 22; // DTLS
        assert!(rtp_head(&p).is_none());
    }

    #[tokio::test]
    async fn kernel_timestamps_arrive() {
        let a = bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 1 << 20).unwrap();
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let before = now_ns();
        b.send_to(b"hello", a.local_addr().unwrap()).await.unwrap();
        a.readable().await.unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&a).unwrap(), 1);
        let d = batch.get(0).unwrap();
        assert_eq!(d.data, b"hello");
        assert!(d.rx_ns >= before && d.rx_ns <= now_ns());
    }
}
