// A robot's live status in words: Online/Offline, battery, e-stop, who is in the room, from
// GET /api/robots/live (the media nodes' reports). `liveBadge` renders one robot's badge;
// `pollLive` fetches every few seconds while the page is shown (and at once when it is shown
// again); `mountRobotStatus` keeps a badge in each robot of a list whose buttons carry
// `data-robot-id` (the home page's robot list), surviving the list being re-rendered.
//
// Every state is said in text (colour only repeats it), so it reads the same to a screen reader,
// in high contrast and in print. Not here: the admin's room list (admin_live.js), the API
// client (api.js).

import { api } from './api.js';
import { h, replace } from './dom.js';

/**
 * @typedef {object} LiveParticipant
 * @property {string} session public session id (s7)
 * @property {'robot'|'doctor'|'observer'} role
 * @property {string} sub
 * @property {string} [name]
 * @property {boolean} driving
 * @property {string} [transport] udp | tcp | relay
 */

/**
 * @typedef {object} LiveStatus
 * @property {string} robot
 * @property {string} [robot_name]
 * @property {boolean} online
 * @property {number} [battery] 0..1
 * @property {{transport?: string, loss?: number, rtt_ms?: number, reported_quality?: number}} [link]
 * @property {{latched: boolean, at_robot: boolean}} estop
 * @property {{id?: string, starts_at: string, ends_at: string, yours: boolean}} [booking]
 * @property {{robot: number, doctors: number, observers: number}} counts
 * @property {boolean} driving
 * @property {LiveParticipant[]} [participants] the booking's people and admins only
 * @property {string} [node] admins
 * @property {string} [updated_at] admins
 */

/** How often a shown page asks again. */
export const POLL_MS = 3000;

/** @returns {Promise<LiveStatus[]>} */
export function fetchLive() {
  return api.request('GET', '/api/robots/live');
}

/**
 * "73%".
 * @param {number} fraction
 */
export function percent(fraction) {
  return `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
}

/**
 * "1 doctor, 2 students" (the robot itself is not counted); "nobody" if empty.
 * @param {LiveStatus['counts']} c
 */
export function whoCount(c) {
  const parts = [];
  if (c.doctors) parts.push(`${c.doctors} doctor${c.doctors === 1 ? '' : 's'}`);
  if (c.observers) parts.push(`${c.observers} student${c.observers === 1 ? '' : 's'}`);
  return parts.length ? parts.join(', ') : 'nobody';
}

/**
 * The link in words: "good link", "weak link (12% loss)", from the node's loss figure, else the
 * robot's own reading; null if nothing is known.
 * @param {LiveStatus['link']} link
 */
export function linkWords(link) {
  if (!link) return null;
  const via = link.transport && link.transport !== 'udp' ? ` via ${link.transport.toUpperCase()}` : '';
  if (typeof link.loss === 'number') {
    const loss = Math.round(link.loss * 100);
    if (link.loss >= 0.1) return `poor link (${loss}% loss)${via}`;
    if (link.loss >= 0.03) return `weak link (${loss}% loss)${via}`;
    return `good link${via}`;
  }
  if (typeof link.reported_quality === 'number') {
    const q = link.reported_quality;
    return `${q >= 0.7 ? 'good' : q >= 0.4 ? 'weak' : 'poor'} link${via}`;
  }
  return via ? `link${via}` : null;
}

/**
 * One robot's badge: state words, each a span with a class for colour.
 * @param {LiveStatus|undefined} s
 * @returns {HTMLElement}
 */
export function liveBadge(s) {
  const el = h('div', { class: 'live-badge', dataset: { liveRobot: s ? s.robot : '' } });
  if (!s) {
    replace(el, h('span', { class: 'live-state unknown' }, 'Status unknown'));
    return el;
  }
  const battery = s.online && typeof s.battery === 'number' ? s.battery : null;
  const link = s.online ? linkWords(s.link) : null;
  const names = s.participants
    ? s.participants.filter((p) => p.role !== 'robot').map((p) => `${p.name || p.role}${p.driving ? ' (driving)' : ''}`)
    : null;
  const inRoom = names ? (names.length ? names.join(', ') : 'nobody') : whoCount(s.counts);
  replace(el,
    h('span', { class: `live-state ${s.online ? 'online' : 'offline'}`, dataset: { state: s.online ? 'online' : 'offline' } },
      s.online ? 'Online' : 'Offline'),
    battery !== null
      ? h('span', { class: `live-battery${battery < 0.2 ? ' low' : ''}`, dataset: { battery: percent(battery) } },
        `Battery ${percent(battery)}${battery < 0.2 ? ' (low)' : ''}`)
      : null,
    link ? h('span', { class: 'live-link' }, link) : null,
    s.estop.latched
      ? h('span', { class: 'live-estop' }, s.estop.at_robot ? 'E-stop pressed at the robot' : 'E-stop latched')
      : null,
    s.online || s.counts.doctors || s.counts.observers
      ? h('span', { class: 'live-who' }, `In the room: ${inRoom}${!names && s.driving ? ' (someone is driving)' : ''}`)
      : null);
  return el;
}

/**
 * Call `onData` with the live list now and every `every` ms while the page is visible; a hidden
 * page stops asking and asks at once when shown again. Errors go to `onError`.
 * @param {(list: LiveStatus[]) => void} onData
 * @param {(err: unknown) => void} [onError]
 * @param {number} [every]
 * @returns {{stop: () => void, refresh: () => Promise<void>}}
 */
export function pollLive(onData, onError = () => {}, every = POLL_MS) {
  let stopped = false;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  let inFlight = false;
  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (document.visibilityState !== 'hidden' && !inFlight) {
      inFlight = true;
      try {
        const list = await fetchLive();
        if (!stopped) onData(list);
      } catch (err) {
        if (!stopped) onError(err);
      } finally {
        inFlight = false;
      }
    }
    if (!stopped) timer = setTimeout(tick, every);
  }
  const onVisible = () => {
    if (document.visibilityState === 'visible') tick();
  };
  document.addEventListener('visibilitychange', onVisible);
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
    refresh: tick,
  };
}

/**
 * Keep a live badge in every item of `list` that holds a `[data-robot-id]` button, refreshed
 * every few seconds; the list may be re-rendered at will (the badges come back).
 * @param {HTMLElement} list
 * @returns {{destroy: () => void}}
 */
export function mountRobotStatus(list) {
  /** @type {Map<string, LiveStatus>} */
  let byRobot = new Map();
  let loaded = false;
  function paint() {
    if (!loaded) return;
    for (const button of list.querySelectorAll('[data-robot-id]')) {
      const id = /** @type {HTMLElement} */ (button).dataset.robotId || '';
      const item = button.closest('li') || button.parentElement;
      if (!item) continue;
      const badge = liveBadge(byRobot.get(id));
      badge.id = `live-${id}`;
      const old = item.querySelector('.live-badge');
      if (old) old.replaceWith(badge);
      else item.append(badge);
      // The robot's button says its state too, for those who tab through the list.
      button.setAttribute('aria-describedby', badge.id);
    }
  }
  // Only the list's own children: the badges live inside them, so painting does not retrigger.
  const observer = new MutationObserver(paint);
  observer.observe(list, { childList: true });
  const poll = pollLive((l) => {
    byRobot = new Map(l.map((s) => [s.robot, s]));
    loaded = true;
    paint();
  });
  return {
    destroy() {
      poll.stop();
      observer.disconnect();
    },
  };
}
