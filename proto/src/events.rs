//! JSON messages on the reliable, ordered `events` data channel.
//!
//! Every message is one JSON object with a `type` field. [`ServerEvent`] flows from the SFU to
//! participants; [`ClientEvent`] from participants to the SFU. Participants are named by their
//! session id (opaque) and their token's `sub` (an opaque UUID): never by name. The web client
//! resolves names through the API, which is allowed to know them.
//!
//! Not here: the rules for who may send what (the SFU's room and lease logic).

use serde::{Deserialize, Serialize};

use crate::join_token::Role;

/// Largest `events` message the SFU accepts; bigger ones are dropped and counted.
pub const MAX_EVENT_BYTES: usize = 4096;

/// One participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Session id, unique in the room for this connection.
    pub id: String,
    /// Opaque user or robot id from the token.
    pub sub: String,
    /// The token's role.
    pub role: Role,
    /// The token allows taking a free lease (the booking's doctor); says nothing about who
    /// holds it now.
    pub can_control: bool,
    /// It publishes a microphone (doctors) or the robot's audio.
    #[serde(default)]
    pub sends_audio: bool,
    /// It publishes a camera (doctors) or the robot's video.
    #[serde(default)]
    pub sends_video: bool,
    /// How it reaches the media node, once known (also sent as [`ServerEvent::Transport`]
    /// when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

/// How a session's packets reach the media node. A doctor seeing `tcp` or `relay` knows why
/// the picture may lag: both add a hop or head-of-line blocking that UDP does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// UDP straight to the node (the normal case).
    Udp,
    /// ICE-TCP to the node's passive TCP candidate (UDP blocked, no TURN).
    Tcp,
    /// Through a TURN relay (UDP, TCP or TLS between the client and the relay).
    Relay,
}

impl Transport {
    /// The wire and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Relay => "relay",
        }
    }
}

/// Why the lease changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseReason {
    /// Taken by a doctor with `can_control` while nobody held it.
    Granted,
    /// Given by the holder to another doctor (directly or by granting a request).
    Handoff,
    /// Given up by the holder.
    Released,
    /// The holder disconnected.
    Disconnected,
    /// The holder's token (the booking) ran out.
    Expired,
    /// An administrator took it away.
    Revoked,
    /// The holder went silent (its connection is lost or moving): the robot was stopped and
    /// nobody drives; the holder gets it back, same epoch, if it returns within the grace
    /// period (an ICE restart), else it ends (`disconnected`).
    Suspended,
    /// The holder came back within the grace period: it drives again, same epoch.
    Resumed,
}

/// Robot telemetry, fanned out to everyone in the room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Battery charge, 0.0-1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<f32>,
    /// Link quality, 0.0-1.0, as the robot measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_quality: Option<f32>,
    /// The robot's own e-stop (a button on the robot) is pressed. Not an echo of the room's
    /// latch: an echo could cross a clear on the wire and latch the room again.
    #[serde(default)]
    pub estop: bool,
    /// The drive command the robot is executing now (after its watchdog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive: Option<[i16; 3]>,
}

/// SFU -> participant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First message on a new session: who you are.
    Welcome {
        /// This session as the others see it.
        you: Participant,
    },
    /// Everyone in the room now: sent once, to a participant that just joined.
    Presence {
        /// Everyone in the room, the newcomer included, in join order.
        participants: Vec<Participant>,
    },
    /// Someone joined (sent to everyone already in the room).
    Joined {
        /// The newcomer.
        participant: Participant,
    },
    /// Someone left (sent to everyone still in the room).
    Left {
        /// The session id that left.
        id: String,
    },
    /// The lease changed. Sent after the stop frame went to the robot.
    Lease {
        /// Session id of the new holder; `null` when the lease is free.
        holder: Option<String>,
        /// The new epoch: one more than the last, on every change.
        epoch: u32,
        /// Why it changed.
        reason: LeaseReason,
    },
    /// A consultant asks the holder for control (sent to the holder and the requester).
    LeaseRequested {
        /// Session id of the requester.
        from: String,
    },
    /// The holder refused a request (sent to the requester).
    LeaseDenied {
        /// Session id of the refused requester.
        to: String,
    },
    /// The room's e-stop changed (or is told to a newcomer). `latched` is what the gate obeys:
    /// the room latch (a doctor pressed it; the lease holder clears it) or the robot's own
    /// latch (`robot`: pressed at the bedside; only the robot clears it).
    Estop {
        /// Latched now (either latch).
        latched: bool,
        /// The session that pressed the room latch, if it is in the room; empty otherwise.
        by: String,
        /// The robot's own e-stop is pressed.
        #[serde(default)]
        robot: bool,
    },
    /// From the robot.
    Telemetry {
        /// The robot's session id.
        from: String,
        /// What it reported, as it reported it.
        telemetry: Telemetry,
    },
    /// What your receive slots carry now (sent to you when it changes): for each of your
    /// audio and video slots in m-line order, the session id of the doctor it carries, or
    /// `null`. For a robot, video slot 0 is the presenter.
    Slots {
        /// Your audio slots.
        audio: Vec<Option<String>>,
        /// Your video slots.
        video: Vec<Option<String>>,
    },
    /// The doctors speaking now, loudest first (sent to everyone when it changes, at most four
    /// times a second).
    Speaking {
        /// Session ids.
        ids: Vec<String>,
    },
    /// A doctor muted or unmuted its microphone or camera (sent to everyone).
    Media {
        /// Its session id.
        id: String,
        /// Its microphone is muted.
        audio_muted: bool,
        /// Its camera is off.
        video_muted: bool,
    },
    /// How a participant reaches the media node changed (sent to everyone, the participant
    /// included): its first path once it connects is in `welcome`/`joined`, later changes
    /// (an ICE restart onto another network, a fallback to TCP) come here.
    Transport {
        /// Its session id.
        id: String,
        /// Its path now.
        transport: Transport,
    },
    /// The answer to your `ping`, carrying its `n`: the room's events path is alive. A client
    /// that hears nothing (no `pong`, no other message) for about a second knows the media
    /// node is gone or unreachable long before ICE notices (seconds), and says so.
    Pong {
        /// The `n` of the ping this answers.
        n: u64,
    },
    /// Something you sent was refused.
    Error {
        /// Stable, machine-readable: `bad_event`, `forbidden`, `not_holder`, `no_holder`,
        /// `not_in_room`, `no_request`, `already_holder`, `expired`.
        code: String,
        /// For people; may change between versions.
        message: String,
    },
}

/// Participant -> SFU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Take the lease if free (needs `can_control`) or ask the holder for it.
    RequestLease,
    /// Holder: give the lease to the participant who asked.
    GrantLease {
        /// Session id of the requester.
        to: String,
    },
    /// Holder: refuse a request.
    DenyLease {
        /// Session id of the requester.
        to: String,
    },
    /// Holder: give the lease to another doctor.
    Handoff {
        /// Session id of the doctor who takes over.
        to: String,
    },
    /// Holder: give the lease up.
    Release,
    /// Any doctor: latch the e-stop.
    Estop,
    /// Holder: clear the e-stop.
    EstopClear,
    /// Robot: report its state.
    Telemetry(Telemetry),
    /// Doctor: my microphone is muted / my camera is off (or not any more).
    Media {
        /// Microphone muted.
        #[serde(default)]
        audio_muted: bool,
        /// Camera off.
        #[serde(default)]
        video_muted: bool,
    },
    /// Anyone (observers too): a heartbeat. The SFU answers `pong` with the same `n` at once,
    /// outside the events budget (its own budget of 20 a second, beyond which pings go
    /// unanswered). Browsers send one every 250 ms.
    Ping {
        /// Echoed in the `pong`; the client's own counter.
        #[serde(default)]
        n: u64,
    },
}

impl ServerEvent {
    /// The message as sent on `events`.
    pub fn to_json(&self) -> String {
        // Serialising these plain enums cannot fail; fall back to an error object anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encode"}"#.into())
    }
}

impl ClientEvent {
    /// Parse untrusted bytes. Oversized or invalid input is an error, never a panic.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(format!("event larger than {MAX_EVENT_BYTES} bytes"));
        }
        let event: ClientEvent =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid event: {e}"))?;
        if let ClientEvent::Telemetry(t) = &event {
            t.check()?;
        }
        Ok(event)
    }
}

impl Telemetry {
    /// Battery and link quality are shares, 0.0-1.0. A JSON number too large for an `f32`
    /// becomes infinity, which the SFU would pass on as `null` (found by fuzzing:
    /// `fuzz/fuzz_targets/client_event.rs`), so the range is checked, not assumed.
    fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("battery", self.battery),
            ("link_quality", self.link_quality),
        ] {
            if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(format!("invalid event: telemetry {name} must be 0.0-1.0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_tagged_snake_case() {
        let e = ServerEvent::Lease {
            holder: Some("s1".into()),
            epoch: 3,
            reason: LeaseReason::Handoff,
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"lease","holder":"s1","epoch":3,"reason":"handoff"}"#
        );
        assert_eq!(
            ClientEvent::parse(br#"{"type":"handoff","to":"s2"}"#),
            Ok(ClientEvent::Handoff { to: "s2".into() })
        );
        assert_eq!(
            ClientEvent::parse(br#"{"type":"telemetry","battery":0.5,"estop":true}"#),
            Ok(ClientEvent::Telemetry(Telemetry {
                battery: Some(0.5),
                estop: true,
                ..Default::default()
            }))
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            ClientEvent::parse(br#"{"type":"ping","n":7}"#),
            Ok(ClientEvent::Ping { n: 7 })
        );
        assert_eq!(
            ServerEvent::Pong { n: 7 }.to_json(),
            r#"{"type":"pong","n":7}"#
        );
        assert!(ClientEvent::parse(b"{").is_err());
        assert!(ClientEvent::parse(br#"{"type":"fly"}"#).is_err());
        assert!(ClientEvent::parse(&vec![b' '; MAX_EVENT_BYTES + 1]).is_err());
        // Found by fuzzing: a battery beyond f32's range parsed as infinity.
        let huge = format!(r#"{{"type":"telemetry","battery":{}0.8}}"#, "7".repeat(120));
        assert!(ClientEvent::parse(huge.as_bytes()).is_err());
        for bad in ["-0.1", "1.5", "1e39"] {
            let json = format!(r#"{{"type":"telemetry","link_quality":{bad}}}"#);
            assert!(ClientEvent::parse(json.as_bytes()).is_err(), "{bad}");
        }
        for ok in ["0", "0.5", "1.0"] {
            let json = format!(r#"{{"type":"telemetry","battery":{ok},"link_quality":{ok}}}"#);
            assert!(ClientEvent::parse(json.as_bytes()).is_ok(), "{ok}");
        }
    }
}
