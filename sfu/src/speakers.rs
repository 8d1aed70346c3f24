//! Who is speaking, from the RFC 6464 audio level every doctor's microphone packet carries, and
//! which doctors a receiver's few audio (or video) slots carry.
//!
//! No audio is decoded. Each packet's level (0 dBov loudest, -127 silence) feeds a per-source
//! smoothed level (an exponential average over [`SpeakerConfig::smoothing`]); a source is
//! *active* while it was above [`SpeakerConfig::floor_dbov`] within [`SpeakerConfig::hold`].
//!
//! A receiver's slots are a [`SlotSet`]: while there are no more candidates than slots, every
//! candidate has a slot and nothing ever moves (a consult of four doctors with three slots each:
//! everyone hears everyone else, mix-minus by leaving oneself out of one's own candidates).
//! With more candidates than slots, a slot changes hands only when an active candidate without
//! one has been louder than the quietest holder by [`SpeakerConfig::margin_db`] for
//! [`SpeakerConfig::switch_after`]: hysteresis in level and in time, so slots do not flap on
//! every breath. (The same idea as atm0s's "virtual mix-minus" audio slots and LiveKit's
//! speaker detection; the thresholds here are chosen for a bedside consult of a few doctors.)
//!
//! Not here: RTP, who may publish (the room), or what a slot change costs (a keyframe request,
//! renumbering: `room_media.rs` and `peer.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::SessionId;

/// Thresholds of speaker detection and slot switching.
#[derive(Debug, Clone, Copy)]
pub struct SpeakerConfig {
    /// Time constant of the smoothed level.
    pub smoothing: Duration,
    /// A level above this (dBov) is speech rather than room noise.
    pub floor_dbov: f32,
    /// A source stays active this long after its last level above the floor.
    pub hold: Duration,
    /// A challenger must be this much louder (dB) than the quietest slot holder...
    pub margin_db: f32,
    /// ... for this long, to take its slot.
    pub switch_after: Duration,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            smoothing: Duration::from_millis(300),
            floor_dbov: -50.0,
            hold: Duration::from_millis(1500),
            margin_db: 6.0,
            switch_after: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    level: f32,
    at: Instant,
    last_loud: Option<Instant>,
}

/// The smoothed level and activity of every audio source in a room.
#[derive(Debug, Clone)]
pub struct Speakers {
    config: SpeakerConfig,
    sources: HashMap<SessionId, Source>,
}

/// The level of silence.
const SILENCE: f32 = -127.0;

impl Speakers {
    /// No sources.
    pub fn new(config: SpeakerConfig) -> Self {
        Speakers {
            config,
            sources: HashMap::new(),
        }
    }

    /// The thresholds in use.
    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// One audio packet's level from `id`, in dBov (0 loudest, -127 silence).
    pub fn on_level(&mut self, id: SessionId, dbov: i8, now: Instant) {
        let sample = f32::from(dbov).clamp(SILENCE, 0.0);
        let tau = self.config.smoothing.as_secs_f32().max(1e-3);
        let s = self.sources.entry(id).or_insert(Source {
            level: SILENCE,
            at: now,
            last_loud: None,
        });
        let dt = now.saturating_duration_since(s.at).as_secs_f32();
        // A time-based weight: packets every 10 or 20 ms, or with gaps, weigh by elapsed time.
        let alpha = 1.0 - (-dt.max(0.001) / tau).exp();
        s.level += alpha * (sample - s.level);
        s.at = now;
        if sample > self.config.floor_dbov {
            s.last_loud = Some(now);
        }
    }

    /// Forget a source (it left, or stopped publishing audio).
    pub fn remove(&mut self, id: SessionId) {
        self.sources.remove(&id);
    }

    /// The smoothed level of `id` now: it decays toward silence while no packets come (a muted
    /// microphone sends nothing).
    pub fn level(&self, id: SessionId, now: Instant) -> f32 {
        let Some(s) = self.sources.get(&id) else {
            return SILENCE;
        };
        let quiet = now.saturating_duration_since(s.at).as_secs_f32();
        let tau = self.config.smoothing.as_secs_f32().max(1e-3);
        let keep = (-quiet / tau).exp();
        SILENCE + (s.level - SILENCE) * keep
    }

    /// Was `id` speaking recently?
    pub fn is_active(&self, id: SessionId, now: Instant) -> bool {
        self.sources
            .get(&id)
            .and_then(|s| s.last_loud)
            .is_some_and(|t| now.saturating_duration_since(t) < self.config.hold)
    }

    /// When `id` last spoke.
    pub fn last_spoke(&self, id: SessionId) -> Option<Instant> {
        self.sources.get(&id).and_then(|s| s.last_loud)
    }

    /// The active sources, loudest first.
    pub fn active(&self, now: Instant) -> Vec<SessionId> {
        let mut v: Vec<(SessionId, f32)> = self
            .sources
            .keys()
            .filter(|id| self.is_active(**id, now))
            .map(|id| (*id, self.level(*id, now)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(id, _)| id).collect()
    }
}

/// One receiver's slots of one kind, and the challenger waiting to take one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotSet {
    slots: Vec<Option<SessionId>>,
    challenger: Option<(SessionId, Instant)>,
}

impl SlotSet {
    /// `n` empty slots.
    pub fn new(n: usize) -> Self {
        SlotSet {
            slots: vec![None; n],
            challenger: None,
        }
    }

    /// Slots set to these sources (a selection made elsewhere, e.g. the robot's presenter).
    pub fn with(slots: Vec<Option<SessionId>>) -> Self {
        SlotSet {
            slots,
            challenger: None,
        }
    }

    /// Who each slot carries now.
    pub fn slots(&self) -> &[Option<SessionId>] {
        &self.slots
    }

    /// Does a slot carry `id`?
    pub fn carries(&self, id: SessionId) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(id))
    }

    /// Bring the slots up to date with `candidates` (in a stable order, e.g. join order; never
    /// the receiver itself). Returns the slots whose source changed.
    pub fn update(
        &mut self,
        candidates: &[SessionId],
        speakers: &Speakers,
        now: Instant,
    ) -> Vec<(usize, Option<SessionId>)> {
        let mut changed = Vec::new();
        // Holders that are no longer candidates give their slot up at once.
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.is_some_and(|id| !candidates.contains(&id)) {
                *s = None;
                changed.push((i, None));
            }
        }
        let unassigned = |slots: &[Option<SessionId>]| -> Vec<SessionId> {
            candidates
                .iter()
                .copied()
                .filter(|c| !slots.contains(&Some(*c)))
                .collect()
        };
        // Empty slots take the most fitting candidates: active ones loudest first, then the
        // rest in the given order.
        let mut waiting = unassigned(&self.slots);
        waiting.sort_by(|a, b| {
            let (la, lb) = (speakers.level(*a, now), speakers.level(*b, now));
            let (aa, ab) = (speakers.is_active(*a, now), speakers.is_active(*b, now));
            ab.cmp(&aa).then(if aa && ab {
                lb.total_cmp(&la)
            } else {
                std::cmp::Ordering::Equal
            })
        });
        let mut waiting = waiting.into_iter();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.is_none() {
                match waiting.next() {
                    Some(c) => {
                        *s = Some(c);
                        changed.retain(|(j, _)| *j != i);
                        changed.push((i, Some(c)));
                    }
                    None => break,
                }
            }
        }
        // Every slot is taken; is somebody left out who is clearly louder?
        let left_out = unassigned(&self.slots);
        let cfg = *speakers.config();
        let best = left_out
            .iter()
            .copied()
            .filter(|c| speakers.is_active(*c, now))
            .max_by(|a, b| speakers.level(*a, now).total_cmp(&speakers.level(*b, now)));
        let weakest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|id| (i, id, speakers.level(id, now))))
            .min_by(|a, b| a.2.total_cmp(&b.2));
        match (best, weakest) {
            (Some(c), Some((slot, _, weak))) if speakers.level(c, now) > weak + cfg.margin_db => {
                match self.challenger {
                    Some((who, since)) if who == c => {
                        if now.saturating_duration_since(since) >= cfg.switch_after {
                            self.slots[slot] = Some(c);
                            changed.push((slot, Some(c)));
                            self.challenger = None;
                        }
                    }
                    _ => self.challenger = Some((c, now)),
                }
            }
            _ => self.challenger = None,
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = SessionId(1);
    const B: SessionId = SessionId(2);
    const C: SessionId = SessionId(3);
    const D: SessionId = SessionId(4);
    const E: SessionId = SessionId(5);

    /// Feed 20 ms packets for `ms` at these levels.
    fn speak(s: &mut Speakers, now: &mut Instant, ms: u64, levels: &[(SessionId, i8)]) {
        for _ in 0..ms / 20 {
            *now += Duration::from_millis(20);
            for (id, l) in levels {
                s.on_level(*id, *l, *now);
            }
        }
    }

    #[test]
    fn the_three_loudest_of_five_get_the_slots() {
        let mut now = Instant::now();
        let mut s = Speakers::new(SpeakerConfig::default());
        let mut slots = SlotSet::new(3);
        let all = [A, B, C, D, E];
        speak(
            &mut s,
            &mut now,
            1000,
            &[(A, -60), (B, -20), (C, -60), (D, -25), (E, -30)],
        );
        slots.update(&all, &s, now);
        let mut held: Vec<SessionId> = slots.slots().iter().flatten().copied().collect();
        held.sort();
        assert_eq!(held, vec![B, D, E], "A and C are below the floor");
        assert_eq!(s.active(now), vec![B, D, E]);
    }

    #[test]
    fn slots_do_not_flap_on_a_breath() {
        let mut now = Instant::now();
        let mut s = Speakers::new(SpeakerConfig::default());
        let mut slots = SlotSet::new(1);
        let all = [A, B];
        speak(&mut s, &mut now, 1000, &[(A, -20), (B, -45)]);
        slots.update(&all, &s, now);
        assert_eq!(slots.slots(), &[Some(A)]);
        // B gets louder than A for a moment only: no switch.
        for _ in 0..10 {
            speak(&mut s, &mut now, 100, &[(A, -20), (B, -5)]);
            slots.update(&all, &s, now);
            speak(&mut s, &mut now, 100, &[(A, -20), (B, -45)]);
            slots.update(&all, &s, now);
        }
        assert_eq!(slots.slots(), &[Some(A)], "short bursts never win the slot");
        // A falls silent and B speaks on: B takes the slot after the switch delay, not before.
        let mut switched_at = None;
        let start = now;
        for _ in 0..30 {
            speak(&mut s, &mut now, 100, &[(A, -90), (B, -15)]);
            if !slots.update(&all, &s, now).is_empty() && switched_at.is_none() {
                switched_at = Some(now - start);
            }
        }
        assert_eq!(slots.slots(), &[Some(B)]);
        let t = switched_at.unwrap();
        assert!(t >= Duration::from_millis(500), "switched after {t:?}");
        assert!(t <= Duration::from_millis(1500), "switched after {t:?}");
    }

    #[test]
    fn few_candidates_all_have_a_slot_and_never_move() {
        let mut now = Instant::now();
        let mut s = Speakers::new(SpeakerConfig::default());
        let mut slots = SlotSet::new(3);
        // Mix-minus is the caller's: the receiver is not among its own candidates.
        let others = [B, C];
        assert_eq!(slots.update(&others, &s, now).len(), 2);
        let before = slots.clone();
        speak(&mut s, &mut now, 2000, &[(B, -70), (C, -5)]);
        assert!(slots.update(&others, &s, now).is_empty());
        assert_eq!(slots, before);
        // Someone leaving frees their slot; the others keep theirs.
        let changed = slots.update(&[C], &s, now);
        assert_eq!(changed, vec![(0, None)]);
        assert_eq!(slots.slots(), &[None, Some(C), None]);
    }

    #[test]
    fn a_muted_source_decays_to_silence() {
        let mut now = Instant::now();
        let mut s = Speakers::new(SpeakerConfig::default());
        speak(&mut s, &mut now, 1000, &[(A, -10)]);
        assert!(s.level(A, now) > -15.0);
        assert!(s.is_active(A, now));
        now += Duration::from_secs(3);
        assert!(s.level(A, now) < -120.0);
        assert!(!s.is_active(A, now));
    }
}
