// The JSON messages of the `events` data channel, typed: mirrors proto/src/events.rs.
//
// Every message is one JSON object with a snake_case `type` tag. ServerEvent flows from the SFU
// to us, ClientEvent from us to the SFU. Participants are named by session id (`s<N>`) and their
// token's opaque `sub`; names come from the API, never from here.
//
// Not here: the rules for who may send what (the SFU), or what the UI does with an event.

/** @typedef {'robot'|'doctor'|'observer'} TokenRole */

/**
 * @typedef {object} Participant
 * @property {string} id session id, e.g. "s3"
 * @property {string} sub opaque user or robot id
 * @property {TokenRole} role
 * @property {boolean} can_control
 * @property {boolean} [sends_audio] it publishes a microphone (doctors) or the robot's audio
 * @property {boolean} [sends_video] it publishes a camera (doctors) or the robot's video
 */

/** @typedef {'granted'|'handoff'|'released'|'disconnected'|'expired'|'revoked'|'suspended'|'resumed'} LeaseReason */

/**
 * @typedef {object} Telemetry
 * @property {number} [battery] 0.0-1.0
 * @property {number} [link_quality] 0.0-1.0
 * @property {boolean} estop
 * @property {[number, number, number]} [drive] linear_x, linear_y, angular_z
 */

/**
 * @typedef {{type: 'welcome', you: Participant}
 *   | {type: 'presence', participants: Participant[]}
 *   | {type: 'joined', participant: Participant}
 *   | {type: 'left', id: string}
 *   | {type: 'lease', holder: string|null, epoch: number, reason: LeaseReason}
 *   | {type: 'lease_requested', from: string}
 *   | {type: 'lease_denied', to: string}
 *   | {type: 'estop', latched: boolean, by: string, robot?: boolean}
 *   | {type: 'telemetry', from: string, telemetry: Telemetry}
 *   | {type: 'slots', audio: (string|null)[], video: (string|null)[]}
 *   | {type: 'speaking', ids: string[]}
 *   | {type: 'media', id: string, audio_muted: boolean, video_muted: boolean}
 *   | {type: 'pong', n: number}
 *   | {type: 'error', code: string, message: string}} ServerEvent
 */

/**
 * @typedef {{type: 'request_lease'}
 *   | {type: 'grant_lease', to: string}
 *   | {type: 'deny_lease', to: string}
 *   | {type: 'handoff', to: string}
 *   | {type: 'release'}
 *   | {type: 'estop'}
 *   | {type: 'estop_clear'}
 *   | ({type: 'telemetry'} & Telemetry)
 *   | {type: 'media', audio_muted: boolean, video_muted: boolean}
 *   | {type: 'ping', n: number}} ClientEvent
 */

/**
 * Apply a presence event to a participant list: `presence` is the whole room (sent once, to a
 * newcomer), `joined` and `left` are the changes after that (sent to everyone else).
 * @param {Participant[]} list
 * @param {ServerEvent} ev
 * @returns {Participant[]} the new list (the old one if `ev` is not about presence)
 */
export function applyPresence(list, ev) {
  switch (ev.type) {
    case 'presence':
      return ev.participants.slice();
    case 'joined':
      return [...list.filter((p) => p.id !== ev.participant.id), ev.participant];
    case 'left':
      return list.filter((p) => p.id !== ev.id);
    default:
      return list;
  }
}

/** Largest event the SFU accepts (MAX_EVENT_BYTES). */
export const MAX_EVENT_BYTES = 4096;

const SERVER_TYPES = new Set([
  'welcome', 'presence', 'joined', 'left', 'lease', 'lease_requested', 'lease_denied', 'estop', 'telemetry',
  'slots', 'speaking', 'media', 'pong', 'error',
]);

/**
 * Parse one message from the server; unknown or broken messages give null (the SFU may grow new
 * event types before this client learns them).
 * @param {unknown} data
 * @returns {ServerEvent|null}
 */
export function parseServerEvent(data) {
  if (typeof data !== 'string' || data.length > 64 * 1024) return null;
  let v;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || !SERVER_TYPES.has(v.type)) return null;
  return /** @type {ServerEvent} */ (v);
}

/**
 * What an `error` event means for the person who got it: the words to show, and whether the
 * server has ended this session for good (reconnecting would only be refused again, or, for
 * `replaced`, take the room back from the person's other window).
 * @typedef {object} ErrorMeaning
 * @property {string} text plain words for the person
 * @property {boolean} ends the session is over; do not reconnect
 */

/** @type {Record<string, ErrorMeaning>} */
const ERRORS = {
  replaced: { text: 'You joined this room again from another window or device; this window has left the room.', ends: true },
  booking_cancelled: { text: 'Your booking was cancelled; you have left the room.', ends: true },
  invitation_removed: { text: 'Your invitation to this booking was withdrawn; you have left the room.', ends: true },
  user_disabled: { text: 'Your account was disabled; you have left the room.', ends: true },
  credential_rotated: { text: 'This robot’s credential was replaced by an administrator; it has stopped publishing. Start it again with the new credential.', ends: true },
  session_ended: { text: 'An administrator ended your session; you have left the room.', ends: true },
  control_revoked: { text: 'An administrator took control away: you can no longer drive in this booking.', ends: false },
  rate_limited: { text: 'Too many messages at once: slow down. (The e-stop always gets through.)', ends: false },
  robot_estop: { text: 'The e-stop was pressed at the robot itself: only someone at the bedside can release it.', ends: false },
  forbidden: { text: 'You are not allowed to do that.', ends: false },
  not_holder: { text: 'Only the doctor who has control can do that.', ends: false },
  no_holder: { text: 'Nobody has control right now.', ends: false },
  already_holder: { text: 'You already have control.', ends: false },
  not_in_room: { text: 'That person is no longer in the room.', ends: false },
  no_request: { text: 'That request for control is no longer open.', ends: false },
};

/**
 * @param {string} code an `error` event's code
 * @param {string} message its message (shown for codes this client does not know)
 * @returns {ErrorMeaning}
 */
export function describeError(code, message) {
  // `expired` is not here on purpose: it is also the answer to handing control to someone whose
  // session expired. When it is our own, the session closes and rejoining is refused anyway.
  return ERRORS[code] || { text: message || code, ends: false };
}
