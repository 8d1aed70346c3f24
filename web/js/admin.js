// The admin console's frame: the section links (People, Robots, Live rooms, Audit log) and the
// routing of `#/admin/<section>?<filters>` to each section's page; a "not allowed" page for
// anyone who is not an administrator (the API refuses them too; this only says so in words).
//
// Sections are plain links in a <nav>, not ARIA tabs: each is its own address (bookmarkable, the
// back button works, the audit log's filters live in the address), and Tab moves through them
// like any links.
//
// Not here: the sections themselves (admin_people.js, admin_robots.js, admin_live.js,
// admin_audit.js).

import { api } from './api.js';
import { h } from './dom.js';
import { mountPeople } from './admin_people.js';
import { mountRobots } from './admin_robots.js';
import { mountAudit } from './admin_audit.js';
import { mountLiveRooms } from './admin_live.js';

/** @typedef {{destroy: () => void}} View */

export const SECTIONS = [
  { id: 'people', label: 'People' },
  { id: 'robots', label: 'Robots' },
  { id: 'live', label: 'Live rooms' },
  { id: 'audit', label: 'Audit log' },
];

/**
 * The console's heading and section links, with `current` marked.
 * @param {string} current
 */
export function adminHeader(current) {
  return h('div', { class: 'admin-head' },
    h('h1', { id: 'admin-title' }, 'Administration'),
    h('nav', { class: 'admin-tabs', 'aria-label': 'Administration' },
      h('ul', {}, SECTIONS.map((s) => h('li', {},
        h('a', { href: `#/admin/${s.id}`, id: `admin-tab-${s.id}`, 'aria-current': s.id === current ? 'page' : undefined }, s.label))))));
}

/**
 * Mount the admin page for `path` (the fragment without `#`, e.g. `/admin/audit?kind=room.*`).
 * @param {HTMLElement} main
 * @param {string} path
 * @returns {View}
 */
export function mountAdmin(main, path) {
  const m = /^\/admin(?:\/([a-z]+))?\/?(?:\?(.*))?$/.exec(path);
  const section = (m && m[1]) || 'people';
  const params = new URLSearchParams((m && m[2]) || '');
  const user = api.user;
  if (!user || user.role !== 'admin') {
    main.append(h('section', { class: 'panel not-allowed', id: 'not-allowed', 'aria-labelledby': 'not-allowed-title' },
      h('h1', { id: 'not-allowed-title' }, 'Not allowed'),
      h('p', {}, 'The administration pages are for administrators. Ask one of them if you need an account changed or a robot registered.'),
      h('p', {}, h('a', { href: '#/' }, 'Back to your bookings'))));
    document.title = 'Not allowed · Bedside';
    return { destroy() {} };
  }
  const label = (SECTIONS.find((s) => s.id === section) || { label: 'Administration' }).label;
  document.title = `${label} · Administration · Bedside`;
  const body = h('div', { class: 'admin-body', id: `admin-${section}` });
  main.append(h('div', { class: 'admin' }, adminHeader(section), body));
  switch (section) {
    case 'people': return mountPeople(body);
    case 'robots': return mountRobots(body);
    case 'live': return mountLiveRooms(body);
    case 'audit': return mountAudit(body, params);
    default:
      body.append(h('p', { class: 'panel' }, 'There is no such page here. ', h('a', { href: '#/admin/people' }, 'Go to People'), '.'));
      return { destroy() {} };
  }
}
