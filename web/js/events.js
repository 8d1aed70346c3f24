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
 */

/** @typedef {'granted'|'handoff'|'released'|'disconnected'|'expired'|'revoked'} LeaseReason */

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
 *   | {type: 'estop', latched: boolean, by: string}
 *   | {type: 'telemetry', from: string, telemetry: Telemetry}
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
 *   | ({type: 'telemetry'} & Telemetry)} ClientEvent
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
  'welcome', 'presence', 'joined', 'left', 'lease', 'lease_requested', 'lease_denied', 'estop', 'telemetry', 'error',
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
