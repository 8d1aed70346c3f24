// The on-screen joystick: a round pad with a knob, driven by pointer events, so mouse, pen and
// touch all work (one pointer at a time, captured while it is down). Up drives forward, sideways
// turns; the knob springs back to the centre when let go.
//
// Not here: sending frames (drive.js). The pad only reports what the hand does.

import { h } from './dom.js';

/** @typedef {import('./drive.js').Axes} Axes */

/** Inner part of the pad that reads as zero, as a fraction of the radius. */
const DEAD_ZONE = 0.08;

export class Joystick {
  constructor() {
    this.name = 'joystick';
    /** @type {number|null} */
    this.pointerId = null;
    /** Deflection in [-1, 1]: right and up positive. */
    this.dx = 0;
    this.dy = 0;
    this.knob = h('div', { class: 'joystick-knob', 'aria-hidden': 'true' });
    this.el = h('div', {
      class: 'joystick',
      id: 'joystick',
      role: 'application',
      tabindex: '0',
      'aria-label': 'Drive joystick. Drag up to drive forward, sideways to turn. Keyboard: W A S D or the arrow keys.',
      'aria-roledescription': 'joystick',
    }, h('div', { class: 'joystick-ring', 'aria-hidden': 'true' }), this.knob);

    this.el.addEventListener('pointerdown', (e) => {
      if (this.pointerId !== null) return;
      this.pointerId = e.pointerId;
      this.el.setPointerCapture(e.pointerId);
      this.el.classList.add('active');
      this.move(e);
      e.preventDefault();
    });
    this.el.addEventListener('pointermove', (e) => {
      if (e.pointerId === this.pointerId) this.move(e);
    });
    const end = (/** @type {PointerEvent} */ e) => {
      if (e.pointerId !== this.pointerId) return;
      this.release();
    };
    this.el.addEventListener('pointerup', end);
    this.el.addEventListener('pointercancel', end);
    this.el.addEventListener('lostpointercapture', end);
  }

  /** @param {PointerEvent} e */
  move(e) {
    const r = this.el.getBoundingClientRect();
    const radius = Math.max(1, Math.min(r.width, r.height) / 2);
    let dx = (e.clientX - (r.left + r.width / 2)) / radius;
    let dy = -(e.clientY - (r.top + r.height / 2)) / radius;
    const len = Math.hypot(dx, dy);
    if (len > 1) {
      dx /= len;
      dy /= len;
    }
    this.dx = dx;
    this.dy = dy;
    this.knob.style.transform = `translate(${(dx * 38).toFixed(1)}%, ${(-dy * 38).toFixed(1)}%)`;
  }

  release() {
    this.pointerId = null;
    this.dx = 0;
    this.dy = 0;
    this.knob.style.transform = '';
    this.el.classList.remove('active');
  }

  /** @returns {Axes} */
  read() {
    if (this.pointerId === null) return { x: 0, y: 0, z: 0, active: false };
    const dead = (/** @type {number} */ v) => (Math.abs(v) < DEAD_ZONE ? 0 : v);
    // Pushing right turns clockwise, which is negative angular z.
    return { x: dead(this.dy), y: 0, z: -dead(this.dx), active: true };
  }
}
