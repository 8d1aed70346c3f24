//! What kind of packet a datagram is, from its first bytes (RFC 7983), and which kinds are urgent.
//!
//! One UDP port carries STUN, DTLS (which carries the data channels: joystick frames, e-stops,
//! events) and SRTP/SRTCP. The switchboard handles the urgent kinds of a receive batch first and
//! the media after, because one robot packet fans out to hundreds of viewers and a joystick
//! frame or an e-stop read in the same batch must not wait for that. Urgency is a property of
//! the packet, not of who sent it: a doctor's microphone is media, a robot's receiver report is
//! not.
//!
//! Not here: parsing beyond the first two bytes (str0m does that), or trusting them: a wrong
//! guess only changes the order of handling, never whether a packet is handled.

/// The kind of one datagram, as RFC 7983 tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// First byte 0..=3: ICE connectivity checks.
    Stun,
    /// First byte 20..=63: the DTLS handshake and the data channels (SCTP inside DTLS).
    Dtls,
    /// First byte 128..=191 and a packet type of 192..=223 (RFC 5761): reports, NACKs, PLIs.
    Rtcp,
    /// First byte 128..=191 otherwise: media.
    Rtp,
    /// Anything else (garbage, TURN channel data): never media, so handled early and cheaply.
    Other,
}

impl PacketKind {
    /// Classify a datagram by its first two bytes.
    pub fn of(data: &[u8]) -> PacketKind {
        match data.first() {
            Some(0..=3) => PacketKind::Stun,
            Some(20..=63) => PacketKind::Dtls,
            Some(128..=191) => match data.get(1) {
                Some(192..=223) => PacketKind::Rtcp,
                Some(_) => PacketKind::Rtp,
                None => PacketKind::Other,
            },
            _ => PacketKind::Other,
        }
    }

    /// Media is the expensive, postponable part of a batch; everything else goes first.
    pub fn is_media(self) -> bool {
        self == PacketKind::Rtp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_the_kinds_apart() {
        assert_eq!(PacketKind::of(&[0x00, 0x01, 0, 0]), PacketKind::Stun);
        assert_eq!(PacketKind::of(&[23, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(PacketKind::of(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        // RTCP receiver report (201) and PLI (206) vs RTP with marker set, PT 96 (0xe0).
        assert_eq!(PacketKind::of(&[0x81, 201, 0, 7]), PacketKind::Rtcp);
        assert_eq!(PacketKind::of(&[0x81, 206, 0, 2]), PacketKind::Rtcp);
        assert_eq!(PacketKind::of(&[0x90, 0xe0, 0, 1]), PacketKind::Rtp);
        assert_eq!(PacketKind::of(&[0x80, 111, 0, 1]), PacketKind::Rtp);
        assert_eq!(PacketKind::of(&[]), PacketKind::Other);
        assert_eq!(PacketKind::of(&[0x80]), PacketKind::Other);
        assert_eq!(PacketKind::of(&[0xff, 0xff]), PacketKind::Other);
        assert!(PacketKind::Rtp.is_media());
        assert!(!PacketKind::Rtcp.is_media() && !PacketKind::Dtls.is_media());
    }
}
