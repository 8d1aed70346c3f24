//! The kernel's floor: what it costs one thread just to hand one datagram per viewer to UDP on
//! this machine, with nothing of WebRTC around it.
//!
//! `bedside-bench udp-floor` fans each "packet" out to N receiving sockets the way an SFU does
//! (same size, same rate, receivers asleep in epoll on the other core like the load generator's
//! viewers), once with one `sendto` per datagram and once with `sendmmsg` batches, and reports
//! the sender thread's CPU time per datagram. On loopback that time includes the receiver's
//! side of the stack (the softirq delivery and the wake-up of the reading thread run in the
//! sender's context), exactly as it does for the servers in the main benchmark; on a real NIC
//! it would not. It is the number to hold the "CPU per forwarded packet" target against.
//!
//! Not here: anything str0m.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procs::pin_to_cpu;
use crate::udp::{self, RecvBatch};

#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub sockets: usize,
    pub packet_rate: u32,
    pub size: usize,
    pub batch: usize,
    /// Datagrams per destination handed over in one `sendmsg` with `UDP_SEGMENT` (1 = no GSO).
    pub gso: usize,
    pub datagrams: u64,
    pub received: u64,
    pub sender_us_per_datagram: f64,
}

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Fan out `rate` packets per second to `n` sockets for `secs`, `batch` datagrams per syscall
/// (1 = `sendto`). With `gso` > 1, every `gso` packets are sent to each socket together, as one
/// `sendmsg` carrying `gso` segments (what an SFU can do when a receive batch holds several
/// packets of a frame); the datagram rate stays the same.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ip: IpAddr,
    n: usize,
    rate: u32,
    size: usize,
    batch: usize,
    gso: usize,
    secs: f64,
    sender_cpu: usize,
    receiver_cpu: usize,
) -> anyhow::Result<Floor> {
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Vec<SocketAddr>>();
    let receiver = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            pin_to_cpu(receiver_cpu)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mut socks = Vec::new();
                for _ in 0..n {
                    socks.push(udp::bind(ip, 1 << 20)?);
                }
                let _ = addr_tx.send(socks.iter().filter_map(|s| s.local_addr().ok()).collect());
                let mut tasks = Vec::new();
                for s in socks {
                    let (stop, received) = (stop.clone(), received.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut b = RecvBatch::new();
                        while !stop.load(Relaxed) {
                            let ready =
                                tokio::time::timeout(Duration::from_millis(100), s.readable())
                                    .await;
                            if !matches!(ready, Ok(Ok(()))) {
                                continue;
                            }
                            while let Ok(k) = b.recv(&s) {
                                received.fetch_add(k as u64, Relaxed);
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
                anyhow::Ok(())
            })
        })
    };
    let dests = addr_rx.recv_timeout(Duration::from_secs(10))?;
    pin_to_cpu(sender_cpu)?;
    let sock = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    let fd = sock.as_raw_fd();
    let gso = gso.max(1);
    let payload = vec![0x80u8; size];
    let segments = vec![0x80u8; size * gso];
    let gap = Duration::from_secs_f64(gso as f64 / rate as f64);
    let start = Instant::now();
    let cpu0 = thread_cpu_s();
    let mut sent = 0u64;
    let mut next = start;
    // Prepared sendmmsg headers (pointers rebuilt per call; all data outlives the call).
    let mut addrs: Vec<libc::sockaddr_in> = dests
        .iter()
        .map(|d| {
            // SAFETY: all-zero is a valid sockaddr_in; the fields are then set.
            let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = d.port().to_be();
            if let IpAddr::V4(v4) = d.ip() {
                a.sin_addr.s_addr = u32::from(v4).to_be();
            }
            a
        })
        .collect();
    while start.elapsed().as_secs_f64() < secs {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += gap;
        if gso > 1 {
            for a in addrs.iter_mut() {
                if send_segments(fd, a, &segments, size) {
                    sent += gso as u64;
                }
            }
        } else if batch <= 1 {
            for d in &dests {
                if sock.send_to(&payload, d).is_ok() {
                    sent += 1;
                }
            }
        } else {
            for chunk in addrs.chunks_mut(batch) {
                let mut iov = libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                };
                let mut hdrs: Vec<libc::mmsghdr> = chunk
                    .iter_mut()
                    .map(|a| {
                        // SAFETY: all-zero is a valid mmsghdr; the fields are then set.
                        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                        h.msg_hdr.msg_name = a as *mut _ as *mut libc::c_void;
                        h.msg_hdr.msg_namelen =
                            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                        h.msg_hdr.msg_iov = &mut iov;
                        h.msg_hdr.msg_iovlen = 1;
                        h
                    })
                    .collect();
                // SAFETY: every header points at live buffers for the duration of the call.
                let r =
                    unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as libc::c_uint, 0) };
                if r > 0 {
                    sent += r as u64;
                }
            }
        }
    }
    let cpu = thread_cpu_s() - cpu0;
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Relaxed);
    let _ = receiver.join();
    Ok(Floor {
        sockets: n,
        packet_rate: rate,
        size,
        batch,
        gso,
        datagrams: sent,
        received: received.load(Relaxed),
        sender_us_per_datagram: cpu * 1e6 / sent.max(1) as f64,
    })
}

/// One `sendmsg` whose payload the kernel cuts into `seg`-byte datagrams (`UDP_SEGMENT`).
fn send_segments(fd: i32, to: &mut libc::sockaddr_in, data: &[u8], seg: usize) -> bool {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Room for one cmsg carrying a u16, aligned as the kernel wants.
    let mut control = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = to as *mut _ as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
    // SAFETY: the control buffer is large enough for one cmsg of two bytes (checked above).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg as u16);
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    unsafe { libc::sendmsg(fd, &msg, 0) > 0 }
}
