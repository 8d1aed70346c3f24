//! What each m-line of a session is for: the robot's media, a slot, or the participant's own.
//!
//! Browsers and WHIP/WHEP clients describe a session by its m-lines in order; the mapping to
//! roles is Bedside's protocol (`docs/protocol.md`, "m-lines"):
//!
//! - **Viewers** (`/whep`: doctors and observers): the first receive-only video and audio carry
//!   the robot; further receive-only m-lines are slots (doctors' audio, other doctors' video);
//!   the first sending audio and video are the participant's own microphone and camera.
//! - **Robots** (`/whip`): the first sending video and audio are the robot's camera and
//!   microphone; receive-only video lines are presenter slots (the driving doctor's camera),
//!   receive-only audio lines carry the doctors' voices.
//!
//! So a plain WHEP player (recvonly audio + video) gets the robot and nothing else, and a plain
//! WHIP encoder (sendonly audio + video) publishes and receives nothing. An observer's sending
//! m-lines never get here as sending: signalling answers them `inactive` ([`receive_only`]).
//!
//! Not here: what goes on a slot (the room) or writing RTP (`peer.rs`).

use bedside_proto::Role;
use str0m::media::{Direction, MediaKind, Mid};

use crate::room_media::{Layout, TrackKind};

/// What one m-line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// We send the robot's track of this kind.
    Robot(TrackKind),
    /// We send slot `n` of this kind.
    Slot(TrackKind, u8),
    /// We receive the participant's own track of this kind.
    Own(TrackKind),
    /// Nothing (an extra sending line, an inactive one).
    Unused,
}

/// A session's m-lines in order.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    lines: Vec<(Mid, Line)>,
}

fn kind_of(k: MediaKind) -> TrackKind {
    match k {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
}

impl Lines {
    /// The m-lines of our answer, in order, with our directions (`a=sendonly` in our answer:
    /// we send). A rejected m-line (port 0) or one without `a=mid` carries nothing. Read from
    /// the answer because str0m reports m-lines as events only once DTLS is up, and what a
    /// session may do must be known when its offer is answered.
    pub fn from_answer(sdp: &str, role: Role) -> Lines {
        let mut lines = Lines::default();
        let mut current: Option<(MediaKind, bool, Option<Mid>, Direction)> = None;
        let finish = |l: &mut Lines, c: Option<(MediaKind, bool, Option<Mid>, Direction)>| {
            if let Some((kind, rejected, Some(mid), dir)) = c {
                let dir = if rejected { Direction::Inactive } else { dir };
                l.add(mid, kind, dir, role);
            }
        };
        for line in sdp.split('\n').map(|l| l.trim_end_matches('\r')) {
            if let Some(m) = line.strip_prefix("m=") {
                finish(&mut lines, current.take());
                let mut parts = m.split(' ');
                let kind = match parts.next() {
                    Some("audio") => MediaKind::Audio,
                    Some("video") => MediaKind::Video,
                    // application (data channels) and anything else: not media.
                    _ => continue,
                };
                let rejected = parts.next() == Some("0");
                current = Some((kind, rejected, None, Direction::SendRecv));
            } else if let Some(c) = current.as_mut() {
                match line {
                    "a=sendonly" => c.3 = Direction::SendOnly,
                    "a=recvonly" => c.3 = Direction::RecvOnly,
                    "a=sendrecv" => c.3 = Direction::SendRecv,
                    "a=inactive" => c.3 = Direction::Inactive,
                    _ => {
                        if let Some(mid) = line.strip_prefix("a=mid:") {
                            c.2 = Some(Mid::from(mid));
                        }
                    }
                }
            }
        }
        finish(&mut lines, current.take());
        lines
    }

    /// An m-line was negotiated; `direction` is ours (str0m's view).
    pub fn add(&mut self, mid: Mid, kind: MediaKind, direction: Direction, role: Role) {
        let kind = kind_of(kind);
        let we_send = matches!(direction, Direction::SendOnly);
        let they_send = matches!(direction, Direction::RecvOnly | Direction::SendRecv);
        let line = if they_send {
            if self.has(Line::Own(kind)) {
                Line::Unused
            } else {
                Line::Own(kind)
            }
        } else if we_send {
            if role != Role::Robot && !self.has(Line::Robot(kind)) {
                Line::Robot(kind)
            } else {
                let n = self
                    .lines
                    .iter()
                    .filter(|(_, l)| matches!(l, Line::Slot(k, _) if *k == kind))
                    .count();
                Line::Slot(kind, n.min(u8::MAX as usize) as u8)
            }
        } else {
            Line::Unused
        };
        self.lines.push((mid, line));
    }

    fn has(&self, line: Line) -> bool {
        self.lines.iter().any(|(_, l)| *l == line)
    }

    /// What `mid` carries.
    pub fn line(&self, mid: Mid) -> Line {
        self.lines
            .iter()
            .find(|(m, _)| *m == mid)
            .map_or(Line::Unused, |(_, l)| *l)
    }

    /// The m-line carrying `line`.
    pub fn mid(&self, line: Line) -> Option<Mid> {
        self.lines.iter().find(|(_, l)| *l == line).map(|(m, _)| *m)
    }

    /// The kind of `mid`, whatever it carries.
    pub fn kind(&self, mid: Mid) -> Option<TrackKind> {
        match self.line(mid) {
            Line::Robot(k) | Line::Slot(k, _) | Line::Own(k) => Some(k),
            Line::Unused => None,
        }
    }

    /// What the room needs to know.
    pub fn layout(&self) -> Layout {
        let count = |kind| {
            self.lines
                .iter()
                .filter(|(_, l)| matches!(l, Line::Slot(k, _) if *k == kind))
                .count()
                .min(u8::MAX as usize) as u8
        };
        Layout {
            robot_video: self.has(Line::Robot(TrackKind::Video)),
            robot_audio: self.has(Line::Robot(TrackKind::Audio)),
            audio_slots: count(TrackKind::Audio),
            video_slots: count(TrackKind::Video),
            sends_audio: self.has(Line::Own(TrackKind::Audio)),
            sends_video: self.has(Line::Own(TrackKind::Video)),
        }
    }
}

/// An offer rewritten so that it can only receive: every sending m-line becomes `inactive`
/// (`sendonly`) or `recvonly` (`sendrecv`). Applied to observers' offers before they are
/// parsed: a student's microphone and camera are refused in the answer, not merely ignored.
/// Lines are rewritten one by one; nothing else of the offer changes.
pub fn receive_only(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix("\r\n") {
            Some(b) => (b, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            },
        };
        let body = match body {
            "a=sendonly" => "a=inactive",
            "a=sendrecv" => "a=recvonly",
            other => other,
        };
        out.push_str(body);
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mid(s: &str) -> Mid {
        Mid::from(s)
    }

    #[test]
    fn a_doctors_offer_maps_to_robot_slots_and_own_media() {
        let mut l = Lines::default();
        let (a, v) = (MediaKind::Audio, MediaKind::Video);
        l.add(mid("0"), v, Direction::SendOnly, Role::Doctor);
        l.add(mid("1"), a, Direction::SendOnly, Role::Doctor);
        l.add(mid("2"), a, Direction::SendRecv, Role::Doctor);
        l.add(mid("3"), v, Direction::RecvOnly, Role::Doctor);
        l.add(mid("4"), a, Direction::SendOnly, Role::Doctor);
        l.add(mid("5"), a, Direction::SendOnly, Role::Doctor);
        l.add(mid("6"), v, Direction::SendOnly, Role::Doctor);
        l.add(mid("7"), a, Direction::RecvOnly, Role::Doctor);
        assert_eq!(l.line(mid("0")), Line::Robot(TrackKind::Video));
        assert_eq!(l.line(mid("1")), Line::Robot(TrackKind::Audio));
        assert_eq!(l.line(mid("2")), Line::Own(TrackKind::Audio));
        assert_eq!(l.line(mid("3")), Line::Own(TrackKind::Video));
        assert_eq!(l.line(mid("5")), Line::Slot(TrackKind::Audio, 1));
        assert_eq!(l.line(mid("6")), Line::Slot(TrackKind::Video, 0));
        assert_eq!(l.line(mid("7")), Line::Unused, "one microphone per session");
        assert_eq!(
            l.layout(),
            Layout {
                robot_video: true,
                robot_audio: true,
                audio_slots: 2,
                video_slots: 1,
                sends_audio: true,
                sends_video: true,
            }
        );
    }

    #[test]
    fn a_plain_whep_player_gets_the_robot_and_a_plain_whip_encoder_nothing() {
        let mut whep = Lines::default();
        whep.add(
            mid("0"),
            MediaKind::Audio,
            Direction::SendOnly,
            Role::Observer,
        );
        whep.add(
            mid("1"),
            MediaKind::Video,
            Direction::SendOnly,
            Role::Observer,
        );
        let l = whep.layout();
        assert!(l.robot_audio && l.robot_video);
        assert_eq!((l.audio_slots, l.video_slots, l.sends_audio), (0, 0, false));

        let mut whip = Lines::default();
        whip.add(mid("0"), MediaKind::Video, Direction::RecvOnly, Role::Robot);
        whip.add(mid("1"), MediaKind::Audio, Direction::RecvOnly, Role::Robot);
        let l = whip.layout();
        assert!(l.sends_audio && l.sends_video);
        assert_eq!((l.audio_slots, l.video_slots, l.robot_video), (0, 0, false));
        // A robot that also receives: its receive-only lines are slots.
        whip.add(mid("2"), MediaKind::Video, Direction::SendOnly, Role::Robot);
        whip.add(mid("3"), MediaKind::Audio, Direction::SendOnly, Role::Robot);
        assert_eq!(whip.line(mid("2")), Line::Slot(TrackKind::Video, 0));
        assert_eq!(whip.layout().audio_slots, 1);
    }

    #[test]
    fn lines_are_read_from_our_answer() {
        let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=recvonly\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=recvonly\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:5\r\na=sendonly\r\n";
        let l = Lines::from_answer(answer, Role::Doctor);
        assert_eq!(l.line(mid("0")), Line::Robot(TrackKind::Video));
        assert_eq!(l.line(mid("1")), Line::Robot(TrackKind::Audio));
        assert_eq!(l.line(mid("2")), Line::Own(TrackKind::Audio));
        assert_eq!(l.line(mid("3")), Line::Unused, "rejected (port 0)");
        assert_eq!(
            l.line(mid("4")),
            Line::Unused,
            "data channels are not media"
        );
        assert_eq!(l.line(mid("5")), Line::Slot(TrackKind::Audio, 0));
        assert!(!l.layout().sends_video);
    }

    #[test]
    fn an_observers_offer_is_made_receive_only_line_by_line() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=x-sendonly-not\r\nm=video 9 x 96\r\na=recvonly\r\n";
        let r = receive_only(offer);
        assert_eq!(
            r,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\na=x-sendonly-not\r\nm=video 9 x 96\r\na=recvonly\r\n"
        );
        assert_eq!(receive_only("a=sendonly\n"), "a=inactive\n");
    }
}
