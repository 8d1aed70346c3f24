//! One WebRTC session in the SFU: a str0m `Rtc` in RTP mode and what we learned about it.
//!
//! The switchboard owns many peers; each peer is fed datagrams and timeouts and drained of its
//! outputs. Transmits go straight to the shell's [`Io`](crate::io::Io); everything else comes
//! back as a [`PeerEvent`] for the switchboard to route through the room. [`Peer::accept`]
//! builds the `Rtc` from the client's offer, on the signalling task. Every call into str0m is wrapped in
//! `catch_unwind`: str0m panics only on its own bugs, and such a bug must cost one session,
//! never the worker and its other rooms.
//!
//! Not here: routing between sessions (the switchboard and the room) or sockets (the worker).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::Role;
use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::config::DtlsCert;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, KeyframeRequestKind, Mid};
use str0m::net::{TcpType, Transmit};
use str0m::rtp::{Extension, ExtensionMap, ExtensionValues, RtpPacket, RtpWrite, SeqNo, Vp8Patch};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use crate::error::SfuError;
use crate::forwarder::{DownTrack, Source, TrackForwarder};
use crate::ice_restart::IceCredentials;
use crate::keyframe::VideoCodec;
use crate::lines::{Line, Lines};
use crate::nack_history::NackHistory;
use crate::picture_ids::PictureIds;
use crate::room::TrackKind;
use crate::room_media::Layout;
use crate::SessionId;

/// At most this many events wait for a data channel to open; beyond it the oldest go.
const MAX_PENDING_EVENTS: usize = 256;

/// A cap on a viewer's retransmission history in packets, whatever its age (see
/// [`NackHistory`] for the age): only reached above ~4 Mbit/s with the longest history.
const NACK_HISTORY_PACKETS: usize = 512;
/// Resends may not exceed this share of what a viewer is sent (str0m's default): a viewer
/// that NACKs everything gets a keyframe's worth, not a copy of the stream.
const RESEND_RATIO_CAP: f32 = 0.15;

/// What a peer produced that the switchboard must route.
// Packets are the common case and move once; boxing them would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PeerEvent {
    Connected,
    Rtp {
        kind: TrackKind,
        keyframe_start: bool,
        packet: RtpPacket,
        codec: Option<PayloadParams>,
    },
    /// The remote's decoder wants a keyframe on its robot video line (`slot` None) or on a
    /// video slot.
    KeyframeRequest {
        slot: Option<u8>,
    },
    Control(Vec<u8>),
    Events(Vec<u8>),
    /// NACKs since the last report: `received` from the remote (it lost packets we sent),
    /// `sent` to the remote (we lost packets it sent).
    Nacks {
        received: u64,
        sent: u64,
    },
    /// A robot's link as str0m measured it (every stats interval): loss of what it sends us
    /// (from our receiver reports), round trip from RTCP when its stack reports one.
    Link {
        loss: Option<f32>,
        rtt: Option<Duration>,
    },
    Closed(&'static str),
}

/// A codec as both ends negotiated it, for mapping payload types between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecKey {
    codec: Codec,
    packetization_mode: u8,
}

impl CodecKey {
    pub fn of(p: &PayloadParams) -> Self {
        let spec = p.spec();
        CodecKey {
            codec: spec.codec,
            packetization_mode: spec.format.packetization_mode.unwrap_or(0),
        }
    }
}

/// What a new session is, for [`Peer::accept`].
pub struct PeerSetup<'a> {
    pub id: SessionId,
    pub room: Arc<str>,
    pub role: Role,
    /// The worker's advertised address: our ICE host candidate.
    pub candidate: SocketAddr,
    /// The node's passive ICE-TCP candidate, if it listens for ICE-TCP.
    pub tcp_candidate: Option<SocketAddr>,
    pub cert: &'a DtlsCert,
    pub now: Instant,
}

/// A peer built from an offer, with what the signalling answer and the session table need.
pub struct Accepted {
    pub peer: Peer,
    /// Our ICE username fragment: a STUN request naming it finds this session.
    pub ufrag: String,
    /// Our ICE password: the remote signs its binding requests with it.
    pub pass: String,
    pub answer: String,
}

/// One slot line's sending state.
struct SlotOut {
    mid: Mid,
    forwarder: TrackForwarder,
    pictures: PictureIds,
}

pub struct Peer {
    id: SessionId,
    room: Arc<str>,
    role: Role,
    rtc: Rtc,
    next_timeout: Instant,
    created: Instant,
    connected: bool,
    lines: Lines,
    /// Per slot line: its own continuous numbering and VP8 picture ids.
    slots: Vec<SlotOut>,
    control: Option<ChannelId>,
    events: Option<ChannelId>,
    pending_events: VecDeque<Arc<str>>,
    down_video: DownTrack,
    down_audio: DownTrack,
    /// Video send streams whose resend history has been sized ([`NackHistory`]).
    rtx_sized: Vec<Mid>,
    nack_history: NackHistory,
    /// Payload type on each of our m-lines for each source codec seen so far (a handful).
    pt_cache: Vec<((Mid, CodecKey), Option<str0m::media::Pt>)>,
    /// Cumulative NACK counts str0m last reported, per (mid, egress?), to turn them into deltas.
    nack_totals: Vec<((Mid, bool), u64)>,
    /// The offer as accepted (observers' made receive-only), offered again on an ICE restart.
    offer: String,
    closed: Option<&'static str>,
    /// `Closed` has been handed to the switchboard (a panic inside `write_rtp` has no event queue
    /// at hand; the next input reports it).
    close_reported: bool,
}

impl Peer {
    /// Build a session's `Rtc` (ICE-lite, RTP mode, our codecs and certificate) and answer the
    /// offer. str0m's SDP handling is wrapped like every other call: a str0m bug on a crafted
    /// offer is a 400, not a crashed task.
    ///
    /// The offer's m-lines decide what the session receives and sends (`lines.rs`): an
    /// observer's sending lines are made `inactive` before str0m sees them, and an offer that
    /// would leave nothing to do (a robot sending nothing, a viewer receiving and sending
    /// nothing) is refused with the reason.
    pub fn accept(setup: PeerSetup<'_>, offer_text: &str) -> Result<Accepted, SfuError> {
        let offer_text = if setup.role == Role::Observer {
            crate::lines::receive_only(offer_text)
        } else {
            offer_text.to_string()
        };
        let offer =
            SdpOffer::from_sdp_string(&offer_text).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let creds = IceCreds::new();
        let mut builder = Rtc::builder();
        if setup.role != Role::Robot {
            // Viewers get one stream and no bandwidth estimation (there is no lower layer to
            // switch them to), so no transport-wide-cc or abs-send-time: per viewer that saves
            // str0m's 1000-packet TWCC send register (~88 KiB), an extension write per packet,
            // and the feedback packets a browser would send back ten times a second.
            builder = builder.set_extension_map(viewer_extensions());
        }
        let mut rtc = builder
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(setup.cert.clone())
            .set_local_ice_credentials(creds.clone())
            .clear_codecs()
            .enable_vp8(true)
            .enable_h264(true)
            .enable_opus(true, false)
            // Stats carry the NACK counts for /metrics; every 2 s is cheap.
            .set_stats_interval(Some(Duration::from_secs(2)))
            // Viewers' retransmission history is set per stream by age (`Peer::write_rtp`);
            // this caps it for streams that never get there.
            .set_send_buffer_video(512)
            .build(setup.now);
        let candidate = Candidate::host(setup.candidate, "udp")
            .map_err(|e| SfuError::Internal(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        if let Some(tcp) = setup.tcp_candidate {
            // Passive: the client connects to us (RFC 6544). Its priority is below the UDP
            // candidate's, so UDP stays preferred wherever it works.
            let candidate = Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| SfuError::Internal(format!("TCP candidate: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
            .map_err(|_| SfuError::BadSdp("offer could not be processed".into()))?
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let answer = answer.to_sdp_string();
        let mut peer = Peer::new(setup.id, setup.room, setup.role, rtc, setup.now);
        peer.offer = offer_text;
        peer.lines = Lines::from_answer(&answer, setup.role);
        let layout = peer.layout();
        if peer.role == Role::Robot && !(layout.sends_audio || layout.sends_video) {
            return Err(SfuError::BadSdp(
                "a robot's offer must send video or audio (a sendonly m-line)".into(),
            ));
        }
        if peer.role != Role::Robot && layout == Layout::default() {
            return Err(SfuError::BadSdp(
                "the offer has nothing to receive: offer recvonly video and audio (WHEP)".into(),
            ));
        }
        Ok(Accepted {
            peer,
            ufrag: creds.ufrag,
            pass: creds.pass,
            answer,
        })
    }

    /// Restart ICE with the remote's new credentials (a `PATCH` after a network change): the
    /// stored offer is offered again with them, and str0m answers with new local credentials.
    /// Returns them and our candidates; the session, its DTLS association and everything the
    /// room knows of it stay.
    pub fn restart_ice(
        &mut self,
        remote: &IceCredentials,
    ) -> Result<(IceCredentials, Vec<String>), SfuError> {
        let text = crate::ice_restart::respliced(&self.offer, remote);
        let offer =
            SdpOffer::from_sdp_string(&text).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let rtc = &mut self.rtc;
        let answer = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
            .map_err(|_| SfuError::BadSdp("restart could not be processed".into()))?
            .map_err(|e| SfuError::BadSdp(e.to_string()))?
            .to_sdp_string();
        self.offer = text;
        let local = crate::ice_restart::credentials(&answer)
            .map_err(SfuError::Internal)?
            .ok_or_else(|| SfuError::Internal("the answer has no ICE credentials".into()))?;
        Ok((local, crate::ice_restart::candidates(&answer)))
    }

    fn new(id: SessionId, room: Arc<str>, role: Role, rtc: Rtc, now: Instant) -> Self {
        Peer {
            id,
            room,
            role,
            rtc,
            next_timeout: now,
            created: now,
            connected: false,
            lines: Lines::default(),
            slots: Vec::new(),
            control: None,
            events: None,
            pending_events: VecDeque::new(),
            down_video: DownTrack::default(),
            down_audio: DownTrack::default(),
            rtx_sized: Vec::new(),
            nack_history: NackHistory::default(),
            pt_cache: Vec::new(),
            nack_totals: Vec::new(),
            offer: String::new(),
            closed: None,
            close_reported: false,
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The room this session belongs to.
    pub fn room(&self) -> &Arc<str> {
        &self.room
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// When str0m next wants a timeout.
    pub fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// When the session was admitted.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// ICE and DTLS completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Feed one input and drain outputs. Transmits go to `send`; events to `out`.
    pub fn handle_input(
        &mut self,
        input: Input,
        send: &mut dyn FnMut(&Transmit),
        out: &mut Vec<PeerEvent>,
    ) {
        if self.closed.is_some() {
            return self.report_closed(out);
        }
        let rtc = &mut self.rtc;
        let r = catch_unwind(AssertUnwindSafe(|| rtc.handle_input(input)));
        match r {
            Ok(Ok(())) => {}
            // str0m refused the input (garbage datagram for this session): not fatal.
            Ok(Err(e)) => tracing::debug!(session = %self.id, error = %e, "input refused"),
            Err(_) => return self.fail("panic", out),
        }
        self.drain(send, out);
    }

    /// Poll str0m until it has nothing more than a timeout.
    pub fn drain(&mut self, send: &mut dyn FnMut(&Transmit), out: &mut Vec<PeerEvent>) {
        loop {
            if self.closed.is_some() {
                return self.report_closed(out);
            }
            let rtc = &mut self.rtc;
            let polled = match catch_unwind(AssertUnwindSafe(|| rtc.poll_output())) {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    tracing::debug!(session = %self.id, error = %e, "poll failed");
                    return self.fail("rtc_error", out);
                }
                Err(_) => return self.fail("panic", out),
            };
            match polled {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    if !self.rtc.is_alive() {
                        self.fail("dead", out);
                    }
                    return;
                }
                Output::Transmit(t) => send(&t),
                Output::Event(e) => self.on_event(e, out),
            }
        }
    }

    fn on_event(&mut self, e: Event, out: &mut Vec<PeerEvent>) {
        match e {
            Event::Connected => {
                self.connected = true;
                out.push(PeerEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.fail("ice_disconnected", out);
            }
            // The m-lines were read from our answer (`Lines::from_answer`).
            Event::MediaAdded(_) => {}
            Event::ChannelOpen(id, label) => match label.as_str() {
                "control" => self.control = Some(id),
                "events" => {
                    self.events = Some(id);
                    while let Some(json) = self.pending_events.pop_front() {
                        self.write_channel(id, false, json.as_bytes());
                    }
                }
                _ => {}
            },
            Event::ChannelData(d) => {
                if Some(d.id) == self.control {
                    out.push(PeerEvent::Control(d.data));
                } else if Some(d.id) == self.events {
                    out.push(PeerEvent::Events(d.data));
                }
            }
            Event::ChannelClose(id) => {
                if Some(id) == self.control {
                    self.control = None;
                }
                if Some(id) == self.events {
                    self.events = None;
                }
            }
            Event::RtpPacket(packet) => {
                let Some(mid) = self.mid_of(&packet) else {
                    return;
                };
                // Only the participant's own lines carry media in; anything else is dropped.
                let Line::Own(kind) = self.lines.line(mid) else {
                    return;
                };
                let codec = self
                    .rtc
                    .codec_config()
                    .iter()
                    .find(|p| p.pt() == packet.header.payload_type)
                    .cloned();
                let keyframe_start = match (kind, &codec) {
                    (TrackKind::Video, Some(p)) => crate::keyframe::is_keyframe_start(
                        video_codec(p.spec().codec),
                        &packet.payload,
                    ),
                    _ => false,
                };
                out.push(PeerEvent::Rtp {
                    kind,
                    keyframe_start,
                    packet,
                    codec,
                });
            }
            Event::KeyframeRequest(req) => match self.lines.line(req.mid) {
                Line::Robot(TrackKind::Video) => {
                    out.push(PeerEvent::KeyframeRequest { slot: None })
                }
                Line::Slot(TrackKind::Video, n) => {
                    out.push(PeerEvent::KeyframeRequest { slot: Some(n) })
                }
                _ => {}
            },
            Event::MediaEgressStats(st) => {
                if let Some(rtt) = st.rtt {
                    self.resize_nack_history(st.mid, rtt, out);
                    if self.role == Role::Robot {
                        out.push(PeerEvent::Link {
                            loss: None,
                            rtt: Some(rtt),
                        });
                    }
                }
                let received = self.nack_delta(st.mid, true, st.nacks);
                if received > 0 {
                    out.push(PeerEvent::Nacks { received, sent: 0 });
                }
            }
            Event::MediaIngressStats(st) => {
                // The camera's stream: the one a doctor's picture depends on.
                let video = matches!(self.lines.line(st.mid), Line::Own(TrackKind::Video));
                if self.role == Role::Robot && video && (st.loss.is_some() || st.rtt.is_some()) {
                    out.push(PeerEvent::Link {
                        loss: st.loss,
                        rtt: st.rtt,
                    });
                }
                let sent = self.nack_delta(st.mid, false, st.nacks);
                if sent > 0 {
                    out.push(PeerEvent::Nacks { received: 0, sent });
                }
            }
            _ => {}
        }
    }

    fn nack_delta(&mut self, mid: Mid, egress: bool, total: u64) -> u64 {
        let key = (mid, egress);
        match self.nack_totals.iter_mut().find(|(k, _)| *k == key) {
            Some((_, last)) => {
                let d = total.saturating_sub(*last);
                *last = total;
                d
            }
            None => {
                self.nack_totals.push((key, total));
                total
            }
        }
    }

    fn mid_of(&mut self, packet: &RtpPacket) -> Option<Mid> {
        if let Some(mid) = packet.header.ext_vals.mid {
            return Some(mid);
        }
        self.rtc
            .direct_api()
            .stream_rx(&packet.header.ssrc)
            .map(|s| s.mid())
    }

    fn fail(&mut self, reason: &'static str, out: &mut Vec<PeerEvent>) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        self.report_closed(out);
    }

    fn report_closed(&mut self, out: &mut Vec<PeerEvent>) {
        if let (Some(reason), false) = (self.closed, self.close_reported) {
            self.close_reported = true;
            out.push(PeerEvent::Closed(reason));
        }
    }

    /// What this session's m-lines let it receive and send.
    pub fn layout(&self) -> Layout {
        self.lines.layout()
    }

    /// Forward one packet of the robot's `kind` track, numbered `seq`/`ts` room-wide, on this
    /// session's robot line.
    pub fn write_rtp(
        &mut self,
        kind: TrackKind,
        source: &RtpPacket,
        codec: &PayloadParams,
        seq: u64,
        ts: u32,
        now: Instant,
    ) -> bool {
        if !self.connected || self.closed.is_some() {
            return false;
        }
        let Some(mid) = self.lines.mid(Line::Robot(kind)) else {
            return false;
        };
        let down = match kind {
            TrackKind::Video => &mut self.down_video,
            TrackKind::Audio => &mut self.down_audio,
        };
        let Some(seq) = down.seq(seq) else {
            return false;
        };
        self.write_on(mid, kind, source, codec, seq, ts, None, now)
    }

    /// Forward a doctor's packet (`from`) on this session's slot `n` of `kind`: the slot
    /// numbers it on from whatever it carried before, so its source can change underneath.
    #[allow(clippy::too_many_arguments)]
    pub fn write_slot(
        &mut self,
        kind: TrackKind,
        n: u8,
        from: SessionId,
        source: &RtpPacket,
        codec: &PayloadParams,
        now: Instant,
    ) -> bool {
        if !self.connected || self.closed.is_some() {
            return false;
        }
        let Some(mid) = self.lines.mid(Line::Slot(kind, n)) else {
            return false;
        };
        let i = match self.slots.iter().position(|s| s.mid == mid) {
            Some(i) => i,
            None => {
                let clock = if kind == TrackKind::Video {
                    90_000
                } else {
                    48_000
                };
                self.slots.push(SlotOut {
                    mid,
                    forwarder: TrackForwarder::new(clock),
                    pictures: PictureIds::default(),
                });
                self.slots.len() - 1
            }
        };
        let src = Source {
            session: from.0,
            ssrc: *source.header.ssrc,
        };
        let slot = &mut self.slots[i];
        let Some(m) = slot
            .forwarder
            .map(src, *source.seq_no, source.header.timestamp, now)
        else {
            return false;
        };
        let patch = (kind == TrackKind::Video && codec.spec().codec == Codec::Vp8)
            .then(|| slot.pictures.patch(src, &source.payload))
            .flatten();
        self.write_on(mid, kind, source, codec, m.seq, m.ts, patch, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_on(
        &mut self,
        mid: Mid,
        kind: TrackKind,
        source: &RtpPacket,
        codec: &PayloadParams,
        seq: u64,
        ts: u32,
        patch: Option<Vp8Patch>,
        now: Instant,
    ) -> bool {
        let key = (mid, CodecKey::of(codec));
        let pt = match self.pt_cache.iter().find(|(k, _)| *k == key) {
            Some((_, pt)) => *pt,
            None => {
                let pt = self.find_pt(mid, key.1);
                self.pt_cache.push((key, pt));
                pt
            }
        };
        let Some(pt) = pt else { return false };
        let ext = ExtensionValues {
            audio_level: source.header.ext_vals.audio_level,
            voice_activity: source.header.ext_vals.voice_activity,
            video_orientation: source.header.ext_vals.video_orientation,
            ..Default::default()
        };
        let rtc = &mut self.rtc;
        let payload = source.payload.clone();
        let marker = source.header.marker;
        let size_rtx = kind == TrackKind::Video && !self.rtx_sized.contains(&mid);
        let history = self.nack_history.current();
        let wrote = catch_unwind(AssertUnwindSafe(|| {
            let mut api = rtc.direct_api();
            match api.stream_tx_by_mid(mid, None) {
                Some(tx) => {
                    if size_rtx {
                        // Before the first packet: this replaces (empties) the history.
                        tx.set_rtx_cache(NACK_HISTORY_PACKETS, history, Some(RESEND_RATIO_CAP));
                    }
                    let mut w = RtpWrite::new(pt, SeqNo::from(seq), ts, now, payload)
                        .marker(marker)
                        .ext_vals(ext)
                        .nackable(kind == TrackKind::Video);
                    if let Some(p) = patch {
                        w = w.vp8_patch(p);
                    }
                    tx.write_rtp(w);
                    true
                }
                None => false,
            }
        }));
        match wrote {
            Ok(w) => {
                if w && size_rtx {
                    self.rtx_sized.push(mid);
                }
                w
            }
            Err(_) => {
                self.closed = Some("panic");
                false
            }
        }
    }

    /// Keep as much video history as this viewer's round trip needs (see `nack_history.rs`).
    fn resize_nack_history(&mut self, mid: Mid, rtt: Duration, out: &mut Vec<PeerEvent>) {
        if !self.rtx_sized.contains(&mid) || self.lines.kind(mid) != Some(TrackKind::Video) {
            return;
        }
        let Some(history) = self.nack_history.on_rtt(rtt) else {
            return;
        };
        tracing::debug!(session = self.id.0, ?rtt, ?history, "resizing NACK history");
        let rtc = &mut self.rtc;
        let resized = catch_unwind(AssertUnwindSafe(|| {
            if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(NACK_HISTORY_PACKETS, history, Some(RESEND_RATIO_CAP));
            }
        }));
        if resized.is_err() {
            self.fail("panic", out);
        }
    }

    fn find_pt(&self, mid: Mid, key: CodecKey) -> Option<str0m::media::Pt> {
        let media = self.rtc.media(mid)?;
        if !matches!(media.direction(), Direction::SendOnly | Direction::SendRecv) {
            return None;
        }
        let remote = media.remote_pts();
        self.rtc
            .codec_config()
            .iter()
            .find(|p| remote.contains(&p.pt()) && CodecKey::of(p) == key)
            .map(|p| p.pt())
    }

    /// Ask this (publishing) peer for a keyframe on its own video track.
    pub fn request_keyframe(&mut self) -> bool {
        let Some(mid) = self.lines.mid(Line::Own(TrackKind::Video)) else {
            return false;
        };
        let rtc = &mut self.rtc;
        catch_unwind(AssertUnwindSafe(|| {
            let mut api = rtc.direct_api();
            match api.stream_rx_by_mid(mid, None) {
                Some(rx) => {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                    true
                }
                None => false,
            }
        }))
        .unwrap_or(false)
    }

    /// Send a control frame (robot side of the `control` channel).
    pub fn send_control(&mut self, frame: &[u8]) -> bool {
        match self.control {
            Some(id) => self.write_channel(id, true, frame),
            None => false,
        }
    }

    /// Send an `events` message, or hold it until the channel opens.
    pub fn send_event(&mut self, json: Arc<str>) {
        match self.events {
            Some(id) => {
                self.write_channel(id, false, json.as_bytes());
            }
            None => {
                if self.pending_events.len() >= MAX_PENDING_EVENTS {
                    self.pending_events.pop_front();
                }
                self.pending_events.push_back(json);
            }
        }
    }

    fn write_channel(&mut self, id: ChannelId, binary: bool, data: &[u8]) -> bool {
        let rtc = &mut self.rtc;
        catch_unwind(AssertUnwindSafe(|| match rtc.channel(id) {
            Some(mut ch) => ch.write(binary, data).unwrap_or(false),
            None => false,
        }))
        .unwrap_or(false)
    }

    /// Say goodbye (DTLS close) before the session is dropped.
    pub fn disconnect(&mut self) {
        let rtc = &mut self.rtc;
        let _ = catch_unwind(AssertUnwindSafe(|| rtc.disconnect()));
    }
}

/// Header extensions a viewer session negotiates: what the forwarded packets carry.
fn viewer_extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(4, Extension::RtpMid);
    exts.set(13, Extension::VideoOrientation);
    exts
}

fn video_codec(c: Codec) -> VideoCodec {
    match c {
        Codec::Vp8 => VideoCodec::Vp8,
        Codec::H264 => VideoCodec::H264,
        _ => VideoCodec::Other,
    }
}
