//! One str0m peer connection over its own UDP socket (or an ICE-TCP connection), tuned for a
//! load generator.
//!
//! The same peer serves every role (robot, controller, viewer) against both servers (Bedside
//! over WHIP/WHEP, Janus over its HTTP API); the role's state implements [`Handler`]. Compared
//! with `bedside_sfu::client::WebRtcClient` it reads datagrams in batches with kernel receive
//! timestamps, hands each str0m event the receive time of the datagram that caused it, keeps one
//! timer per peer instead of a new one per wake-up, and can accept an offer (Janus offers to its
//! subscribers) as well as make one.
//!
//! Over ICE-TCP (a viewer whose network blocks UDP, `--ice-tcp`) the peer offers an active TCP
//! candidate and, once answered, connects to the server's passive one (RFC 6544, RFC 4571
//! framing). A TCP read has no kernel receive timestamp per packet, so such a packet's time is
//! the moment the generator read it: a TCP figure includes the generator's own wake-up.
//!
//! Not here: signalling (see `bedside.rs`, `janus.rs`), or what a role does with its events.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::watch;

use crate::udp::{self, Datagram, RecvBatch};

/// What a role does with its peer's traffic.
pub trait Handler {
    /// A datagram arrived (before str0m sees it). Return false to keep it from str0m.
    fn datagram(&mut self, _d: &Datagram<'_>) -> bool {
        true
    }
    /// Something str0m said; `rx_ns` is the kernel receive time of the datagram that caused it
    /// (or the current time for events that came from a timer).
    fn event(&mut self, rtc: &mut Rtc, ev: Event, rx_ns: u64);
    /// A datagram is about to be sent.
    fn transmit(&mut self, _data: &[u8]) {}
}

/// Why [`Peer::step`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    Stop,
    Io,
    Timer,
}

pub struct Peer {
    pub rtc: Rtc,
    pub sock: tokio::net::UdpSocket,
    pub local: SocketAddr,
    batch: Box<RecvBatch>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    sleep_at: Instant,
    events: Vec<Event>,
    pub video_mid: Option<Mid>,
    pub audio_mid: Option<Mid>,
    pub control: Option<ChannelId>,
    pub events_channel: Option<ChannelId>,
    /// Every m-line offered, in order, with its kind and our direction.
    pub lines: Vec<(Mid, MediaKind, Direction)>,
    /// ICE-TCP instead of UDP: `None` until [`connect_tcp`](Self::connect_tcp) (UDP peers never).
    tcp: Option<TcpLink>,
    /// This peer offered an ICE-TCP candidate.
    pub ice_tcp: bool,
}

/// An ICE-TCP connection to the server's passive candidate, RFC 4571 framed both ways.
struct TcpLink {
    stream: tokio::net::TcpStream,
    server: SocketAddr,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

/// Receive buffer per peer socket: 1 MiB holds ~900 full-size packets (3 s of a 2.5 Mbps stream).
pub const RCVBUF: usize = 1 << 20;

impl Peer {
    pub fn new(ip: IpAddr) -> anyhow::Result<Peer> {
        let sock = udp::bind(ip, RCVBUF)?;
        let local = sock.local_addr()?;
        let now = Instant::now();
        let rtc = bedside_sfu::client::client_rtc(local, now)?;
        Ok(Peer {
            rtc,
            sock,
            local,
            batch: Box::default(),
            sleep: Box::pin(tokio::time::sleep_until(now.into())),
            sleep_at: now,
            events: Vec::new(),
            video_mid: None,
            audio_mid: None,
            control: None,
            events_channel: None,
            lines: Vec::new(),
            tcp: None,
            ice_tcp: false,
        })
    }

    /// A peer that reaches the server over ICE-TCP: an active TCP candidate (its port nominal,
    /// RFC 6544), connected by [`connect_tcp`](Self::connect_tcp) once the answer is in.
    pub fn new_tcp(ip: IpAddr) -> anyhow::Result<Peer> {
        let mut p = Peer::new(ip)?;
        let local = SocketAddr::new(ip, 9);
        let cand = Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()?;
        p.rtc = bedside_sfu::client::client_rtc_with(cand, Instant::now())?;
        p.local = local;
        p.ice_tcp = true;
        Ok(p)
    }

    /// Connect to the passive ICE-TCP candidate in the server's `answer`.
    pub async fn connect_tcp(&mut self, answer: &str) -> anyhow::Result<()> {
        let server = answer
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| {
                l.starts_with("a=candidate:")
                    && l.contains(" tcp ")
                    && l.contains("tcptype passive")
            })
            .find_map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                Some(SocketAddr::new(
                    parts.get(4)?.parse().ok()?,
                    parts.get(5)?.parse().ok()?,
                ))
            })
            .ok_or_else(|| anyhow::anyhow!("the server offers no ICE-TCP candidate"))?;
        let stream = tokio::net::TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        self.tcp = Some(TcpLink {
            stream,
            server,
            inbuf: Vec::with_capacity(1 << 16),
            outbuf: Vec::new(),
        });
        Ok(())
    }

    /// An offer with video and audio in `dir` and, if asked, Bedside's two data channels.
    pub fn offer(
        &mut self,
        dir: Direction,
        channels: bool,
    ) -> anyhow::Result<(SdpOffer, SdpPendingOffer)> {
        self.offer_lines(
            &[(MediaKind::Video, dir), (MediaKind::Audio, dir)],
            channels,
        )
    }

    /// An offer of these m-lines in order (a two-way participant's layout, `docs/protocol.md`);
    /// `video_mid`/`audio_mid` are the first line of each kind.
    pub fn offer_lines(
        &mut self,
        lines: &[(MediaKind, Direction)],
        channels: bool,
    ) -> anyhow::Result<(SdpOffer, SdpPendingOffer)> {
        let o = bedside_sfu::client::make_offer_with(&mut self.rtc, lines, channels)?;
        self.video_mid = Some(o.video_mid);
        self.audio_mid = Some(o.audio_mid);
        self.control = o.control;
        self.events_channel = o.events;
        self.lines = o.lines;
        Ok((o.offer, o.pending))
    }

    /// The first line of `kind` we send on (our own microphone or camera in a two-way layout).
    pub fn send_mid(&self, kind: MediaKind) -> Option<Mid> {
        self.lines
            .iter()
            .find(|(_, k, d)| *k == kind && *d == Direction::SendOnly)
            .map(|(m, _, _)| *m)
    }

    pub fn accept_answer(&mut self, pending: SdpPendingOffer, sdp: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Accept a remote offer (Janus offering to a subscriber); returns our answer.
    pub fn accept_offer(&mut self, sdp: &str) -> anyhow::Result<String> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        Ok(answer.to_sdp_string())
    }

    /// The payload type negotiated for a codec.
    pub fn pt_for(&self, codec: Codec) -> Option<u8> {
        self.rtc
            .codec_config()
            .iter()
            .find(|p| p.spec().codec == codec)
            .map(|p| *p.pt())
    }

    /// Poll str0m until only a timeout is left: send what it transmits, pass on what it says.
    pub fn drain(&mut self, h: &mut impl Handler, rx_ns: u64) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => break self.flush_events(h, rx_ns, t),
                Ok(Output::Transmit(t)) => {
                    h.transmit(&t.contents);
                    self.send(&t.contents, t.destination, t.proto);
                }
                Ok(Output::Event(e)) => self.events.push(e),
                Err(_) => {
                    break self.flush_events(h, rx_ns, Instant::now() + Duration::from_secs(1))
                }
            }
        }
    }

    fn send(&mut self, data: &[u8], to: SocketAddr, proto: Protocol) {
        match (&mut self.tcp, proto) {
            (Some(link), Protocol::Tcp) => {
                if let Ok(len) = u16::try_from(data.len()) {
                    link.outbuf.extend_from_slice(&len.to_be_bytes());
                    link.outbuf.extend_from_slice(data);
                    link.flush();
                }
            }
            // UDP on loopback either takes it now or it is lost like on the wire.
            (None, _) if !self.ice_tcp => {
                let _ = self.sock.try_send_to(data, to);
            }
            _ => {}
        }
    }

    /// Read what the ICE-TCP connection has, one RFC 4571 frame at a time into str0m.
    fn read_tcp(&mut self, h: &mut impl Handler) -> std::io::Result<usize> {
        let Some(link) = self.tcp.as_mut() else {
            return Ok(0);
        };
        let mut frames = 0;
        loop {
            let at = link.inbuf.len();
            link.inbuf.resize(at + (1 << 16), 0);
            match link.stream.try_read(&mut link.inbuf[at..]) {
                Ok(0) => {
                    link.inbuf.truncate(at);
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
                Ok(n) => link.inbuf.truncate(at + n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    link.inbuf.truncate(at);
                    break;
                }
                Err(e) => {
                    link.inbuf.truncate(at);
                    return Err(e);
                }
            }
        }
        let rx_ns = udp::now_ns();
        let (server, local) = (link.server, self.local);
        let buf = std::mem::take(&mut link.inbuf);
        let mut off = 0;
        while buf.len() - off >= 2 {
            let len = u16::from_be_bytes([buf[off], buf[off + 1]]) as usize;
            if buf.len() - off - 2 < len {
                break;
            }
            let data = &buf[off + 2..off + 2 + len];
            off += 2 + len;
            frames += 1;
            let d = Datagram {
                data,
                src: server,
                rx_ns,
            };
            if !h.datagram(&d) {
                continue;
            }
            if let Ok(r) = Receive::new(Protocol::Tcp, server, local, data) {
                let _ = self.rtc.handle_input(Input::Receive(Instant::now(), r));
            }
            loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(_)) | Err(_) => break,
                    Ok(Output::Transmit(t)) => {
                        h.transmit(&t.contents);
                        self.send(&t.contents, t.destination, t.proto);
                    }
                    Ok(Output::Event(e)) => h.event(&mut self.rtc, e, rx_ns),
                }
            }
        }
        if let Some(link) = self.tcp.as_mut() {
            link.inbuf = buf;
            link.inbuf.drain(..off);
        }
        Ok(frames)
    }

    fn flush_events(&mut self, h: &mut impl Handler, rx_ns: u64, t: Instant) -> Instant {
        for e in self.events.drain(..) {
            h.event(&mut self.rtc, e, rx_ns);
        }
        t
    }

    /// Read everything queued on the socket, feeding str0m one datagram at a time so each event
    /// is attributed to the datagram that caused it.
    pub fn read_all(&mut self, h: &mut impl Handler) -> std::io::Result<usize> {
        let mut total = 0;
        loop {
            let n = match self.batch.recv(&self.sock) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            };
            total += n;
            for i in 0..n {
                let Some(d) = self.batch.get(i) else { continue };
                if !h.datagram(&d) {
                    continue;
                }
                let rx_ns = d.rx_ns;
                let now = Instant::now();
                if let Ok(r) = Receive::new(Protocol::Udp, d.src, self.local, d.data) {
                    // A datagram str0m refuses is not ours to surface.
                    let _ = self.rtc.handle_input(Input::Receive(now, r));
                }
                loop {
                    match self.rtc.poll_output() {
                        Ok(Output::Timeout(_)) | Err(_) => break,
                        Ok(Output::Transmit(t)) => {
                            h.transmit(&t.contents);
                            self.send(&t.contents, t.destination, t.proto);
                        }
                        Ok(Output::Event(e)) => h.event(&mut self.rtc, e, rx_ns),
                    }
                }
            }
            if n < udp::BATCH {
                return Ok(total);
            }
        }
    }

    /// Drain, then wait for a datagram, str0m's next timeout, `until`, or `stop`.
    pub async fn step(
        &mut self,
        h: &mut impl Handler,
        until: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Woke {
        let t = self.drain(h, udp::now_ns()).min(until);
        if t != self.sleep_at {
            self.sleep.as_mut().reset(t.into());
            self.sleep_at = t;
        }
        if *stop.borrow() {
            return Woke::Stop;
        }
        let tcp_readable = async {
            match &self.tcp {
                Some(link) => link.stream.readable().await,
                None => std::future::pending().await,
            }
        };
        let tcp_writable = async {
            match &self.tcp {
                Some(link) if !link.outbuf.is_empty() => link.stream.writable().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed() => Woke::Stop,
            r = self.sock.readable() => {
                if r.is_ok() {
                    let _ = self.read_all(h);
                }
                Woke::Io
            }
            r = tcp_readable => {
                if r.is_err() || self.read_tcp(h).is_err() {
                    // The server closed the connection: the session is over.
                    self.tcp = None;
                    return Woke::Stop;
                }
                Woke::Io
            }
            _ = tcp_writable => {
                if let Some(link) = self.tcp.as_mut() {
                    link.flush();
                }
                Woke::Io
            }
            _ = &mut self.sleep => {
                let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                Woke::Timer
            }
        }
    }
}

impl TcpLink {
    /// Write what the socket takes now; keep the rest for when it is writable.
    fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.stream.try_write(&self.outbuf) {
                Ok(0) => return,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(_) => return,
            }
        }
    }
}
