// Keyboard driving for the lease holder: W/S or Up/Down drive forward/back, A/D or Left/Right
// turn, Q/E strafe (holonomic robots), Shift for full speed (otherwise half). Space latches the
// e-stop wherever the focus is, buttons included (it never presses "Leave" or any other button
// instead), except in a text field, a list box or an editable area, where Space is typing.
//
// Keys held are tracked by `KeyboardEvent.code`, so the layout (AZERTY...) does not matter. All
// keys are let go when the window loses focus, so a key released elsewhere cannot stick.
//
// Not here: sending frames (drive.js) or what the e-stop does (consult.js passes `onEstop`).

/** @typedef {import('./drive.js').Axes} Axes */

/** Key code -> axis contribution at full speed. */
const DRIVE_KEYS = /** @type {Record<string, [number, number, number]>} */ ({
  KeyW: [1, 0, 0],
  ArrowUp: [1, 0, 0],
  KeyS: [-1, 0, 0],
  ArrowDown: [-1, 0, 0],
  KeyA: [0, 0, 1],
  ArrowLeft: [0, 0, 1],
  KeyD: [0, 0, -1],
  ArrowRight: [0, 0, -1],
  KeyQ: [0, 1, 0],
  KeyE: [0, -1, 0],
});

/** Speed without Shift. */
export const SLOW = 0.5;

/**
 * Keys typed into these are text, not driving.
 * @param {EventTarget|null} t
 */
function isTextTarget(t) {
  if (!(t instanceof HTMLElement)) return false;
  const tag = t.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable;
}


export class KeyboardInput {
  /**
   * @param {object} [opts]
   * @param {() => void} [opts.onEstop]
   * @param {Window} [opts.target]
   */
  constructor(opts = {}) {
    this.name = 'keyboard';
    /** @type {Set<string>} */
    this.held = new Set();
    this.shift = false;
    this.onEstop = opts.onEstop;
    this.target = opts.target || window;
    /** @param {KeyboardEvent} e */
    this.onDown = (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTextTarget(e.target)) return;
      this.shift = e.shiftKey;
      if (e.code === 'Space') {
        // Also stops a focused button from being pressed by this Space (browsers press it on
        // keyup; the keyup handler below stops that too).
        e.preventDefault();
        if (!e.repeat && this.onEstop) this.onEstop();
        return;
      }
      if (e.code in DRIVE_KEYS) {
        e.preventDefault(); // arrows would scroll the page
        this.held.add(e.code);
      }
    };
    /** @param {KeyboardEvent} e */
    this.onUp = (e) => {
      if (e.code === 'Space' && !isTextTarget(e.target) && !(e.ctrlKey || e.metaKey || e.altKey)) e.preventDefault();
      this.shift = e.shiftKey;
      this.held.delete(e.code);
    };
    this.onBlur = () => this.releaseAll();
    this.target.addEventListener('keydown', this.onDown);
    this.target.addEventListener('keyup', this.onUp);
    this.target.addEventListener('blur', this.onBlur);
  }

  releaseAll() {
    this.held.clear();
    this.shift = false;
  }

  /** @returns {Axes} */
  read() {
    let x = 0;
    let y = 0;
    let z = 0;
    for (const code of this.held) {
      const k = DRIVE_KEYS[code];
      x += k[0];
      y += k[1];
      z += k[2];
    }
    const speed = this.shift ? 1 : SLOW;
    const clamp = (/** @type {number} */ v) => Math.max(-1, Math.min(1, v)) * speed;
    return { x: clamp(x), y: clamp(y), z: clamp(z), active: this.held.size > 0 };
  }

  destroy() {
    this.target.removeEventListener('keydown', this.onDown);
    this.target.removeEventListener('keyup', this.onUp);
    this.target.removeEventListener('blur', this.onBlur);
    this.releaseAll();
  }
}
