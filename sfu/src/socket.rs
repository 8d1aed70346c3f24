//! The worker's UDP socket: batched receive (`recvmmsg`, GRO) and batched send (GSO).
//!
//! Fan-out is the SFU's cost: every robot packet becomes one datagram per viewer, and on Linux
//! most of a datagram's price is the trip through the kernel's UDP/IP stack, not our code. When
//! a receive batch holds several packets of a frame, a viewer's share of them leaves in one
//! `sendmsg` with `UDP_SEGMENT` (GSO): the stack is walked once and the datagrams are cut apart
//! at the bottom (by the NIC where it can). [`SendBatch`] decides which consecutive datagrams may
//! share a send (same destination, equal sizes, a shorter one only last), [`MediaSocket`] does
//! the I/O through `quinn-udp`, which also knows when the kernel or driver cannot segment and
//! falls back to one datagram per call. Receiving goes through `quinn-udp` too: it reads up to
//! its batch size per syscall, and since it turns GRO on, one buffer may hold several datagrams
//! of one sender, which [`RecvBatch`] splits again.
//!
//! Not here: what a datagram means (the switchboard and str0m decide) or which to send first.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState, BATCH_SIZE};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest payload one GSO send may carry (an IPv4 datagram's 65,535 less headers, rounded).
const MAX_GSO_BYTES: usize = 65_000;

/// Largest datagram a receive buffer must hold one of (an Ethernet MTU's worth).
const MAX_DATAGRAM: usize = 1500;

pub(crate) struct MediaSocket {
    io: UdpSocket,
    state: UdpSocketState,
}

impl MediaSocket {
    pub(crate) fn new(io: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&io))?;
        Ok(MediaSocket { io, state })
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Read what is queued, up to one `recvmmsg` worth, into `batch`, replacing what it held.
    /// `WouldBlock` when nothing was queued.
    pub(crate) fn try_recv(&self, batch: &mut RecvBatch) -> io::Result<()> {
        self.recv_into(batch, true)
    }

    /// Like [`try_recv`](Self::try_recv), but asks the kernel even when tokio believes the
    /// socket is drained. In the middle of a long synchronous pass the runtime's readiness is
    /// stale (it learns of new datagrams only when the task yields), and this is how a pass
    /// looks for urgent datagrams without yielding. Readiness stays tokio's business: a
    /// datagram left queued was announced by epoll and wakes the task as usual.
    pub(crate) fn try_recv_now(&self, batch: &mut RecvBatch) -> io::Result<()> {
        self.recv_into(batch, false)
    }

    fn recv_into(&self, batch: &mut RecvBatch, via_tokio: bool) -> io::Result<()> {
        let RecvBatch {
            bufs,
            meta,
            datagrams,
        } = batch;
        datagrams.clear();
        let n = {
            let mut slices: Vec<IoSliceMut<'_>> = bufs
                .iter_mut()
                .map(|b| IoSliceMut::new(&mut b[..]))
                .collect();
            let mut recv = || {
                self.state
                    .recv(UdpSockRef::from(&self.io), &mut slices, meta)
            };
            if via_tokio {
                self.io.try_io(Interest::READABLE, recv)?
            } else {
                recv()?
            }
        };
        for (i, m) in meta.iter().take(n).enumerate() {
            let stride = m.stride.max(1);
            let mut start = 0;
            while start < m.len {
                let len = stride.min(m.len - start);
                datagrams.push(Datagram {
                    buf: i,
                    start,
                    len,
                    src: m.addr,
                });
                start += len;
            }
        }
        Ok(())
    }

    /// Send one datagram now, or report why not (`WouldBlock`: the socket buffer is full).
    pub(crate) fn send_one(&self, to: SocketAddr, contents: &[u8]) -> io::Result<()> {
        self.send(to, contents, None)
    }

    fn send(&self, to: SocketAddr, contents: &[u8], segment: Option<usize>) -> io::Result<()> {
        let t = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: segment,
            src_ip: None,
        };
        self.state.try_send(UdpSockRef::from(&self.io), &t)
    }

    /// Datagrams the kernel takes per GSO send here (1: no GSO on this machine, or it was
    /// refused once and quinn-udp turned it off).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Receive buffers that can hold a whole GRO train (quinn-udp reports nothing if one is
    /// cut short).
    pub(crate) fn recv_batch(&self, buffers: usize) -> RecvBatch {
        RecvBatch::with_buffers(buffers, self.state.gro_segments().max(1) * MAX_DATAGRAM)
    }
}

/// One datagram inside a [`RecvBatch`] buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    buf: usize,
    start: usize,
    len: usize,
    pub src: SocketAddr,
}

/// Buffers for one receive call and the datagrams found in them.
pub(crate) struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    meta: Vec<RecvMeta>,
    pub datagrams: Vec<Datagram>,
}

impl RecvBatch {
    /// Room for `n` receive buffers of `size` bytes (quinn-udp reads at most [`BATCH_SIZE`]
    /// per call).
    pub(crate) fn with_buffers(n: usize, size: usize) -> Self {
        let n = n.min(BATCH_SIZE);
        RecvBatch {
            bufs: (0..n).map(|_| vec![0u8; size].into_boxed_slice()).collect(),
            meta: vec![RecvMeta::default(); n],
            datagrams: Vec::with_capacity(n),
        }
    }

    pub(crate) fn bytes(&self, d: &Datagram) -> &[u8] {
        &self.bufs[d.buf][d.start..d.start + d.len]
    }

    pub(crate) fn clear(&mut self) {
        self.datagrams.clear();
    }
}

/// Consecutive datagrams to one destination, gathered so they can leave in one GSO send.
///
/// GSO cuts a buffer into equal segments, the last one may be shorter; so a datagram joins
/// the group only if it goes to the same place, is no longer than the first, and the group
/// has not already been closed by a shorter one.
#[derive(Debug, Default)]
pub(crate) struct SendBatch {
    buf: Vec<u8>,
    dest: Option<SocketAddr>,
    segment: usize,
    count: usize,
    closed: bool,
}

/// What one [`SendBatch::flush`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub calls: usize,
    pub datagrams: usize,
    pub bytes: usize,
    pub lost: usize,
}

/// What the caller must do before [`SendBatch::push`] can take a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    Joins,
    FlushFirst,
}

impl SendBatch {
    /// Whether `len` bytes to `to` can join the group (`max_segments` from the socket).
    pub(crate) fn fits(&self, to: SocketAddr, len: usize, max_segments: usize) -> Fit {
        match self.dest {
            None => Fit::Joins,
            Some(d)
                if d == to
                    && !self.closed
                    && len <= self.segment
                    && self.count < max_segments
                    && self.buf.len() + len <= MAX_GSO_BYTES =>
            {
                Fit::Joins
            }
            Some(_) => Fit::FlushFirst,
        }
    }

    /// Add a datagram; call [`fits`](Self::fits) first.
    pub(crate) fn push(&mut self, to: SocketAddr, contents: &[u8]) {
        if self.dest.is_none() {
            self.dest = Some(to);
            self.segment = contents.len();
        } else if contents.len() < self.segment {
            self.closed = true;
        }
        self.buf.extend_from_slice(contents);
        self.count += 1;
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Hand the group to the socket (one syscall, or one per datagram if the kernel refuses
    /// the GSO send) and start over. Returns what was sent: syscalls, datagrams, bytes; and
    /// how many datagrams were lost.
    pub(crate) fn flush(&mut self, socket: &MediaSocket) -> Flushed {
        let mut done = Flushed::default();
        let Some(dest) = self.dest.take() else {
            return done;
        };
        let segment = (self.count > 1).then_some(self.segment);
        done.calls = 1;
        match socket.send(dest, &self.buf, segment) {
            Ok(()) => {
                done.datagrams = self.count;
                done.bytes = self.buf.len();
            }
            // A full socket buffer: lost like on the wire, and retrying now would not help.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => done.lost = self.count,
            // The kernel or the NIC refused segmentation (quinn-udp has now turned it off for
            // the next groups): this group still goes, one datagram at a time.
            Err(_) if segment.is_some() => {
                for d in self.buf.chunks(self.segment) {
                    done.calls += 1;
                    match socket.send_one(dest, d) {
                        Ok(()) => {
                            done.datagrams += 1;
                            done.bytes += d.len();
                        }
                        Err(_) => done.lost += 1,
                    }
                }
            }
            Err(_) => done.lost = self.count,
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn equal_datagrams_to_one_place_share_a_send() {
        let mut b = SendBatch::default();
        for _ in 0..5 {
            assert_eq!(b.fits(addr(1), 1100, 64), Fit::Joins);
            b.push(addr(1), &[0u8; 1100]);
        }
        assert_eq!(b.count(), 5);
        // A shorter one may end the group...
        assert_eq!(b.fits(addr(1), 900, 64), Fit::Joins);
        b.push(addr(1), &[0u8; 900]);
        // ...and nothing may follow it, not even one of the group's size.
        assert_eq!(b.fits(addr(1), 1100, 64), Fit::FlushFirst);
        assert_eq!(b.fits(addr(1), 100, 64), Fit::FlushFirst);
    }

    #[test]
    fn a_longer_datagram_another_destination_or_a_full_group_starts_a_new_send() {
        let mut b = SendBatch::default();
        b.push(addr(1), &[0u8; 1000]);
        assert_eq!(b.fits(addr(1), 1001, 64), Fit::FlushFirst);
        assert_eq!(b.fits(addr(2), 1000, 64), Fit::FlushFirst);
        assert_eq!(b.fits(addr(1), 1000, 1), Fit::FlushFirst, "no GSO here");
        let mut big = SendBatch::default();
        for _ in 0..54 {
            big.push(addr(1), &[0u8; 1200]);
        }
        assert_eq!(big.fits(addr(1), 1200, 64), Fit::FlushFirst, "64 KB limit");
    }

    /// Real sockets: a GSO send of several datagrams arrives at a plain socket as separate
    /// datagrams with their own contents, and a receiving `MediaSocket` (GRO on) splits
    /// whatever the kernel coalesced back into the datagrams that were sent.
    #[tokio::test]
    async fn segments_arrive_as_separate_datagrams() {
        let tx = MediaSocket::new(UdpSocket::bind(addr(0)).await.unwrap()).unwrap();
        let plain = std::net::UdpSocket::bind(addr(0)).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let rx = MediaSocket::new(UdpSocket::bind(addr(0)).await.unwrap()).unwrap();
        let sizes = [1100usize, 1100, 1100, 700];
        let datagrams: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8 + 1; n])
            .collect();
        for to in [plain.local_addr().unwrap(), rx.io.local_addr().unwrap()] {
            let mut b = SendBatch::default();
            for d in &datagrams {
                if b.fits(to, d.len(), tx.max_segments()) == Fit::FlushFirst {
                    assert_eq!(b.flush(&tx).lost, 0);
                }
                b.push(to, d);
            }
            let done = b.flush(&tx);
            assert_eq!((done.lost, done.datagrams), (0, datagrams.len()));
        }
        let mut buf = [0u8; 2048];
        for d in &datagrams {
            let n = plain.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..]);
        }
        let mut batch = rx.recv_batch(BATCH_SIZE);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while got.len() < datagrams.len() && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.readable()).await;
            if rx.try_recv(&mut batch).is_ok() {
                got.extend(batch.datagrams.iter().map(|d| batch.bytes(d).to_vec()));
            }
        }
        let want: Vec<Vec<u8>> = datagrams.clone();
        assert_eq!(got, want);
    }
}
