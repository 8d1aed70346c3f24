//! A WHIP/WHEP client on str0m: one peer connection over its own UDP socket.
//!
//! Used by the robot agent (`bedside robot`), by the integration tests (robots and viewers on
//! loopback) and by the bench's load generator. It speaks to the SFU exactly as a browser or
//! any WHIP/WHEP client would: an SDP offer over HTTP with a bearer token, then ICE, DTLS, SRTP
//! and SCTP over UDP. It offers the two data channels of the protocol, `control` (unordered, no
//! retransmits) and `events` (reliable, ordered).
//!
//! Not here: what to publish ([`media`] has the fixture player and packetizer) or how to react
//! (the caller's loop does that with [`WebRtcClient::next_event`]).

mod error;
pub mod media;
mod offer;

pub use error::ClientError;

pub use offer::{
    client_rtc, client_rtc_with, make_offer, make_offer_with, two_way_lines, Endpoint, Offer,
    Offering,
};

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKind {
    /// UDP to the server's host candidate (the normal case).
    #[default]
    Udp,
    /// ICE-TCP to the server's passive TCP candidate (RFC 6544), for networks that block UDP.
    Tcp,
}

/// The client's socket.
enum Transport {
    Udp(UdpSocket),
    Tcp {
        /// The server's passive TCP candidate we are connected to.
        server: SocketAddr,
        /// Frames read from the connection (a reader task).
        frames_in: tokio::sync::mpsc::Receiver<Vec<u8>>,
        /// Frames to write to it (a writer task frames them).
        frames_out: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    },
}

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::ChannelId;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::TcpType;
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;

/// What happened on the connection.
// Packets are the common case and move once; boxing them would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ClientEvent {
    /// ICE and DTLS are up.
    Connected,
    /// A data channel opened (its label); see [`WebRtcClient::wait_ready`] for both.
    ChannelOpen(String),
    /// A media packet, as str0m's RTP mode hands it over.
    Rtp(RtpPacket),
    /// The SFU asked for a keyframe (we publish).
    KeyframeRequest,
    /// Bytes on the `control` channel.
    Control(Vec<u8>),
    /// Text on the `events` channel.
    Event(String),
    /// ICE gave up on the SFU.
    Disconnected,
}

/// One WHIP or WHEP session, driven by the caller's calls to [`next_event`](Self::next_event).
pub struct WebRtcClient {
    rtc: Rtc,
    transport: Transport,
    /// Our local candidate's address (for ICE-TCP, the active candidate's nominal address).
    local: SocketAddr,
    /// The absolute `Location` URL: the secret that ends the session on `DELETE`.
    pub session_url: String,
    /// The SFU's internal id for this session, as others see it in `events`.
    pub session_id: String,
    http: reqwest::Client,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    lines: Vec<(Mid, MediaKind, Direction)>,
    /// The server's last answer, for splicing its new ICE credentials in on a restart.
    answer_text: String,
    control: ChannelId,
    events: ChannelId,
    open: Vec<ChannelId>,
    buf: Vec<u8>,
    pending: std::collections::VecDeque<ClientEvent>,
    loss: LossSim,
}

/// Deterministic packet loss for tests and the bench: drop every Nth RTP datagram (never
/// STUN, DTLS or RTCP, so the connection itself and its NACKs survive).
#[derive(Debug, Default, Clone, Copy)]
pub struct LossSim {
    /// Drop every Nth RTP datagram received (0: none).
    pub drop_every_in: u32,
    /// Drop every Nth RTP datagram sent (0: none).
    pub drop_every_out: u32,
    seen_in: u32,
    seen_out: u32,
}

impl LossSim {
    fn drop(every: u32, seen: &mut u32, datagram: &[u8]) -> bool {
        if every == 0 || !is_rtp(datagram) {
            return false;
        }
        *seen += 1;
        seen.is_multiple_of(every)
    }
}

/// RTP, not RTCP (RFC 5761: RTCP packet types 192-223 sit where RTP's marker+PT would).
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1])
}

impl WebRtcClient {
    /// Offer, POST to `{base}/{whip|whep}/{room}`, apply the answer. ICE/DTLS then run in
    /// [`next_event`](Self::next_event); wait for [`ClientEvent::Connected`].
    pub async fn connect(
        base: &str,
        endpoint: Endpoint,
        room: &str,
        token: &str,
        local_ip: IpAddr,
    ) -> Result<Self, ClientError> {
        let dir = match endpoint {
            Endpoint::Whip => Direction::SendOnly,
            Endpoint::Whep => Direction::RecvOnly,
        };
        let lines = [(MediaKind::Video, dir), (MediaKind::Audio, dir)];
        Self::connect_with(base, endpoint, room, token, local_ip, &lines).await
    }

    /// [`connect`](Self::connect) offering these m-lines (see `two_way_lines`).
    pub async fn connect_with(
        base: &str,
        endpoint: Endpoint,
        room: &str,
        token: &str,
        local_ip: IpAddr,
        lines: &[(MediaKind, Direction)],
    ) -> Result<Self, ClientError> {
        Self::connect_via(
            base,
            endpoint,
            room,
            token,
            local_ip,
            lines,
            TransportKind::Udp,
        )
        .await
    }

    /// [`connect_with`](Self::connect_with) over UDP or ICE-TCP.
    pub async fn connect_via(
        base: &str,
        endpoint: Endpoint,
        room: &str,
        token: &str,
        local_ip: IpAddr,
        lines: &[(MediaKind, Direction)],
        kind: TransportKind,
    ) -> Result<Self, ClientError> {
        let (udp, local, candidate) = match kind {
            TransportKind::Udp => {
                let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
                let local = socket.local_addr()?;
                let cand =
                    Candidate::host(local, "udp").map_err(|e| ClientError::Rtc(e.to_string()))?;
                (Some(socket), local, cand)
            }
            TransportKind::Tcp => {
                // An active candidate's port is nominal (RFC 6544: 9, "discard").
                let local = SocketAddr::new(local_ip, 9);
                let cand = Candidate::builder()
                    .tcp()
                    .host(local)
                    .tcptype(TcpType::Active)
                    .build()
                    .map_err(|e| ClientError::Rtc(e.to_string()))?;
                (None, local, cand)
            }
        };
        let Offering {
            rtc,
            offer,
            pending,
            video_mid,
            audio_mid,
            control,
            events,
            lines,
        } = Offering::with_candidate(candidate, lines, Instant::now())?;
        let mut rtc = rtc;

        let http = reqwest::Client::new();
        let path = match endpoint {
            Endpoint::Whip => "whip",
            Endpoint::Whep => "whep",
        };
        let resp = http
            .post(format!("{base}/{path}/{room}"))
            .header("content-type", "application/sdp")
            .bearer_auth(token)
            .body(offer.to_sdp_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| format!("{base}{l}"))
            .unwrap_or_default();
        let session_id = resp
            .headers()
            .get("x-bedside-session")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.text().await?;
        if status != 201 {
            return Err(ClientError::Refused { status, body });
        }
        let answer_text = body.clone();
        let answer =
            SdpAnswer::from_sdp_string(&body).map_err(|e| ClientError::Rtc(e.to_string()))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| ClientError::Rtc(e.to_string()))?;
        let transport = match udp {
            Some(socket) => Transport::Udp(socket),
            None => tcp_transport(&answer_text).await?,
        };
        Ok(WebRtcClient {
            rtc,
            transport,
            local,
            session_url: location,
            session_id,
            http,
            video_mid,
            audio_mid,
            lines,
            answer_text,
            control,
            events,
            open: Vec::new(),
            buf: vec![0; 2048],
            pending: Default::default(),
            loss: LossSim::default(),
        })
    }

    /// Drive I/O until something happens or `deadline` passes (then `None`).
    pub async fn next_event(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<ClientEvent>, ClientError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let timeout = self.drain()?;
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wake = timeout.min(deadline);
            match &mut self.transport {
                Transport::Udp(socket) => tokio::select! {
                    r = socket.recv_from(&mut self.buf) => {
                        let (n, src) = r?;
                        let now = Instant::now();
                        let loss = &mut self.loss;
                        if LossSim::drop(loss.drop_every_in, &mut loss.seen_in, &self.buf[..n]) {
                            continue;
                        }
                        if let Ok(recv) =
                            Receive::new(Protocol::Udp, src, self.local, &self.buf[..n])
                        {
                            // A refused datagram is not our problem to surface.
                            let _ = self.rtc.handle_input(Input::Receive(now, recv));
                        }
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {
                        let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                    }
                },
                Transport::Tcp {
                    server, frames_in, ..
                } => tokio::select! {
                    f = frames_in.recv() => {
                        let Some(f) = f else {
                            return Err(ClientError::Io(std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "the ICE-TCP connection closed",
                            )));
                        };
                        if let Ok(recv) = Receive::new(Protocol::Tcp, *server, self.local, &f) {
                            let _ = self.rtc.handle_input(Input::Receive(Instant::now(), recv));
                        }
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {
                        let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                    }
                },
            }
        }
    }

    /// Poll str0m until it only has a timeout left; queue its events.
    fn drain(&mut self) -> Result<Instant, ClientError> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| ClientError::Rtc(e.to_string()))?
            {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let loss = &mut self.loss;
                    if LossSim::drop(loss.drop_every_out, &mut loss.seen_out, &t.contents) {
                        continue;
                    }
                    match &self.transport {
                        Transport::Udp(socket) => {
                            let _ = socket.try_send_to(&t.contents, t.destination);
                        }
                        Transport::Tcp { frames_out, .. } if t.proto == Protocol::Tcp => {
                            let _ = frames_out.send(t.contents.to_vec());
                        }
                        Transport::Tcp { .. } => {}
                    }
                }
                Output::Event(e) => {
                    let ev = match e {
                        Event::Connected => Some(ClientEvent::Connected),
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            Some(ClientEvent::Disconnected)
                        }
                        Event::ChannelOpen(id, label) => {
                            self.open.push(id);
                            Some(ClientEvent::ChannelOpen(label))
                        }
                        Event::ChannelData(d) if d.id == self.control => {
                            Some(ClientEvent::Control(d.data))
                        }
                        Event::ChannelData(d) if d.id == self.events => Some(ClientEvent::Event(
                            String::from_utf8_lossy(&d.data).into_owned(),
                        )),
                        Event::RtpPacket(p) => Some(ClientEvent::Rtp(p)),
                        Event::KeyframeRequest(_) => Some(ClientEvent::KeyframeRequest),
                        _ => None,
                    };
                    if let Some(ev) = ev {
                        self.pending.push_back(ev);
                    }
                }
            }
        }
    }

    /// Lose every `drop_every_in`-th received and `drop_every_out`-th sent RTP packet (0 = none).
    pub fn simulate_loss(&mut self, drop_every_in: u32, drop_every_out: u32) {
        self.loss = LossSim {
            drop_every_in,
            drop_every_out,
            ..LossSim::default()
        };
    }

    /// Wait until ICE+DTLS are up and both data channels are open. Other events that arrive
    /// meanwhile stay queued for [`next_event`](Self::next_event), in order.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + within;
        let mut connected = false;
        let mut held = Vec::new();
        while !(connected && self.channels_open()) {
            match self.next_event(deadline).await? {
                Some(ClientEvent::Connected) => connected = true,
                Some(ClientEvent::ChannelOpen(_)) => {}
                Some(ev) => held.push(ev),
                None => return Err(ClientError::Timeout("connect")),
            }
        }
        for ev in held.into_iter().rev() {
            self.pending.push_front(ev);
        }
        Ok(())
    }

    /// Both `control` and `events` are open: before that, sends are lost.
    pub fn channels_open(&self) -> bool {
        self.open.contains(&self.control) && self.open.contains(&self.events)
    }

    /// The payload type we negotiated for `codec` on our video or audio track.
    pub fn pt_for(&self, codec: Codec) -> Option<PayloadParams> {
        self.rtc
            .codec_config()
            .iter()
            .find(|p| p.spec().codec == codec)
            .cloned()
    }

    /// The codecs negotiated with the server (payload types and parameters).
    pub fn codecs(&self) -> Vec<PayloadParams> {
        self.rtc.codec_config().iter().cloned().collect()
    }

    /// Move to a new local address and restart ICE there (a network change, a roam): new
    /// credentials go to the server by `PATCH` (RFC 9725), its new ones come back, and the
    /// session, its DTLS association and everything the room knows of it stay.
    pub async fn restart_ice(&mut self, local_ip: IpAddr) -> Result<(), ClientError> {
        if !matches!(self.transport, Transport::Udp(_)) {
            return Err(ClientError::Rtc(
                "ICE restarts are for UDP; an ICE-TCP client reconnects".into(),
            ));
        }
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
        let local = socket.local_addr()?;
        // Signal from the new address on a new connection: a pooled one may belong to the old
        // network (an address that is gone), where a request would hang until TCP gives up.
        let http = reqwest::Client::builder()
            .local_address(local_ip)
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut api = self.rtc.sdp_api();
        let creds = api.ice_restart(false);
        let (_offer, pending) = api
            .apply()
            .ok_or_else(|| ClientError::Rtc("nothing to restart".into()))?;
        let frag = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            creds.ufrag, creds.pass
        );
        let resp = http
            .patch(&self.session_url)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(frag)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.text().await?;
        if status != 200 {
            return Err(ClientError::Refused { status, body });
        }
        let server = crate::ice_restart::credentials(&body)
            .map_err(ClientError::Rtc)?
            .ok_or_else(|| ClientError::Rtc("the restart answer has no credentials".into()))?;
        let text = crate::ice_restart::respliced(&self.answer_text, &server);
        let answer =
            SdpAnswer::from_sdp_string(&text).map_err(|e| ClientError::Rtc(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| ClientError::Rtc(e.to_string()))?;
        // After the answer: applying it is when str0m restarts ICE and drops the old local
        // candidates (and any added before).
        let cand = Candidate::host(local, "udp").map_err(|e| ClientError::Rtc(e.to_string()))?;
        self.rtc.add_local_candidate(cand);
        self.answer_text = text;
        self.transport = Transport::Udp(socket);
        self.local = local;
        self.http = http;
        Ok(())
    }

    /// The server's ICE credentials now (from its answer, or its last restart).
    pub fn server_ice(&self) -> Option<crate::ice_restart::IceCredentials> {
        crate::ice_restart::credentials(&self.answer_text)
            .ok()
            .flatten()
    }

    /// The server's SDP answer as it was applied (after an ICE restart, with the restart's
    /// credentials spliced in): what a test reads to see what the server agreed to.
    pub fn answer_sdp(&self) -> &str {
        &self.answer_text
    }

    /// Our m-lines in order: mid, kind, our direction.
    pub fn lines(&self) -> &[(Mid, MediaKind, Direction)] {
        &self.lines
    }

    /// The m-line a received packet came in on.
    pub fn mid_of(&mut self, packet: &RtpPacket) -> Option<Mid> {
        if let Some(mid) = packet.header.ext_vals.mid {
            return Some(mid);
        }
        self.rtc
            .direct_api()
            .stream_rx(&packet.header.ssrc)
            .map(|s| s.mid())
    }

    /// Write one RTP packet on the m-line `mid` (one of our sending lines).
    pub fn write_rtp_on(&mut self, mid: Mid, write: RtpWrite) -> bool {
        let mut api = self.rtc.direct_api();
        match api.stream_tx_by_mid(mid, None) {
            Some(tx) => {
                tx.write_rtp(write);
                true
            }
            None => false,
        }
    }

    /// Write one RTP packet on our video (or audio) track.
    pub fn write_rtp(&mut self, video: bool, write: RtpWrite) -> bool {
        let Some(mid) = (if video {
            self.video_mid
        } else {
            self.audio_mid
        }) else {
            return false;
        };
        let mut api = self.rtc.direct_api();
        match api.stream_tx_by_mid(mid, None) {
            Some(tx) => {
                tx.write_rtp(write);
                true
            }
            None => false,
        }
    }

    /// Convenience for publishers: one packet with the common fields.
    #[allow(clippy::too_many_arguments)]
    pub fn send_packet(
        &mut self,
        video: bool,
        pt: str0m::media::Pt,
        seq: u64,
        ts: u32,
        marker: bool,
        payload: Vec<u8>,
    ) -> bool {
        let w = RtpWrite::new(pt, SeqNo::from(seq), ts, Instant::now(), payload)
            .marker(marker)
            .nackable(video);
        self.write_rtp(video, w)
    }

    /// Ask the publisher (via the SFU) for a keyframe: what a viewer's decoder does.
    pub fn request_keyframe(&mut self) -> bool {
        let Some(mid) = self.video_mid else {
            return false;
        };
        let mut api = self.rtc.direct_api();
        match api.stream_rx_by_mid(mid, None) {
            Some(rx) => {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                true
            }
            None => false,
        }
    }

    /// One message on `control` (unordered, no retransmits). False if the channel is not open.
    pub fn send_control(&mut self, frame: &[u8]) -> bool {
        match self.rtc.channel(self.control) {
            Some(mut ch) => ch.write(true, frame).unwrap_or(false),
            None => false,
        }
    }

    /// One JSON text on `events`. False if the channel is not open.
    pub fn send_event(&mut self, json: &str) -> bool {
        match self.rtc.channel(self.events) {
            Some(mut ch) => ch.write(false, json.as_bytes()).unwrap_or(false),
            None => false,
        }
    }

    /// Flush what was written without waiting for input.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.drain().map(|_| ())
    }

    /// Send raw bytes from this peer's own socket to the server's candidate (tests of how the
    /// server handles garbage from a known, connected address).
    pub fn send_raw(&self, bytes: &[u8], to: SocketAddr) -> bool {
        match &self.transport {
            Transport::Udp(socket) => socket.try_send_to(bytes, to).is_ok(),
            Transport::Tcp { .. } => false,
        }
    }

    /// Leave politely: `DELETE` the session URL.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.rtc.disconnect();
        let _ = self.drain();
        if !self.session_url.is_empty() {
            self.http.delete(&self.session_url).send().await?;
        }
        Ok(())
    }

    /// Vanish without a goodbye (a crashed browser, a pulled cable).
    pub fn vanish(self) {}
}

/// Connect to the server's passive ICE-TCP candidate named in its answer, with a reader and a
/// writer task that speak RFC 4571 framing.
async fn tcp_transport(answer: &str) -> Result<Transport, ClientError> {
    let server = answer
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| {
            l.starts_with("a=candidate:") && l.contains(" tcp ") && l.contains("tcptype passive")
        })
        .find_map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let ip: IpAddr = parts.get(4)?.parse().ok()?;
            let port: u16 = parts.get(5)?.parse().ok()?;
            Some(SocketAddr::new(ip, port))
        })
        .ok_or_else(|| ClientError::Rtc("the server offers no ICE-TCP candidate".into()))?;
    let stream = tokio::net::TcpStream::connect(server).await?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (in_tx, frames_in) = tokio::sync::mpsc::channel(1024);
    let (frames_out, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Ok(Some(f)) = crate::framing::read_frame(&mut rd).await {
            if in_tx.send(f).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Some(f) = out_rx.recv().await {
            let Some(framed) = crate::framing::encode(&f) else {
                continue;
            };
            if wr.write_all(&framed).await.is_err() {
                return;
            }
        }
    });
    Ok(Transport::Tcp {
        server,
        frames_in,
        frames_out,
    })
}
