//! VP8 picture ids that stay continuous on a slot whose source changes.
//!
//! A video slot (the presenter on the robot's screen) switches from one doctor's camera to
//! another's without renegotiation. The receiver's depacketizer follows the VP8 payload
//! descriptor's PictureID (and TL0PICIDX) to tell frames apart and find losses: a jump backwards
//! at the switch would look like a flood of old frames. So each slot keeps its own PictureID
//! sequence: at a switch the new source's ids are offset to continue after the last one sent.
//! The payload is never copied here: str0m applies the patch while it serialises the packet.
//!
//! Not here: sequence numbers and timestamps ([`crate::forwarder`]) or H.264 (which carries no
//! picture id).

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

use crate::forwarder::Source;

/// One slot's PictureID and TL0PICIDX continuity.
#[derive(Debug, Default, Clone)]
pub struct PictureIds {
    source: Option<Source>,
    pid_offset: u16,
    last_pid: Option<u16>,
    tl0_offset: u8,
    last_tl0: Option<u8>,
}

impl PictureIds {
    /// The patch that renumbers this VP8 payload from `source`, or `None` when it carries
    /// nothing to renumber (no PictureID, or not VP8-shaped: it then goes as it is).
    pub fn patch(&mut self, source: Source, payload: &[u8]) -> Option<Vp8Patch> {
        let d = Vp8Descriptor::parse(payload).ok()?;
        let pid = d.picture_id()?;
        if self.source != Some(source) {
            self.source = Some(source);
            self.pid_offset = self
                .last_pid
                .map_or(0, |last| last.wrapping_add(1).wrapping_sub(pid));
            self.tl0_offset = match (self.last_tl0, d.tl0_pic_idx()) {
                (Some(last), Some(t)) => last.wrapping_add(1).wrapping_sub(t),
                _ => 0,
            };
        }
        // 15-bit ids wrap at 2^15, 7-bit ones at 2^7; the descriptor keeps its width.
        let wide = pid.wrapping_add(self.pid_offset) & 0x7fff;
        let mut b = d.patch().picture_id(wide);
        let tl0 = d.tl0_pic_idx().map(|t| t.wrapping_add(self.tl0_offset));
        if let Some(t) = tl0 {
            b = b.tl0_pic_idx(t);
        }
        let (patch, out) = match b.build() {
            Ok(p) => (p, wide),
            Err(_) => {
                let narrow = wide & 0x7f;
                let mut b = d.patch().picture_id(narrow);
                if let Some(t) = tl0 {
                    b = b.tl0_pic_idx(t);
                }
                (b.build().ok()?, narrow)
            }
        };
        self.last_pid = Some(out);
        if tl0.is_some() {
            self.last_tl0 = tl0;
        }
        Some(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload descriptor with X=1, I=1, M=1 (15-bit PictureID), then one payload byte.
    fn vp8(pid: u16, start: bool) -> Vec<u8> {
        let s = if start { 0x10 } else { 0x00 };
        vec![
            0x80 | s,
            0x80,
            0x80 | (pid >> 8) as u8,
            (pid & 0xff) as u8,
            0x00,
        ]
    }

    #[test]
    fn ids_continue_across_a_source_switch() {
        let a = Source {
            session: 1,
            ssrc: 10,
        };
        let b = Source {
            session: 2,
            ssrc: 20,
        };
        let mut p = PictureIds::default();
        for pid in 500..510 {
            assert!(p.patch(a, &vp8(pid, true)).is_some());
        }
        assert_eq!(p.last_pid, Some(509), "the first source keeps its own ids");
        // The next source starts anywhere; the slot goes on at 510.
        p.patch(b, &vp8(20_000, true)).unwrap();
        assert_eq!(p.last_pid, Some(510));
        p.patch(b, &vp8(20_001, false)).unwrap();
        assert_eq!(p.last_pid, Some(511));
        // Wrapping at 2^15.
        let mut q = PictureIds::default();
        q.patch(a, &vp8(0x7fff, true)).unwrap();
        q.patch(b, &vp8(3, true)).unwrap();
        assert_eq!(q.last_pid, Some(0));
    }

    #[test]
    fn payloads_without_picture_ids_go_as_they_are() {
        let mut p = PictureIds::default();
        let a = Source {
            session: 1,
            ssrc: 10,
        };
        assert!(p.patch(a, &[0x10, 0x00]).is_none(), "no X bit");
        assert!(p.patch(a, &[]).is_none());
        assert!(p.patch(a, &[0xff]).is_none());
    }
}
