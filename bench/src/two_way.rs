//! The two-way room (`--two-way`): what a consultation adds to the one-way load. The robot
//! receives the driver's camera and the doctors' voices; the driver (the controller) publishes
//! a camera and a microphone; consultants publish a microphone and hear and see the others; the
//! observers also hear the doctors (audio slots). m-lines follow `docs/protocol.md`.
//!
//! Here: the m-line layouts, the microphone and camera writers, and the consultant role.
//! Not here: the robot, controller and viewer loops (`roles.rs`), signalling (`bedside.rs`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::Role;
use bedside_sfu::client::media::{FrameSource, OPUS_SILENCE};
use bedside_sfu::client::{two_way_lines, Endpoint};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use str0m::{Event, Rtc};
use tokio::sync::watch;

use crate::bedside::Bedside;
use crate::peer::{Handler, Peer, Woke};
use crate::track::Window;
use crate::udp::{rtp_head, Datagram};

/// Audio slots every receiver negotiates (the loudest doctors, one each).
pub const AUDIO_SLOTS: usize = 3;

/// The robot: camera and microphone out; the presenter (one video slot) and the doctors in.
pub fn robot_lines() -> Vec<(MediaKind, Direction)> {
    two_way_lines(Endpoint::Whip, AUDIO_SLOTS, 1)
}

/// A doctor: the robot in, own microphone and camera out, the other doctors in.
pub fn doctor_lines(video_slots: usize) -> Vec<(MediaKind, Direction)> {
    two_way_lines(Endpoint::Whep, AUDIO_SLOTS, video_slots)
}

/// An observer (student): the robot and the doctors' voices in, nothing out.
pub fn observer_lines() -> Vec<(MediaKind, Direction)> {
    let mut v = vec![
        (MediaKind::Video, Direction::RecvOnly),
        (MediaKind::Audio, Direction::RecvOnly),
    ];
    v.extend(std::iter::repeat_n(
        (MediaKind::Audio, Direction::RecvOnly),
        AUDIO_SLOTS,
    ));
    v
}

/// A doctor's microphone: Opus every 20 ms with the RFC 6464 audio level the SFU's speaker
/// selection reads. The doctors talk in turn, 2 s each (doctor `index` of `doctors`), quiet
/// otherwise, so who is loudest changes and the selector works as in a real discussion.
pub struct Mic {
    pt: u8,
    mid: Mid,
    seq: u64,
    ts: u32,
    pub next: Instant,
    start: Instant,
    index: u32,
    doctors: u32,
}

impl Mic {
    pub fn new(peer: &Peer, index: u32, doctors: u32) -> anyhow::Result<Mic> {
        let pt = peer
            .pt_for(Codec::Opus)
            .ok_or_else(|| anyhow::anyhow!("Opus not negotiated"))?;
        let mid = peer
            .send_mid(MediaKind::Audio)
            .ok_or_else(|| anyhow::anyhow!("no microphone line"))?;
        let now = Instant::now();
        Ok(Mic {
            pt,
            mid,
            seq: 1_000,
            ts: rand::random(),
            next: now,
            start: now,
            index,
            doctors: doctors.max(1),
        })
    }

    /// Send one packet if due.
    pub fn tick(&mut self, rtc: &mut Rtc, now: Instant) {
        if now < self.next {
            return;
        }
        let second = now.duration_since(self.start).as_secs() as u32;
        let talking = talks(self.index, self.doctors, second);
        let level: i8 = if talking { -20 } else { -70 };
        let w = RtpWrite::new(
            self.pt.into(),
            SeqNo::from(self.seq),
            self.ts,
            now,
            OPUS_SILENCE.to_vec(),
        )
        .ext_vals(ExtensionValues {
            audio_level: Some(level),
            voice_activity: Some(talking),
            ..Default::default()
        });
        if let Some(tx) = rtc.direct_api().stream_tx_by_mid(self.mid, None) {
            tx.write_rtp(w);
        }
        self.seq += 1;
        self.ts = self.ts.wrapping_add(960);
        self.next += Duration::from_millis(20);
        if self.next < now {
            self.next = now + Duration::from_millis(20);
        }
    }
}

/// Whether doctor `index` of `doctors` talks in this second of the run: 2 s each, in turn.
fn talks(index: u32, doctors: u32, second: u32) -> bool {
    let doctors = doctors.max(1);
    (second / 2) % doctors == index % doctors
}

/// The driver's camera: the fixture at `fps`, each frame's packets sent together (a laptop
/// camera at half the robot's frame rate is about half its bitrate).
pub struct Camera {
    source: FrameSource,
    pt: u8,
    mid: Mid,
    seq: u64,
    ts: u32,
    picture_id: u16,
    gap: Duration,
    pub next: Instant,
}

impl Camera {
    pub fn new(peer: &Peer, source: FrameSource, fps: u32) -> anyhow::Result<Camera> {
        let pt = peer
            .pt_for(Codec::Vp8)
            .ok_or_else(|| anyhow::anyhow!("VP8 not negotiated"))?;
        let mid = peer
            .send_mid(MediaKind::Video)
            .ok_or_else(|| anyhow::anyhow!("no camera line"))?;
        Ok(Camera {
            source,
            pt,
            mid,
            seq: 1_000,
            ts: rand::random(),
            picture_id: 0,
            gap: Duration::from_secs_f64(1.0 / fps.max(1) as f64),
            next: Instant::now(),
        })
    }

    /// Send the next frame if due; a keyframe request restarts at a keyframe.
    pub fn tick(&mut self, rtc: &mut Rtc, now: Instant, keyframe_wanted: bool) {
        if now < self.next {
            return;
        }
        if keyframe_wanted {
            self.source.restart_at_keyframe();
        }
        if let Some(frame) = self.source.next_frame() {
            let packets = crate::fixture::packetize_vp8(&frame.data, self.picture_id);
            let n = packets.len();
            for (i, p) in packets.into_iter().enumerate() {
                let w = RtpWrite::new(self.pt.into(), SeqNo::from(self.seq), self.ts, now, p)
                    .marker(i + 1 == n)
                    .nackable(true);
                if let Some(tx) = rtc.direct_api().stream_tx_by_mid(self.mid, None) {
                    tx.write_rtp(w);
                }
                self.seq += 1;
            }
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        self.ts = self
            .ts
            .wrapping_add((90_000.0 * self.gap.as_secs_f64()) as u32);
        self.next += self.gap;
        if self.next < now {
            self.next = now + self.gap;
        }
    }
}

/// What the consultants saw, summed over them.
#[derive(Default)]
pub struct ConsultantStats {
    pub connected: AtomicU64,
    pub rtp_in_window: AtomicU64,
    pub failed: AtomicBool,
}

struct ConsultantH {
    connected: bool,
    window: Arc<Window>,
    rtp_in_window: u64,
}

impl Handler for ConsultantH {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        if rtp_head(d.data).is_some() && self.window.contains(d.rx_ns) {
            self.rtp_in_window += 1;
        }
        true
    }

    fn event(&mut self, _rtc: &mut Rtc, ev: Event, _rx_ns: u64) {
        if let Event::Connected = ev {
            self.connected = true;
        }
    }
}

/// A consultant: joins as a doctor who never drives, talks (see [`Mic`]) and receives
/// everything the room sends a doctor, until `stop`.
pub async fn consultant(
    b: Bedside,
    ip: IpAddr,
    index: u32,
    doctors: u32,
    window: Arc<Window>,
    stats: Arc<ConsultantStats>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut peer = Peer::new(ip)?;
    b.connect_lines(
        &http,
        &mut peer,
        false,
        &b.token(Role::Doctor)?,
        &doctor_lines(1),
    )
    .await?;
    let mut mic = Mic::new(&peer, index, doctors)?;
    let mut h = ConsultantH {
        connected: false,
        window,
        rtp_in_window: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h.connected {
        if Instant::now() > deadline {
            stats.failed.store(true, Relaxed);
            anyhow::bail!("consultant did not connect within 20 s");
        }
        if peer.step(&mut h, deadline, &mut stop).await == Woke::Stop {
            return Ok(());
        }
    }
    stats.connected.fetch_add(1, Relaxed);
    let mut reported = 0;
    loop {
        mic.tick(&mut peer.rtc, Instant::now());
        if peer.step(&mut h, mic.next, &mut stop).await == Woke::Stop {
            break;
        }
        stats
            .rtp_in_window
            .fetch_add(h.rtp_in_window - reported, Relaxed);
        reported = h.rtp_in_window;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_publish_nothing_and_everyone_hears_the_same_slots() {
        let sends = |v: &[(MediaKind, Direction)]| {
            v.iter().filter(|(_, d)| *d == Direction::SendOnly).count()
        };
        let audio_in = |v: &[(MediaKind, Direction)]| {
            v.iter()
                .filter(|(k, d)| *k == MediaKind::Audio && *d == Direction::RecvOnly)
                .count()
        };
        assert_eq!(sends(&observer_lines()), 0);
        assert_eq!(sends(&robot_lines()), 2, "camera and microphone");
        assert_eq!(sends(&doctor_lines(1)), 2, "microphone and camera");
        // The robot hears the slots; a doctor and an observer hear the robot and the slots.
        assert_eq!(audio_in(&robot_lines()), AUDIO_SLOTS);
        assert_eq!(audio_in(&doctor_lines(0)), AUDIO_SLOTS + 1);
        assert_eq!(audio_in(&observer_lines()), AUDIO_SLOTS + 1);
    }

    #[test]
    fn the_doctors_talk_in_turn() {
        // At every second exactly one of three doctors talks, each for 2 s, each in turn.
        for second in 0..12 {
            assert_eq!((0..3).filter(|i| talks(*i, 3, second)).count(), 1);
        }
        let turns: Vec<u32> = (0..12)
            .map(|s| (0..3).find(|i| talks(*i, 3, s)).unwrap())
            .collect();
        assert_eq!(turns, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        assert!(
            talks(0, 0, 5),
            "no doctors is one doctor, never a division by zero"
        );
    }
}
