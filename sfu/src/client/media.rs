//! Real encoded media for publishers without a camera: fixture files, looped and packetized.
//!
//! The robot agent's test pattern, the integration tests' robots and the bench all publish a
//! real VP8 (IVF file) or H.264 (Annex B file) bitstream, so a browser could decode what they
//! send. [`FrameSource`] loops a fixture's frames and restarts at a keyframe when asked (the
//! answer to a PLI); [`packetize`] splits a frame into RTP payloads (RFC 7741 for VP8, RFC 6184
//! single-NAL / FU-A for H.264). Fixtures live in `sfu/fixtures/` (made with ffmpeg: see
//! `docs/benchmarks.md`).
//!
//! Not here: sending (see [`super::WebRtcClient`]) or encoding (no encoder in the process).

use std::path::Path;

/// Largest RTP payload we produce; leaves room for headers, SRTP and extensions in ~1200 bytes.
pub const MAX_PAYLOAD: usize = 1100;

/// The codec of a fixture, told by its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureCodec {
    /// An `.ivf` file, packetized per RFC 7741.
    Vp8,
    /// An Annex B file, packetized per RFC 6184.
    H264,
}

/// One encoded video frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The encoded bitstream of the frame (for H.264, one access unit in Annex B).
    pub data: Vec<u8>,
    /// A decoder can start here: what the publisher sends first and after a PLI.
    pub keyframe: bool,
}

/// A looping sequence of encoded frames.
pub struct FrameSource {
    /// Decides the packetizer and the payload type to send with.
    pub codec: FixtureCodec,
    frames: Vec<Frame>,
    next: usize,
}

impl FrameSource {
    /// Load `.ivf` (VP8) or `.h264` (Annex B, one access unit per AUD) by extension.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let is_ivf = path.extension().is_some_and(|e| e == "ivf");
        let (codec, frames) = if is_ivf {
            (FixtureCodec::Vp8, parse_ivf(&bytes)?)
        } else {
            (FixtureCodec::H264, parse_annexb(&bytes)?)
        };
        if frames.is_empty() || !frames[0].keyframe {
            return Err(format!("{}: must start with a keyframe", path.display()));
        }
        Ok(FrameSource {
            codec,
            frames,
            next: 0,
        })
    }

    /// The bundled VP8 test pattern (320x240, 30 fps, keyframe every second).
    pub fn test_pattern() -> Self {
        let bytes = include_bytes!("../../fixtures/testsrc-320x240-vp8.ivf");
        // The fixture is part of the build; a broken one fails the first test that uses it.
        let frames = parse_ivf(bytes).unwrap_or_default();
        FrameSource {
            codec: FixtureCodec::Vp8,
            frames,
            next: 0,
        }
    }

    /// The bundled H.264 baseline test pattern.
    pub fn test_pattern_h264() -> Self {
        let bytes = include_bytes!("../../fixtures/testsrc-320x240-baseline.h264");
        FrameSource {
            codec: FixtureCodec::H264,
            frames: parse_annexb(bytes).unwrap_or_default(),
            next: 0,
        }
    }

    /// Frames in one loop.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// A broken bundled fixture loads empty rather than panicking; this tells.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The next frame, looping.
    pub fn next_frame(&mut self) -> Option<&Frame> {
        if self.frames.is_empty() {
            return None;
        }
        let f = &self.frames[self.next % self.frames.len()];
        self.next = (self.next + 1) % self.frames.len();
        Some(f)
    }

    /// Jump to the start (a keyframe) so the next frame answers a keyframe request.
    pub fn restart_at_keyframe(&mut self) {
        self.next = 0;
    }
}

fn parse_ivf(b: &[u8]) -> Result<Vec<Frame>, String> {
    if b.len() < 32 || &b[0..4] != b"DKIF" {
        return Err("not an IVF file".into());
    }
    let header_len = u16::from_le_bytes([b[6], b[7]]) as usize;
    let mut i = header_len;
    let mut frames = Vec::new();
    while i + 12 <= b.len() {
        let size = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        i += 12;
        let Some(data) = b.get(i..i + size) else {
            return Err("truncated IVF frame".into());
        };
        // VP8 frame tag: bit 0 clear means keyframe.
        let keyframe = data.first().is_some_and(|t| t & 1 == 0);
        frames.push(Frame {
            data: data.to_vec(),
            keyframe,
        });
        i += size;
    }
    Ok(frames)
}

/// Split an Annex B stream into NAL units (without start codes).
fn nal_units(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map(|n| n - 3).unwrap_or(b.len());
        // A 4-byte start code leaves one zero byte behind.
        while end > s && b[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(&b[s..end]);
        }
    }
    out
}

/// Frames are access units delimited by AUD (type 9). Stored as length-prefixed NALs.
fn parse_annexb(b: &[u8]) -> Result<Vec<Frame>, String> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut cur: Option<Frame> = None;
    for nal in nal_units(b) {
        let t = nal[0] & 0x1f;
        if t == 9 {
            if let Some(f) = cur.take() {
                frames.push(f);
            }
            cur = Some(Frame {
                data: Vec::new(),
                keyframe: false,
            });
            continue;
        }
        let f = cur.get_or_insert(Frame {
            data: Vec::new(),
            keyframe: false,
        });
        f.keyframe |= t == 5 || t == 7;
        f.data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        f.data.extend_from_slice(nal);
    }
    if let Some(f) = cur {
        if !f.data.is_empty() {
            frames.push(f);
        }
    }
    if frames.is_empty() {
        return Err("no H.264 access units".into());
    }
    Ok(frames)
}

/// RTP payloads for one frame; the last one carries the marker bit.
pub fn packetize(codec: FixtureCodec, frame: &Frame) -> Vec<Vec<u8>> {
    match codec {
        FixtureCodec::Vp8 => packetize_vp8(&frame.data),
        FixtureCodec::H264 => packetize_h264(&frame.data),
    }
}

fn packetize_vp8(data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(MAX_PAYLOAD - 1)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(chunk.len() + 1);
            // Payload descriptor: S bit on the first packet of the frame, partition 0.
            p.push(if i == 0 { 0x10 } else { 0x00 });
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

fn packetize_h264(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= data.len() {
        let len = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
        i += 4;
        let Some(nal) = data.get(i..i + len) else {
            break;
        };
        i += len;
        if nal.is_empty() {
            continue;
        }
        if nal.len() <= MAX_PAYLOAD {
            out.push(nal.to_vec());
            continue;
        }
        // FU-A: indicator keeps F and NRI with type 28; header carries S/E and the NAL type.
        let indicator = (nal[0] & 0xe0) | 28;
        let body = &nal[1..];
        let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
        for (k, c) in chunks.iter().enumerate() {
            let mut h = nal[0] & 0x1f;
            if k == 0 {
                h |= 0x80;
            }
            if k + 1 == chunks.len() {
                h |= 0x40;
            }
            let mut p = Vec::with_capacity(c.len() + 2);
            p.push(indicator);
            p.push(h);
            p.extend_from_slice(c);
            out.push(p);
        }
    }
    out
}

/// An Opus packet of 20 ms silence (TOC 0xf8: CELT FB 20 ms, one frame; DTX payload).
pub const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyframe::{is_keyframe_start, VideoCodec};

    #[test]
    fn bundled_vp8_fixture_loads_and_packetizes() {
        let mut s = FrameSource::test_pattern();
        assert_eq!(s.len(), 60);
        let f = s.next_frame().unwrap().clone();
        assert!(f.keyframe);
        let pk = packetize(FixtureCodec::Vp8, &f);
        assert!(pk.len() > 1, "a 320x240 keyframe spans several packets");
        assert!(pk.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert!(is_keyframe_start(VideoCodec::Vp8, &pk[0]));
        assert!(!is_keyframe_start(VideoCodec::Vp8, &pk[1]));
        let inter = s.next_frame().unwrap().clone();
        assert!(!inter.keyframe);
        assert!(!is_keyframe_start(
            VideoCodec::Vp8,
            &packetize(FixtureCodec::Vp8, &inter)[0]
        ));
        // Keyframe every 30 frames.
        let keys: Vec<usize> = (0..60).filter(|i| s.frames[*i].keyframe).collect();
        assert_eq!(keys, vec![0, 30]);
    }

    #[test]
    fn bundled_h264_fixture_loads_and_packetizes() {
        let mut s = FrameSource::test_pattern_h264();
        assert_eq!(s.len(), 60);
        let f = s.next_frame().unwrap().clone();
        assert!(f.keyframe);
        let pk = packetize(FixtureCodec::H264, &f);
        assert!(is_keyframe_start(VideoCodec::H264, &pk[0]));
        assert!(pk.iter().all(|p| p.len() <= MAX_PAYLOAD));
    }

    #[test]
    fn garbage_files_are_errors() {
        assert!(parse_ivf(b"nope").is_err());
        assert!(parse_annexb(b"\x00\x00").is_err());
    }
}
