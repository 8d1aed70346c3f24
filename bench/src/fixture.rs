//! The robot's video: a 1280x720 VP8 fixture made with ffmpeg at bench time, and its packetizer.
//!
//! The fixture is a real VP8 bitstream (libvpx, constant bitrate, keyframe every `gop` frames,
//! ffmpeg's `testsrc` with temporal noise so the encoder actually spends the bitrate), written to
//! `bench/out/fixtures/` and reused when it already exists. It is loaded with the SFU crate's
//! [`FrameSource`].
//!
//! [`packetize_vp8`] differs from `bedside_sfu::client::media::packetize` in one way: every
//! packet's payload descriptor carries a 15-bit PictureID (RFC 7741 `X`, `I`, `M` bits), as
//! Chrome's does. The stream stays decodable and every forwarded packet names its frame, so a
//! viewer can match what it receives to the robot's send log even when a server (Janus) rewrites
//! sequence numbers and timestamps.
//!
//! Not here: sending (see `roles.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use bedside_sfu::client::media::{FrameSource, MAX_PAYLOAD};

/// What to encode.
#[derive(Debug, Clone, Copy)]
pub struct FixtureSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub gop: u32,
    pub seconds: u32,
}

impl FixtureSpec {
    pub fn file_name(&self) -> String {
        format!(
            "testsrc-{}x{}-{}fps-{}k-g{}-{}s.ivf",
            self.width, self.height, self.fps, self.bitrate_kbps, self.gop, self.seconds
        )
    }
}

/// Make the fixture with ffmpeg unless it is already there. Returns its path.
pub fn ensure(spec: &FixtureSpec, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(spec.file_name());
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("{}.tmp.ivf", spec.file_name()));
    let rate = format!("{}k", spec.bitrate_kbps);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc=size={}x{}:rate={}",
            spec.width, spec.height, spec.fps
        ))
        .args(["-t", &spec.seconds.to_string()])
        // Temporal noise: without it testsrc compresses to well under the requested bitrate.
        .args(["-vf", "noise=alls=10:allf=t", "-c:v", "libvpx"])
        .args([
            "-b:v", &rate, "-minrate", &rate, "-maxrate", &rate, "-bufsize", &rate,
        ])
        .args([
            "-g",
            &spec.gop.to_string(),
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ])
        .args(["-f", "ivf", "-y"])
        .arg(&tmp)
        .status()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg failed ({status}) making {}", path.display());
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Load a fixture and report its real bitrate (bits per second at `fps`).
pub fn load(path: &Path, fps: u32) -> anyhow::Result<(FrameSource, f64)> {
    let mut src = FrameSource::load(path).map_err(anyhow::Error::msg)?;
    let n = src.len();
    let mut bytes = 0usize;
    for _ in 0..n {
        if let Some(f) = src.next_frame() {
            bytes += f.data.len();
        }
    }
    src.restart_at_keyframe();
    let bps = bytes as f64 * 8.0 * fps as f64 / n.max(1) as f64;
    Ok((src, bps))
}

/// Bytes of payload descriptor we write: X byte, I with a 15-bit PictureID.
pub const VP8_DESCRIPTOR: usize = 4;

/// RFC 7741 payloads for one frame, each with the frame's 15-bit PictureID.
pub fn packetize_vp8(data: &[u8], picture_id: u16) -> Vec<Vec<u8>> {
    let pid = picture_id & 0x7fff;
    data.chunks(MAX_PAYLOAD - VP8_DESCRIPTOR)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(chunk.len() + VP8_DESCRIPTOR);
            // X (extensions present), S on the first packet of the frame, partition 0.
            p.push(0x80 | if i == 0 { 0x10 } else { 0x00 });
            // I: PictureID present.
            p.push(0x80);
            // M: 15-bit PictureID.
            p.push(0x80 | (pid >> 8) as u8);
            p.push(pid as u8);
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

/// The PictureID and start-of-frame bit of a payload written by [`packetize_vp8`] (or by any
/// sender using 15-bit PictureIDs).
pub fn vp8_picture_id(payload: &[u8]) -> Option<(u16, bool)> {
    let b0 = *payload.first()?;
    if b0 & 0x80 == 0 {
        return None;
    }
    let x = *payload.get(1)?;
    if x & 0x80 == 0 {
        return None;
    }
    let hi = *payload.get(2)?;
    if hi & 0x80 == 0 {
        return None;
    }
    let lo = *payload.get(3)?;
    Some(((((hi & 0x7f) as u16) << 8) | lo as u16, b0 & 0x10 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside_sfu::keyframe::{is_keyframe_start, VideoCodec};

    #[test]
    fn picture_ids_round_trip_and_keyframes_are_still_seen() {
        let mut src = FrameSource::test_pattern();
        let key = src.next_frame().unwrap().clone();
        let pk = packetize_vp8(&key.data, 0x1234);
        assert!(pk.len() > 1);
        assert!(pk.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(vp8_picture_id(&pk[0]), Some((0x1234, true)));
        assert_eq!(vp8_picture_id(&pk[1]), Some((0x1234, false)));
        // The SFU's keyframe detector reads past the extended descriptor.
        assert!(is_keyframe_start(VideoCodec::Vp8, &pk[0]));
        assert!(!is_keyframe_start(VideoCodec::Vp8, &pk[1]));
        let joined: Vec<u8> = pk.iter().flat_map(|p| p[4..].to_vec()).collect();
        assert_eq!(joined, key.data);
        let inter = src.next_frame().unwrap().clone();
        assert!(!is_keyframe_start(
            VideoCodec::Vp8,
            &packetize_vp8(&inter.data, 1)[0]
        ));
    }
}
