//! Keyframes: spotting where one starts in an RTP payload, and rate-limiting requests for one.
//!
//! A viewer that joins mid-stream must start decoding at a keyframe, so the room holds a new
//! viewer's video until a packet that starts a keyframe goes by ([`is_keyframe_start`]) and asks
//! the robot for one ([`KeyframeCoalescer`]). Many viewers joining at once must not turn into a
//! storm of PLIs at the robot's encoder: at most one request per interval per track.
//!
//! Not here: decoding, or knowing which codec a payload type means (the shell maps that).

use std::time::{Duration, Instant};

/// Codecs the SFU forwards. Anything else is forwarded without keyframe gating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// RFC 7741 payloads.
    Vp8,
    /// RFC 6184 payloads.
    H264,
    /// Every packet counts as a keyframe start, so viewers are never held back forever.
    Other,
}

/// Does this RTP payload begin a keyframe? Never panics on short or garbage payloads.
pub fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe_start(payload),
        VideoCodec::H264 => h264_keyframe_start(payload),
        VideoCodec::Other => true,
    }
}

/// RFC 7741 payload descriptor, then the VP8 frame tag's P bit (0 = keyframe).
fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !start || pid != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&pic) = p.get(i) else { return false };
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    matches!(p.get(i), Some(tag) if tag & 0x01 == 0)
}

/// RFC 6184: an IDR or SPS NAL unit, alone, inside a STAP-A, or at the start of an FU-A.
fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1f {
        5 | 7 => true,
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let len = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                let t = p[i + 2] & 0x1f;
                if t == 5 || t == 7 {
                    return true;
                }
                i += 2 + len;
            }
            false
        }
        28 => matches!(p.get(1), Some(&h) if h & 0x80 != 0 && matches!(h & 0x1f, 5 | 7)),
        _ => false,
    }
}

/// At most one keyframe request per `interval`; requests inside the window are remembered and
/// sent when it closes, so a viewer that joins right after another still gets its keyframe.
#[derive(Debug)]
pub struct KeyframeCoalescer {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeCoalescer {
    /// At most one request per `interval` (300 ms in a room: a browser robot ignores requests
    /// within 300 ms of the last one it honoured).
    pub fn new(interval: Duration) -> Self {
        KeyframeCoalescer {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// Someone wants a keyframe. Returns true if the request should go out now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// Time passed. Returns true if a deferred request should go out now.
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.pending && self.next_deadline().is_some_and(|d| now >= d) {
            self.pending = false;
            self.last_sent = Some(now);
            return true;
        }
        false
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(t)) => Some(t + self.interval),
            _ => None,
        }
    }

    /// A keyframe went by: a deferred request has nothing left to ask for. If it came within
    /// the window of our last request (most likely its answer), the window restarts now: a browser's encoder ignores requests that reach
    /// it within 300 ms of the last one it honoured (WebRTC's `EncoderRtcpFeedback`), and
    /// counting from the answer rather than from our send keeps the next request outside that
    /// window by the request's trip time, instead of a coin toss on network jitter.
    pub fn satisfied(&mut self, now: Instant) {
        self.pending = false;
        if let Some(t) = self.last_sent {
            if now.saturating_duration_since(t) < self.interval {
                self.last_sent = Some(now);
            }
        }
    }

    /// Forget history (the publisher changed; its encoder owes us nothing).
    pub fn reset(&mut self) {
        self.last_sent = None;
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_detection() {
        // S=1, PID=0, no extensions, frame tag P=0.
        assert!(is_keyframe_start(VideoCodec::Vp8, &[0x10, 0x00, 0x9d]));
        // Interframe: P=1.
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x10, 0x01]));
        // Continuation packet: S=0.
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x00, 0x00]));
        // X=1, I=1 with 15-bit picture id (M=1), then the tag.
        assert!(is_keyframe_start(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x00]
        ));
        assert!(!is_keyframe_start(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x01]
        ));
        // Truncated.
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x90, 0x80]));
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[]));
    }

    #[test]
    fn h264_keyframe_detection() {
        assert!(is_keyframe_start(VideoCodec::H264, &[0x65]));
        assert!(is_keyframe_start(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!is_keyframe_start(VideoCodec::H264, &[0x41]));
        // STAP-A with SPS inside.
        assert!(is_keyframe_start(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42]
        ));
        // STAP-A with a length running past the end.
        assert!(!is_keyframe_start(
            VideoCodec::H264,
            &[0x78, 0xff, 0xff, 0x41]
        ));
        // FU-A start of an IDR, and a middle fragment.
        assert!(is_keyframe_start(VideoCodec::H264, &[0x7c, 0x85]));
        assert!(!is_keyframe_start(VideoCodec::H264, &[0x7c, 0x05]));
    }

    #[test]
    fn coalescer_sends_one_per_interval_and_defers_the_rest() {
        let t0 = Instant::now();
        let mut c = KeyframeCoalescer::new(Duration::from_millis(300));
        assert!(c.request(t0));
        assert!(!c.request(t0 + Duration::from_millis(10)));
        assert!(!c.request(t0 + Duration::from_millis(20)));
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_millis(300)));
        assert!(!c.poll(t0 + Duration::from_millis(299)));
        assert!(c.poll(t0 + Duration::from_millis(300)));
        assert!(!c.poll(t0 + Duration::from_millis(700)));
        assert!(c.request(t0 + Duration::from_millis(700)));
    }

    #[test]
    fn a_keyframe_cancels_the_deferred_request() {
        let t0 = Instant::now();
        let mut c = KeyframeCoalescer::new(Duration::from_millis(300));
        assert!(c.request(t0));
        assert!(!c.request(t0 + Duration::from_millis(10)));
        c.satisfied(t0 + Duration::from_millis(30));
        assert_eq!(c.next_deadline(), None);
        assert!(!c.poll(t0 + Duration::from_millis(300)));
    }

    #[test]
    fn the_window_counts_from_the_keyframe_that_answered() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = KeyframeCoalescer::new(ms(300));
        assert!(c.request(t0));
        // The robot's keyframe arrives 40 ms later (trip + encode).
        c.satisfied(t0 + ms(40));
        // A viewer joining 300 ms after our request would reach a browser robot inside its
        // 300 ms window and be ignored: deferred to 300 ms after the answer instead.
        assert!(!c.request(t0 + ms(300)));
        assert_eq!(c.next_deadline(), Some(t0 + ms(340)));
        assert!(c.poll(t0 + ms(340)));
        // A keyframe long after the window (the encoder's own) does not hold anything back.
        c.satisfied(t0 + ms(2000));
        assert!(c.request(t0 + ms(2010)));
    }
}
