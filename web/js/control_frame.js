// The joystick control frame codec: 24 bytes, little-endian, versioned.
//
// Mirrors proto/src/control_frame.rs byte for byte (layout table there and in docs/protocol.md):
// version u8, kind u8 (1 drive, 2 stop), flags u16 (0), epoch u32, seq u32, timestamp_ms u32,
// linear_x i16, linear_y i16, angular_z i16, buttons u16.
//
// Not here: when to send frames (drive.js), whether a frame may pass (the SFU's control gate),
// or what the robot does with it (watchdog.js).

/** Encoded size of every frame; anything else is malformed. */
export const FRAME_LEN = 24;
/** The only version this client speaks. */
export const VERSION = 1;
/** Frame kinds on the wire. */
export const KIND_DRIVE = 1;
export const KIND_STOP = 2;
/** Largest axis value: an axis of 1.0 encodes as this. */
export const AXIS_MAX = 32767;

/**
 * One decoded control frame.
 * @typedef {object} ControlFrame
 * @property {'drive'|'stop'} kind
 * @property {number} epoch u32; the SFU overwrites it with the lease epoch
 * @property {number} seq u32, strictly increasing per connection
 * @property {number} timestampMs u32, sender clock, wrapping
 * @property {number} linearX i16, forward positive
 * @property {number} linearY i16, left positive
 * @property {number} angularZ i16, counter-clockwise (turn left) positive
 * @property {number} buttons u16 bit field
 */

/** Why bytes are not a frame; `reason` matches the Rust `FrameError::reason` labels. */
export class FrameError extends Error {
  /**
   * @param {'wrong_size'|'bad_version'|'bad_kind'|'bad_flags'} reason
   * @param {string} message
   */
  constructor(reason, message) {
    super(message);
    this.name = 'FrameError';
    this.reason = reason;
  }
}

/**
 * A drive frame with epoch 0 (the SFU stamps it).
 * @param {number} seq
 * @param {number} timestampMs
 * @param {number} linearX
 * @param {number} linearY
 * @param {number} angularZ
 * @returns {ControlFrame}
 */
export function driveFrame(seq, timestampMs, linearX, linearY, angularZ) {
  return { kind: 'drive', epoch: 0, seq, timestampMs, linearX, linearY, angularZ, buttons: 0 };
}

/**
 * @param {ControlFrame} f
 * @returns {boolean} true when the frame asks for no motion
 */
export function isStill(f) {
  return f.kind === 'stop' || (f.linearX === 0 && f.linearY === 0 && f.angularZ === 0);
}

/**
 * Encode a frame. Out-of-range numbers are wrapped like Rust's `as` casts would, so callers must
 * clamp axes themselves (see `axis`).
 * @param {ControlFrame} f
 * @returns {Uint8Array<ArrayBuffer>} exactly FRAME_LEN bytes
 */
export function encode(f) {
  const b = new Uint8Array(FRAME_LEN);
  const v = new DataView(b.buffer);
  v.setUint8(0, VERSION);
  v.setUint8(1, f.kind === 'stop' ? KIND_STOP : KIND_DRIVE);
  v.setUint16(2, 0, true);
  v.setUint32(4, f.epoch >>> 0, true);
  v.setUint32(8, f.seq >>> 0, true);
  v.setUint32(12, f.timestampMs >>> 0, true);
  v.setInt16(16, f.linearX, true);
  v.setInt16(18, f.linearY, true);
  v.setInt16(20, f.angularZ, true);
  v.setUint16(22, f.buttons, true);
  return b;
}

/**
 * Decode untrusted bytes.
 * @param {ArrayBuffer|ArrayBufferView} bytes
 * @returns {ControlFrame}
 * @throws {FrameError}
 */
export function decode(bytes) {
  const b = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  if (b.length !== FRAME_LEN) {
    throw new FrameError('wrong_size', `control frame must be ${FRAME_LEN} bytes, got ${b.length}`);
  }
  if (b[0] !== VERSION) {
    throw new FrameError('bad_version', `unsupported control frame version ${b[0]}`);
  }
  if (b[1] !== KIND_DRIVE && b[1] !== KIND_STOP) {
    throw new FrameError('bad_kind', `unknown control frame kind ${b[1]}`);
  }
  if (b[2] !== 0 || b[3] !== 0) {
    throw new FrameError('bad_flags', 'reserved flags must be zero');
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    kind: b[1] === KIND_STOP ? 'stop' : 'drive',
    epoch: v.getUint32(4, true),
    seq: v.getUint32(8, true),
    timestampMs: v.getUint32(12, true),
    linearX: v.getInt16(16, true),
    linearY: v.getInt16(18, true),
    angularZ: v.getInt16(20, true),
    buttons: v.getUint16(22, true),
  };
}

/**
 * Map an axis in [-1, 1] to i16 (clamped, rounded). NaN counts as 0.
 * @param {number} value
 * @returns {number}
 */
export function axis(value) {
  if (!Number.isFinite(value)) return 0;
  const clamped = Math.max(-1, Math.min(1, value));
  return Math.round(clamped * AXIS_MAX) | 0;
}

/**
 * A sender timestamp: `performance.now()` truncated to u32 milliseconds.
 * @param {number} nowMs
 * @returns {number}
 */
export function timestamp(nowMs) {
  return Math.floor(nowMs) >>> 0;
}
