// The administrator's "Live rooms" page (#/admin/live): every robot's room that a media node
// holds now, who is in it (names, roles, sessions, how they connect, who drives), and two
// actions, each behind a confirmation dialog: revoke the control lease (POST
// /api/robots/{id}/lease/revoke) and end one participant's session (POST
// /api/rooms/{robot}/participants/{session}/end). Both are audited by the API.
//
// The list refreshes every few seconds while the page is shown, re-rendered only when it changed
// and with the keyboard focus kept on the same control. Not here: the data's meaning
// (robot_status.js renders the state words), the People/Robots/Audit pages.

import { api } from './api.js';
import { formatClock, h, replace, setText, toast } from './dom.js';
import { liveBadge, POLL_MS } from './robot_status.js';

/** @typedef {import('./robot_status.js').LiveStatus} LiveStatus */
/** @typedef {import('./robot_status.js').LiveParticipant} LiveParticipant */

const ROLE_WORDS = { robot: 'Robot', doctor: 'Doctor', observer: 'Student' };

/**
 * Ask before acting: a modal dialog (focus stays inside, Escape cancels), labelled by its title.
 * Resolves true when confirmed.
 * @param {string} title
 * @param {string} text
 * @param {string} confirmLabel
 * @returns {Promise<boolean>}
 */
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const back = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-text' }, text),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'confirm-no', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', id: 'confirm-yes', onclick: () => close(true) }, confirmLabel)));
    let done = false;
    /** @param {boolean} yes */
    function close(yes) {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      if (back && back.isConnected) back.focus();
      resolve(yes);
    }
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    // The safe choice has the focus: Enter by habit cancels.
    /** @type {HTMLElement} */ (dialog.querySelector('#confirm-no')).focus();
  });
}

/**
 * Mount the Live rooms page in `container`.
 * @param {HTMLElement} container
 * @returns {{destroy: () => void}}
 */
export function mountLiveRooms(container) {
  const status = h('p', { class: 'muted', id: 'live-updated', role: 'status' }, 'Loading…');
  const list = h('div', { id: 'live-rooms', class: 'live-rooms' });
  replace(container,
    h('section', { class: 'panel live-page', 'aria-labelledby': 'live-title' },
      h('h2', { id: 'live-title' }, 'Live rooms'),
      h('p', { class: 'hint' }, 'Every robot room a media node holds now, refreshed every few seconds. Revoking the lease stops the robot and takes control away from the current booking; ending a session disconnects one person, who is told an administrator ended it.'),
      status,
      list));

  let destroyed = false;
  let busy = false;
  let shown = '';
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;

  async function load() {
    clearTimeout(timer);
    if (destroyed) return;
    if (!busy && document.visibilityState !== 'hidden') {
      try {
        /** @type {LiveStatus[]} */
        const rooms = await api.request('GET', '/api/rooms');
        if (destroyed) return;
        render(rooms);
        setText(status, `${rooms.length} live room${rooms.length === 1 ? '' : 's'} · updated ${formatClock(Date.now())}`);
      } catch (err) {
        if (destroyed) return;
        setText(status, `Could not load live rooms: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (!destroyed) timer = setTimeout(load, POLL_MS);
  }

  /** @param {LiveStatus[]} rooms */
  function render(rooms) {
    const key = JSON.stringify(rooms.map((r) => ({ ...r, updated_at: undefined })));
    if (key === shown) return;
    shown = key;
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.id : '';
    if (!rooms.length) {
      replace(list, h('p', { class: 'muted', id: 'no-live-rooms' }, 'No robot room is live right now.'));
    } else {
      replace(list, rooms.map(roomCard));
    }
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  /** @param {LiveStatus} r */
  function roomCard(r) {
    const name = r.robot_name || 'Robot';
    const titleId = `room-${r.robot}`;
    const people = r.participants || [];
    return h('article', { class: 'live-room', 'aria-labelledby': titleId, dataset: { room: r.robot } },
      h('div', { class: 'live-room-head' },
        h('h2', { id: titleId }, name),
        h('button', {
          type: 'button',
          class: 'danger small',
          id: `revoke-${r.robot}`,
          'aria-label': `Revoke lease in ${name}`,
          onclick: () => revoke(r.robot, name),
        }, 'Revoke lease')),
      liveBadge(r),
      h('p', { class: 'muted live-node' }, `Media node ${r.node || 'unknown'}`),
      h('table', { class: 'live-people' },
        h('caption', { class: 'sr-only' }, `People in ${name}`),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Role'),
          h('th', { scope: 'col' }, 'Session'),
          h('th', { scope: 'col' }, 'Connection'),
          h('th', { scope: 'col' }, 'Control'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', {}, people.map((p) => personRow(r, name, p)))));
  }

  /**
   * @param {LiveStatus} r
   * @param {string} robotName
   * @param {LiveParticipant} p
   */
  function personRow(r, robotName, p) {
    const who = p.name || (p.role === 'robot' ? robotName : 'Unknown user');
    return h('tr', { dataset: { session: p.session, sub: p.sub } },
      h('th', { scope: 'row' }, who),
      h('td', {}, ROLE_WORDS[p.role] || p.role),
      h('td', {}, h('code', {}, p.session)),
      h('td', {}, p.transport ? p.transport.toUpperCase() : 'connecting'),
      h('td', {}, p.driving ? h('span', { class: 'badge driving' }, 'Driving') : '—'),
      h('td', {}, h('button', {
        type: 'button',
        class: 'small',
        id: `end-${r.robot}-${p.session}`,
        'aria-label': `End session of ${who} in ${robotName}`,
        onclick: () => endSession(r.robot, robotName, p, who),
      }, 'End session')));
  }

  /**
   * @param {string} robot
   * @param {string} name
   */
  async function revoke(robot, name) {
    busy = true;
    try {
      const yes = await confirmDialog(`Revoke the lease in ${name}?`,
        'The robot stops at once and whoever drives loses control; the current booking cannot drive again.',
        'Revoke lease');
      if (!yes) return;
      await api.request('POST', `/api/robots/${encodeURIComponent(robot)}/lease/revoke`);
      toast(`Lease revoked in ${name}.`);
    } catch (err) {
      toast(`Could not revoke the lease: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      busy = false;
      shown = '';
      load();
    }
  }

  /**
   * @param {string} robot
   * @param {string} robotName
   * @param {LiveParticipant} p
   * @param {string} who
   */
  async function endSession(robot, robotName, p, who) {
    busy = true;
    try {
      const yes = await confirmDialog(`End ${who}'s session?`,
        `${who} is disconnected from ${robotName} and told an administrator ended the session. They can join again with a new link while their booking allows.`,
        'End session');
      if (!yes) return;
      await api.request('POST', `/api/rooms/${encodeURIComponent(robot)}/participants/${encodeURIComponent(p.session)}/end`);
      toast(`${who}'s session was ended.`);
    } catch (err) {
      toast(`Could not end the session: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      busy = false;
      shown = '';
      load();
    }
  }

  const onVisible = () => {
    if (document.visibilityState === 'visible') load();
  };
  document.addEventListener('visibilitychange', onVisible);
  load();
  return {
    destroy() {
      destroyed = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
