// Gamepad driving (the Gamepad API, "standard" mapping): left stick up/down drives, left stick
// sideways strafes, right stick sideways turns. Button B/circle (1) latches the e-stop.
// Polled by the drive loop, as the Gamepad API wants; a pad counts as active only outside the
// dead zone, so a resting stick sends nothing.
//
// Not here: sending frames (drive.js).

/** @typedef {import('./drive.js').Axes} Axes */

export const DEAD_ZONE = 0.15;

/** @param {number|undefined} v */
function dz(v) {
  if (v === undefined || !Number.isFinite(v) || Math.abs(v) < DEAD_ZONE) return 0;
  // Rescale so motion starts at 0 just outside the dead zone.
  return Math.sign(v) * (Math.abs(v) - DEAD_ZONE) / (1 - DEAD_ZONE);
}

export class GamepadInput {
  /**
   * @param {object} [opts]
   * @param {() => void} [opts.onEstop]
   */
  constructor(opts = {}) {
    this.name = 'gamepad';
    this.onEstop = opts.onEstop;
    this.estopWasDown = false;
    /** @type {string|null} name of the pad in use, for the UI */
    this.connected = null;
  }

  /** @returns {Axes} */
  read() {
    const pads = typeof navigator.getGamepads === 'function' ? navigator.getGamepads() : [];
    const pad = Array.from(pads || []).find((p) => p && p.connected) || null;
    this.connected = pad ? pad.id : null;
    if (!pad) return { x: 0, y: 0, z: 0, active: false };
    const estopDown = !!(pad.buttons[1] && pad.buttons[1].pressed);
    if (estopDown && !this.estopWasDown && this.onEstop) this.onEstop();
    this.estopWasDown = estopDown;
    const x = -dz(pad.axes[1]);
    const y = -dz(pad.axes[0]);
    const z = -dz(pad.axes[2]);
    return { x, y, z, active: x !== 0 || y !== 0 || z !== 0 };
  }
}
