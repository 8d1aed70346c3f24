// The drive loop of the lease holder: merges the inputs (on-screen joystick, keyboard, gamepad)
// and sends Drive frames on the `control` channel at a fixed rate while any input is active, then
// exactly one zero frame when they all let go.
//
// `tick()` is pure logic over `read()`s of the inputs and a clock; `start()` runs it on a timer.
// Frames carry epoch 0 (the SFU stamps the lease epoch), a sequence number that only goes up on
// one connection (`resetSequence()` for a new one) and `performance.now()` as u32 ms.
//
// Not here: who may drive (consult.js enables it for the lease holder only), how each input works
// (joystick.js, keyboard.js, gamepad.js), or the byte layout (control_frame.js).

import { axis, driveFrame, encode, timestamp } from './control_frame.js';

/**
 * What one input wants now. Axes in [-1, 1]: x forward, y left, z counter-clockwise.
 * @typedef {object} Axes
 * @property {number} x
 * @property {number} y
 * @property {number} z
 * @property {boolean} active the person is touching this input (a held key, a pressed pad)
 */

/**
 * @typedef {object} DriveInput
 * @property {string} name
 * @property {() => Axes} read
 */

/** Frames per second while driving: within the 20-50 Hz the SFU expects. */
export const DRIVE_HZ = 30;

/** @returns {Axes} */
export function idle() {
  return { x: 0, y: 0, z: 0, active: false };
}

/**
 * Sum the inputs' axes (clamped) and whether any is active.
 * @param {Axes[]} all
 * @returns {Axes}
 */
export function merge(all) {
  const out = idle();
  for (const a of all) {
    out.x += a.x;
    out.y += a.y;
    out.z += a.z;
    out.active = out.active || a.active;
  }
  const clamp = (/** @type {number} */ v) => Math.max(-1, Math.min(1, v));
  return { x: clamp(out.x), y: clamp(out.y), z: clamp(out.z), active: out.active };
}

export class DriveSender extends EventTarget {
  /**
   * @param {object} opts
   * @param {(bytes: Uint8Array<ArrayBuffer>) => boolean} opts.send
   * @param {DriveInput[]} opts.inputs
   * @param {() => number} [opts.now] ms clock
   * @param {number} [opts.hz]
   */
  constructor(opts) {
    super();
    this.send = opts.send;
    this.inputs = opts.inputs;
    this.now = opts.now || (() => performance.now());
    this.hz = opts.hz || DRIVE_HZ;
    /** Sending is allowed (we hold the lease, the e-stop is not latched, we are connected). */
    this.enabled = false;
    /** The last tick sent motion, so a zero frame is owed when it stops. */
    this.moving = false;
    this.seq = 0;
    this.sent = 0;
    /** @type {{x: number, y: number, z: number}} last axes sent, as i16 */
    this.last = { x: 0, y: 0, z: 0 };
    /** @type {ReturnType<typeof setInterval>|null} */
    this.timer = null;
  }

  /** A new connection: the SFU starts a new sequence space for it. */
  resetSequence() {
    this.seq = 0;
    this.moving = false;
  }

  /** @param {boolean} on */
  setEnabled(on) {
    if (this.enabled && !on && this.moving) {
      // Leaving the driver's seat while moving: say "still" once more (dropped harmlessly if the
      // lease is already gone; the SFU sent the robot its own stop then).
      this.sendAxes(0, 0, 0);
      this.moving = false;
    }
    this.enabled = on;
  }

  /** One step of the loop. Returns the merged input for display. */
  tick() {
    const a = merge(this.inputs.map((i) => i.read()));
    if (!this.enabled) {
      this.moving = false;
      return a;
    }
    if (a.active) {
      this.sendAxes(axis(a.x), axis(a.y), axis(a.z));
      this.moving = true;
    } else if (this.moving) {
      this.sendAxes(0, 0, 0);
      this.moving = false;
    }
    return a;
  }

  /**
   * @param {number} x
   * @param {number} y
   * @param {number} z
   */
  sendAxes(x, y, z) {
    this.seq += 1;
    const ok = this.send(encode(driveFrame(this.seq, timestamp(this.now()), x, y, z)));
    if (ok) {
      this.sent += 1;
      this.last = { x, y, z };
      this.dispatchEvent(new CustomEvent('sent', { detail: this.last }));
    }
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.round(1000 / this.hz));
  }

  stop() {
    this.setEnabled(false);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
