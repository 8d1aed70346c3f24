//! The client's side of a WHIP/WHEP offer, sans-IO: an `Rtc` with the protocol's media and data
//! channels, and the offer to POST.
//!
//! The socket-owning `WebRtcClient`, the bench's load generator and the
//! switchboard's in-memory tests all start a peer connection the same way, here.
//!
//! Not here: HTTP (the caller POSTs the offer) or running the connection.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::{Candidate, Rtc};

use super::error::ClientError;

/// Publish (robot, WHIP) or subscribe (viewer, WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /whip/{room}`: sends media, receives control frames.
    Whip,
    /// `POST /whep/{room}`: receives media, may send control frames.
    Whep,
}

/// The peer connection every Bedside client uses: full ICE, RTP mode, VP8/H.264/Opus, one host
/// candidate at `local`.
pub fn client_rtc(local: SocketAddr, now: Instant) -> Result<Rtc, ClientError> {
    let cand = Candidate::host(local, "udp").map_err(|e| ClientError::Rtc(e.to_string()))?;
    client_rtc_with(cand, now)
}

/// [`client_rtc`] with this local candidate (an active ICE-TCP one, say).
pub fn client_rtc_with(candidate: Candidate, now: Instant) -> Result<Rtc, ClientError> {
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_vp8(true)
        .enable_h264(true)
        .enable_opus(true, false)
        .build(now);
    rtc.add_local_candidate(candidate);
    Ok(rtc)
}

/// The m-lines a two-way participant offers, in order (`docs/protocol.md`, "m-lines").
pub fn two_way_lines(
    endpoint: Endpoint,
    audio_slots: usize,
    video_slots: usize,
) -> Vec<(MediaKind, Direction)> {
    let mut v = match endpoint {
        // A robot: its camera and microphone, then what it shows and plays.
        Endpoint::Whip => vec![
            (MediaKind::Video, Direction::SendOnly),
            (MediaKind::Audio, Direction::SendOnly),
        ],
        // A doctor: the robot, then its own microphone and camera.
        Endpoint::Whep => vec![
            (MediaKind::Video, Direction::RecvOnly),
            (MediaKind::Audio, Direction::RecvOnly),
            (MediaKind::Audio, Direction::SendOnly),
            (MediaKind::Video, Direction::SendOnly),
        ],
    };
    v.extend(std::iter::repeat_n(
        (MediaKind::Audio, Direction::RecvOnly),
        audio_slots,
    ));
    v.extend(std::iter::repeat_n(
        (MediaKind::Video, Direction::RecvOnly),
        video_slots,
    ));
    v
}

/// An offer made on an existing `Rtc`, and what it negotiated.
pub struct Offer {
    /// What to POST.
    pub offer: SdpOffer,
    /// What `accept_answer` needs.
    pub pending: SdpPendingOffer,
    /// The video m-line.
    pub video_mid: Mid,
    /// The audio m-line.
    pub audio_mid: Mid,
    /// `control`: unordered, no retransmits (joystick frames), if channels were asked for.
    pub control: Option<ChannelId>,
    /// `events`: reliable, ordered JSON, if channels were asked for.
    pub events: Option<ChannelId>,
    /// Every m-line in order, with its kind and our direction.
    pub lines: Vec<(Mid, MediaKind, Direction)>,
}

/// Offer video and audio in `dir` and, with `channels`, the protocol's two data channels.
/// A session without channels never starts SCTP (a cheaper viewer).
pub fn make_offer(rtc: &mut Rtc, dir: Direction, channels: bool) -> Result<Offer, ClientError> {
    make_offer_with(
        rtc,
        &[(MediaKind::Video, dir), (MediaKind::Audio, dir)],
        channels,
    )
}

/// Offer these m-lines in order (the first two are reported as `video_mid`/`audio_mid` by
/// kind) and, with `channels`, the protocol's two data channels.
pub fn make_offer_with(
    rtc: &mut Rtc,
    lines: &[(MediaKind, Direction)],
    channels: bool,
) -> Result<Offer, ClientError> {
    let mut api = rtc.sdp_api();
    let mut mids = Vec::new();
    for (kind, dir) in lines {
        mids.push((api.add_media(*kind, *dir, None, None, None), *kind, *dir));
    }
    let first = |k: MediaKind| {
        mids.iter()
            .find(|(_, kind, _)| *kind == k)
            .map(|(m, _, _)| *m)
    };
    let (Some(video_mid), Some(audio_mid)) = (first(MediaKind::Video), first(MediaKind::Audio))
    else {
        return Err(ClientError::Rtc(
            "an offer needs an audio and a video line".into(),
        ));
    };
    let (control, events) = if channels {
        let control = api.add_channel_with_config(ChannelConfig {
            label: "control".into(),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        (Some(control), Some(api.add_channel("events".into())))
    } else {
        (None, None)
    };
    let (offer, pending) = api
        .apply()
        .ok_or_else(|| ClientError::Rtc("nothing to offer".into()))?;
    Ok(Offer {
        offer,
        pending,
        video_mid,
        audio_mid,
        control,
        events,
        lines: mids,
    })
}

/// A new peer connection and its offer, as a robot (WHIP) or a viewer (WHEP) makes it. Accept
/// the server's answer with `rtc.sdp_api().accept_answer(pending, answer)`.
pub struct Offering {
    /// The peer connection.
    pub rtc: Rtc,
    /// What to POST.
    pub offer: SdpOffer,
    /// What `accept_answer` needs.
    pub pending: SdpPendingOffer,
    /// The video m-line: sendonly for a robot (WHIP), recvonly for a viewer (WHEP).
    pub video_mid: Option<Mid>,
    /// The audio m-line, likewise.
    pub audio_mid: Option<Mid>,
    /// `control`: unordered, no retransmits (joystick frames).
    pub control: ChannelId,
    /// `events`: reliable, ordered JSON.
    pub events: ChannelId,
    /// Every m-line in order, with its kind and our direction.
    pub lines: Vec<(Mid, MediaKind, Direction)>,
}

impl Offering {
    /// A peer reachable at `local` offering what `endpoint` means, with both data channels.
    pub fn new(local: SocketAddr, endpoint: Endpoint, now: Instant) -> Result<Self, ClientError> {
        let dir = match endpoint {
            Endpoint::Whip => Direction::SendOnly,
            Endpoint::Whep => Direction::RecvOnly,
        };
        Self::with_lines(
            local,
            &[(MediaKind::Video, dir), (MediaKind::Audio, dir)],
            now,
        )
    }

    /// A peer reachable at `local` offering these m-lines, with both data channels.
    pub fn with_lines(
        local: SocketAddr,
        lines: &[(MediaKind, Direction)],
        now: Instant,
    ) -> Result<Self, ClientError> {
        let cand = Candidate::host(local, "udp").map_err(|e| ClientError::Rtc(e.to_string()))?;
        Self::with_candidate(cand, lines, now)
    }

    /// [`with_lines`](Self::with_lines) with this local candidate.
    pub fn with_candidate(
        candidate: Candidate,
        lines: &[(MediaKind, Direction)],
        now: Instant,
    ) -> Result<Self, ClientError> {
        let mut rtc = client_rtc_with(candidate, now)?;
        let o = make_offer_with(&mut rtc, lines, true)?;
        let (Some(control), Some(events)) = (o.control, o.events) else {
            return Err(ClientError::Rtc("data channels missing".into()));
        };
        Ok(Offering {
            rtc,
            offer: o.offer,
            pending: o.pending,
            video_mid: Some(o.video_mid),
            audio_mid: Some(o.audio_mid),
            control,
            events,
            lines: o.lines,
        })
    }
}
