// The robot-side watchdog for the robot page: turns received control frames into drive commands,
// safely. The same rules as the Rust robot agent (src/agent/watchdog.rs):
// - stop when no valid frame arrived for `deadmanMs` (default 300 ms);
// - ignore frames whose epoch is older than the newest seen (a previous holder's late frames);
// - within an epoch only newer sequence numbers count;
// - a Stop frame (from the SFU, on every lease change or e-stop) stops at once;
// - a lease change announced on the reliable `events` channel (a newer epoch) stops it too: the
//   stop frame travels on the unreliable `control` channel and may be lost;
// - an e-stop latches and holds the robot still until it is cleared;
// - the watchdog outlives a reconnection: it starts still, and keeps its e-stop latch until the
//   new room says what its state is.
//
// Sans-IO: fed bytes, e-stop changes and the time (ms, e.g. performance.now()); returns drive
// commands. Not here: sockets, timers or the DOM (robot.js owns those).

import { decode } from './control_frame.js';

/** @typedef {'frame'|'stop'|'deadman'|'estop'} DriveReason */
/** @typedef {'malformed'|'old_epoch'|'stale'|'estop'} Ignored */

/**
 * One command for the motors.
 * @typedef {object} Drive
 * @property {number} linearX
 * @property {number} linearY
 * @property {number} angularZ
 * @property {number} epoch
 * @property {DriveReason} reason
 */

/**
 * What one frame did: `ignored` says why it was not obeyed; otherwise `drive` is the new command,
 * or null when the command did not change.
 * @typedef {{ignored: Ignored} | {ignored?: undefined, drive: Drive|null}} FrameOutcome
 */

export const DEFAULT_DEADMAN_MS = 300;

/**
 * @param {number} epoch
 * @param {DriveReason} reason
 * @returns {Drive}
 */
function still(epoch, reason) {
  return { linearX: 0, linearY: 0, angularZ: 0, epoch, reason };
}

/**
 * @param {Drive} a
 * @param {Drive} b
 */
function same(a, b) {
  return a.linearX === b.linearX && a.linearY === b.linearY && a.angularZ === b.angularZ
    && a.epoch === b.epoch && a.reason === b.reason;
}

/** @param {Drive} d */
export function isStillDrive(d) {
  return d.linearX === 0 && d.linearY === 0 && d.angularZ === 0;
}

export class Watchdog {
  /** @param {number} [deadmanMs] */
  constructor(deadmanMs = DEFAULT_DEADMAN_MS) {
    this.deadmanMs = deadmanMs;
    /** Newest epoch seen. */
    this.epoch = 0;
    /** @type {number|null} last obeyed seq in `epoch` */
    this.lastSeq = null;
    /** @type {number|null} when the last valid drive frame arrived */
    this.lastValid = null;
    this.estop = false;
    /** @type {Drive} */
    this.current = still(0, 'stop');
  }

  /** @returns {boolean} */
  estopLatched() {
    return this.estop;
  }

  /**
   * Bytes from the `control` channel.
   * @param {ArrayBuffer|ArrayBufferView} bytes
   * @param {number} nowMs
   * @returns {FrameOutcome}
   */
  onFrame(bytes, nowMs) {
    let f;
    try {
      f = decode(bytes);
    } catch {
      return { ignored: 'malformed' };
    }
    if (f.epoch < this.epoch) return { ignored: 'old_epoch' };
    if (f.epoch > this.epoch) {
      this.epoch = f.epoch;
      this.lastSeq = null;
    }
    if (f.kind === 'stop') {
      // The SFU's own stop (lease change or e-stop): obey at once, whatever its seq.
      this.lastValid = null;
      return { drive: this.set(still(f.epoch, 'stop')) };
    }
    if (this.lastSeq !== null && f.seq <= this.lastSeq) return { ignored: 'stale' };
    this.lastSeq = f.seq;
    if (this.estop) return { ignored: 'estop' };
    this.lastValid = nowMs;
    return {
      drive: this.set({
        linearX: f.linearX,
        linearY: f.linearY,
        angularZ: f.angularZ,
        epoch: f.epoch,
        reason: 'frame',
      }),
    };
  }

  /**
   * The room announced a lease change (or told us the lease on joining). A newer epoch stops
   * the robot: the old driver is gone even if its stop frame was lost.
   * @param {number} epoch
   * @returns {Drive|null}
   */
  onLease(epoch) {
    if (epoch <= this.epoch) return null;
    this.epoch = epoch;
    this.lastSeq = null;
    this.lastValid = null;
    return this.set(still(epoch, 'stop'));
  }

  /**
   * The connection to the server was made again: start still, in a room whose epochs may have
   * started over (a restarted server), keeping the e-stop latch until the room says otherwise.
   * @returns {Drive}
   */
  reconnected() {
    this.epoch = 0;
    this.lastSeq = null;
    this.lastValid = null;
    this.current = still(0, this.estop ? 'estop' : 'stop');
    return this.current;
  }

  /**
   * The room's e-stop state changed.
   * @param {boolean} latched
   * @returns {Drive|null}
   */
  onEstop(latched) {
    this.estop = latched;
    if (latched) {
      this.lastValid = null;
      return this.set(still(this.epoch, 'estop'));
    }
    return null;
  }

  /**
   * Time passed: stop if the driver went quiet.
   * @param {number} nowMs
   * @returns {Drive|null}
   */
  poll(nowMs) {
    if (this.lastValid === null) return null;
    if (nowMs - this.lastValid >= this.deadmanMs) {
      this.lastValid = null;
      return this.set(still(this.epoch, 'deadman'));
    }
    return null;
  }

  /** @returns {number|null} when `poll` may next act */
  nextDeadline() {
    return this.lastValid === null ? null : this.lastValid + this.deadmanMs;
  }

  /**
   * Losing the server means losing the driver: stop, whatever the frames said.
   * @returns {Drive|null}
   */
  connectionLost() {
    this.lastValid = null;
    if (isStillDrive(this.current)) return null;
    return this.set(still(this.current.epoch, 'deadman'));
  }

  /**
   * @param {Drive} d
   * @returns {Drive|null}
   */
  set(d) {
    const changed = !same(d, this.current);
    this.current = d;
    return changed ? d : null;
  }
}
