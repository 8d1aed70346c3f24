// Building DOM nodes from code without innerHTML, so text from the server (names, notes) can never
// become markup. `h('button', {class: 'x', onclick: f}, 'Label')`.
//
// Not here: any page or widget (each has its own module).

/**
 * @typedef {string|number|Node|null|undefined|false} Child
 * @typedef {Record<string, unknown>} Attrs
 */

/**
 * Create an element. Attributes: `class`, `text`, `on<event>` handlers, `dataset` object,
 * booleans (present when true), everything else via setAttribute.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs|null} [attrs]
 * @param {...(Child|Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else if (k === 'dataset' && typeof v === 'object') {
      for (const [dk, dv] of Object.entries(/** @type {Record<string, string>} */ (v))) el.dataset[dk] = dv;
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'style') {
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      el.style.cssText = String(v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else if (k === 'value' && 'value' in el) {
      /** @type {any} */ (el).value = String(v);
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {(Child|Child[])[]} children
 */
function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Replace all children of `el`.
 * @param {Element} el
 * @param {...(Child|Child[])} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Look up an element that the page's HTML must contain.
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {HTMLElement}
 */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!(el instanceof HTMLElement)) throw new Error(`missing element ${selector}`);
  return el;
}

/**
 * Does this browser's locale write the time on a 12-hour clock ("2:05 PM") or a 24-hour one
 * ("14:05")? Every time on every page follows it, so a page never mixes the two (issue 17).
 * @returns {boolean}
 */
export function uses12Hour() {
  return new Intl.DateTimeFormat(undefined, { hour: 'numeric' }).resolvedOptions().hourCycle?.startsWith('h1') ?? false;
}

/**
 * Hour and minute options in the locale's clock: "14:05" (zero-padded, like a 24-hour clock
 * face) or "2:05 PM".
 * @param {boolean} [seconds]
 * @returns {Intl.DateTimeFormatOptions}
 */
function clockOptions(seconds = false) {
  const h12 = uses12Hour();
  return {
    hour: h12 ? 'numeric' : '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hourCycle: h12 ? 'h12' : 'h23',
  };
}

/**
 * Local date and time, short: "Tue 24 Nov, 14:05" (or "Tue, Nov 24, 2:05 PM").
 * @param {string|Date} t
 */
export function formatDateTime(t) {
  const d = typeof t === 'string' ? new Date(t) : t;
  return d.toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', ...clockOptions() });
}

/**
 * Local time, short: "14:05" (or "2:05 PM").
 * @param {string|Date} t
 */
export function formatTime(t) {
  const d = typeof t === 'string' ? new Date(t) : t;
  return d.toLocaleTimeString(undefined, clockOptions());
}

/**
 * A whole hour for the calendar's hour column, in the same clock: "14:00" (or "2 PM").
 * @param {number} hour 0-23, local
 */
export function formatHour(hour) {
  const d = new Date(2000, 0, 1, hour);
  return uses12Hour() ? d.toLocaleTimeString(undefined, { hour: 'numeric', hourCycle: 'h12' }) : formatTime(d);
}

/**
 * Local time with seconds, for moments ("lost control at 14:05:09").
 * @param {number|Date} t Date.now() ms or a Date
 */
export function formatClock(t) {
  const d = typeof t === 'number' ? new Date(t) : t;
  return d.toLocaleTimeString(undefined, clockOptions(true));
}

/**
 * A countdown to the second: "4 min 05 s", "35 s", "1 h 02 min".
 * @param {number} ms
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m) return `${m} min ${String(sec).padStart(2, '0')} s`;
  return `${sec} s`;
}

/**
 * Set an element's text only when it changes: a live region rewritten with the same words is
 * read out again by screen readers.
 * @param {HTMLElement} el
 * @param {string} text
 */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * A short message at the bottom of the page (the page must have `#toast`, role=status).
 * @param {string} text
 */
export function toast(text) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(Number(el.dataset.timer || 0));
  el.dataset.timer = String(setTimeout(() => el.classList.remove('show'), 4000));
}

/**
 * "in 5 min", "in 2 h 10 min".
 * @param {number} ms
 */
export function formatDuration(ms) {
  const min = Math.max(0, Math.ceil(ms / 60_000));
  if (min < 60) return `${min} min`;
  const hours = Math.floor(min / 60);
  const rest = min % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}
