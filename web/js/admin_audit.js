// Admin console, Audit log: filter by kind (or a family of kinds), by who acted, by robot and by
// time; page from the newest back; download what the filter selects as CSV. Each row names the
// person and the robot it concerns (as they are called now) and links to the log filtered by
// them.
//
// The filters live in the address (`#/admin/audit?kind=…&actor=…&robot=…&from=…&to=…`), so a
// filtered view is a link to share or bookmark, and the back button undoes a filter.
//
// Not here: the API calls (admin_api.js), the CSV format (the server writes it).

import { h, replace, toast } from './dom.js';
import { auditPage, auditCsv, listUsers, listRobots } from './admin_api.js';
import { errorText } from './admin_dialogs.js';

/** @typedef {import('./admin_api.js').AuditEntry} AuditEntry */
/** @typedef {import('./admin_api.js').AuditFilter} AuditFilter */
/** @typedef {{destroy: () => void}} View */

const PAGE = 50;

/** Kinds to choose from: families first, then single kinds, in words. */
const KINDS = [
  ['login.*', 'Logins (all)'], ['login.ok', 'Login'], ['login.failed', 'Failed login'], ['logout', 'Logout'],
  ['user.*', 'People (all)'], ['user.created', 'Person added'], ['user.updated', 'Person changed'],
  ['user.password_reset', 'Password reset'], ['user.disabled', 'Person disabled'], ['user.enabled', 'Person enabled'],
  ['robot.*', 'Robots (all)'], ['robot.created', 'Robot registered'], ['robot.updated', 'Robot changed'],
  ['robot.credential_rotated', 'Robot credential replaced'], ['robot.retired', 'Robot retired'],
  ['booking.*', 'Bookings (all)'], ['booking.created', 'Booking made'], ['booking.cancelled', 'Booking cancelled'],
  ['invitation.*', 'Invitations (all)'], ['token.*', 'Room tokens (all)'], ['token.join', 'Joined a room'], ['token.publish', 'Robot connected'],
  ['room.*', 'Room events (all)'], ['room.lease_revoked_by_admin', 'Control revoked by an administrator'],
  ['setup.completed', 'First-run setup'], ['audit.exported', 'Audit log exported'],
];

/** @param {string} kind */
function kindLabel(kind) {
  const known = KINDS.find(([k]) => k === kind);
  return known ? known[1] : kind;
}

/**
 * An RFC 3339 instant as a datetime-local input's value (local time, minutes).
 * @param {string} iso
 */
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * A datetime-local input's value as RFC 3339 (UTC), or ''.
 * @param {string} local
 */
function fromLocalInput(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/**
 * The address of the log filtered by `f`.
 * @param {AuditFilter} f
 */
export function auditHref(f) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, String(v));
  const s = p.toString();
  return `#/admin/audit${s ? `?${s}` : ''}`;
}

/**
 * @param {HTMLElement} root
 * @param {URLSearchParams} params the filters from the address
 * @returns {View}
 */
export function mountAudit(root, params) {
  /** @type {AuditFilter} */
  const filter = {};
  for (const k of /** @type {(keyof AuditFilter)[]} */ (['kind', 'actor', 'robot', 'from', 'to'])) {
    const v = params.get(k);
    if (v) filter[k] = v;
  }
  let destroyed = false;
  /** Cursors of the pages before this one (newest first). @type {(number|undefined)[]} */
  const back = [];
  /** @type {number|undefined} */
  let cursor;
  /** @type {number|null} */
  let nextCursor = null;
  let shownFrom = 0;

  const fKind = h('select', { id: 'audit-kind', name: 'kind' },
    h('option', { value: '' }, 'Anything'),
    KINDS.map(([v, label]) => h('option', { value: v }, label)));
  if (filter.kind && !KINDS.some(([k]) => k === filter.kind)) fKind.append(h('option', { value: filter.kind }, filter.kind));
  fKind.value = filter.kind || '';
  const fActor = h('select', { id: 'audit-actor', name: 'actor' }, h('option', { value: '' }, 'Anybody'));
  const fRobot = h('select', { id: 'audit-robot', name: 'robot' }, h('option', { value: '' }, 'Any robot'));
  const fFrom = h('input', { id: 'audit-from', name: 'from', type: 'datetime-local', value: filter.from ? toLocalInput(filter.from) : '' });
  const fTo = h('input', { id: 'audit-to', name: 'to', type: 'datetime-local', value: filter.to ? toLocalInput(filter.to) : '' });

  const form = h('form', {
    class: 'filters', role: 'search', id: 'audit-filters', 'aria-label': 'Filter the audit log',
    onsubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      location.hash = auditHref({
        kind: fKind.value, actor: fActor.value, robot: fRobot.value,
        from: fromLocalInput(fFrom.value), to: fromLocalInput(fTo.value),
      });
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'audit-kind' }, 'What'), fKind),
  h('div', { class: 'field' }, h('label', { for: 'audit-actor' }, 'Who'), fActor),
  h('div', { class: 'field' }, h('label', { for: 'audit-robot' }, 'Robot'), fRobot),
  h('div', { class: 'field' }, h('label', { for: 'audit-from' }, 'From'), fFrom),
  h('div', { class: 'field' }, h('label', { for: 'audit-to' }, 'Until'), fTo),
  h('div', { class: 'field buttons' },
    h('button', { type: 'submit', class: 'primary', id: 'audit-apply' }, 'Filter'),
    h('a', { href: '#/admin/audit', class: 'button', id: 'audit-clear' }, 'Clear')));

  const status = h('p', { id: 'audit-status', role: 'status' }, 'Loading…');
  const listError = h('p', { class: 'error', role: 'alert', id: 'audit-error' });
  const tbody = h('tbody', { id: 'audit-rows' });
  const newer = h('button', { type: 'button', id: 'audit-newer', onclick: () => { cursor = back.pop(); load(); } }, 'Newer');
  const older = h('button', { type: 'button', id: 'audit-older', onclick: () => { if (nextCursor !== null) { back.push(cursor); cursor = nextCursor; load(); } } }, 'Older');
  const csv = h('button', { type: 'button', id: 'audit-csv', onclick: download }, 'Download CSV');

  root.append(h('section', { class: 'panel', 'aria-labelledby': 'audit-title' },
    h('div', { class: 'section-head' },
      h('h2', { id: 'audit-title' }, 'Audit log'),
      csv),
    form,
    status,
    listError,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'admin-table audit-table', id: 'audit-table' },
        h('caption', { class: 'visually-hidden' }, 'Audit entries, newest first'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'What'), h('th', { scope: 'col' }, 'Who'),
          h('th', { scope: 'col' }, 'Robot'), h('th', { scope: 'col' }, 'Details'))),
        tbody)),
    h('div', { class: 'pager' }, newer, older)));

  // The choices for "who" and "robot": everyone and every robot, retired ones too.
  Promise.all([listUsers({ limit: 1000, offset: 0 }), listRobots(true)]).then(([{ users }, robots]) => {
    if (destroyed) return;
    fActor.append(
      h('optgroup', { label: 'People' }, users.map((u) => h('option', { value: u.id }, `${u.display_name} (${u.username})`))),
      h('optgroup', { label: 'Robots' }, robots.map((r) => h('option', { value: r.id }, r.name))));
    fRobot.append(...robots.map((r) => h('option', { value: r.id }, r.retired_at ? `${r.name} (retired)` : r.name)));
    for (const [select, value] of /** @type {[HTMLSelectElement, string|undefined][]} */ ([[fActor, filter.actor], [fRobot, filter.robot]])) {
      if (value && !Array.from(select.options).some((o) => o.value === value)) select.append(h('option', { value }, value));
      select.value = value || '';
    }
  }).catch((err) => { listError.textContent = errorText(err); });

  async function load() {
    listError.textContent = '';
    try {
      const page = await auditPage(filter, { limit: PAGE, before: cursor });
      if (destroyed) return;
      shownFrom = back.length * PAGE;
      replace(tbody, page.entries.map(row));
      nextCursor = page.next_before;
      const filtered = Object.keys(filter).length > 0;
      status.textContent = page.total === 0
        ? (filtered ? 'No entries match the filter.' : 'The log is empty.')
        : `${page.total} ${page.total === 1 ? 'entry' : 'entries'}${filtered ? ' match' : ''}; showing ${shownFrom + 1}–${shownFrom + page.entries.length}, newest first.`;
      newer.disabled = back.length === 0;
      older.disabled = nextCursor === null;
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  /**
   * A link to the log of one person or robot (the other filters are dropped: "everything
   * about them").
   * @param {Partial<AuditFilter>} only
   * @param {string} text
   * @param {string} label
   */
  function filterLink(only, text, label) {
    return h('a', { href: auditHref(only), 'aria-label': label }, text);
  }

  /** @param {AuditEntry} e */
  function row(e) {
    /** @type {(string|Node)[]} */
    const who = e.actor
      ? [filterLink({ actor: e.actor }, e.actor_name || shortId(e.actor), `Entries by ${e.actor_name || e.actor}`)]
      : [h('span', { class: 'muted' }, '—')];
    if (e.actor_kind) who.push(' ', h('span', { class: `badge ${e.actor_kind}` }, e.actor_kind));
    const robot = e.room
      ? filterLink({ robot: e.room }, e.robot_name || shortId(e.room), `Entries about ${e.robot_name || e.room}`)
      : h('span', { class: 'muted' }, '—');
    return h('tr', { dataset: { entryId: String(e.id), kind: e.kind } },
      h('td', { class: 'when' }, h('time', { datetime: e.at }, new Date(e.at).toLocaleString())),
      h('td', {}, kindLabel(e.kind), h('br'), h('code', { class: 'kind' }, e.kind)),
      h('td', { class: 'who' }, who),
      h('td', { class: 'robot' }, robot),
      h('td', { class: 'detail' }, details(e.detail)));
  }

  /** @param {Record<string, unknown>} detail */
  function details(detail) {
    const entries = Object.entries(detail || {}).filter(([, v]) => v !== null && v !== undefined);
    if (!entries.length) return h('span', { class: 'muted' }, '—');
    return h('dl', { class: 'detail-list' }, entries.flatMap(([k, v]) => [
      h('dt', {}, k.replaceAll('_', ' ')),
      h('dd', {}, k === 'user' && typeof v === 'string'
        ? filterLink({ actor: v }, shortId(v), `Entries by the person ${v}`)
        : typeof v === 'string' ? v : JSON.stringify(v)),
    ]));
  }

  async function download() {
    csv.disabled = true;
    try {
      const { blob, filename, truncated } = await auditCsv(filter);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: filename, class: 'visually-hidden' }, filename);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      toast(truncated ? 'Downloaded the newest 50,000 entries; narrow the time range for the rest.' : `Downloaded ${filename}.`);
    } catch (err) {
      listError.textContent = errorText(err);
    } finally {
      csv.disabled = false;
    }
  }

  load();
  return { destroy() { destroyed = true; } };
}

/** @param {string} id */
function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
