// The doctor's console (index.html): routing between the login page, the home page (robots,
// bookings, calendar) and the consult view, by the URL fragment:
//   #/                 home
//   #/consult/<id>     the consult view of booking <id>
//   #/admin/<section>  the admin console (admin.js): people, robots, live rooms, audit log
// Not logged in: the login page, whatever the fragment (it is kept, so a shared link works after
// logging in).
//
// Not here: the pages themselves (login.js, calendar.js, consult.js) or the API (api.js).

import { api } from './api.js';
import { $, h, replace } from './dom.js';
import { mountEntry } from './setup.js';
import { mountHome } from './calendar.js';
import { mountConsult } from './consult.js';
import { mountAdmin } from './admin.js';

/**
 * A mounted page; `destroy` must release everything it started (sessions, timers, listeners).
 * @typedef {{destroy: () => void}} View
 */

/** @type {View|null} */
let current = null;

function renderNav() {
  const nav = $('#nav');
  const user = api.user;
  if (!user) {
    replace(nav);
    return;
  }
  replace(nav,
    user.role === 'admin' ? h('a', { href: '#/admin/people', id: 'nav-admin', class: 'nav-link' }, 'Admin') : null,
    user.role === 'admin' ? h('a', { href: '#/admin/live', id: 'nav-live', class: 'nav-link' }, 'Live rooms') : null,
    h('span', { class: 'who', id: 'whoami' }, h('span', { class: 'name' }, user.display_name), ' ', h('span', { class: `badge ${user.role}` }, user.role)),
    h('button', {
      type: 'button',
      class: 'small',
      id: 'logout',
      onclick: async () => {
        await api.logout();
        location.hash = '#/';
      },
    }, 'Log out'));
}

function route() {
  if (current) {
    current.destroy();
    current = null;
  }
  renderNav();
  const main = $('#main');
  replace(main);
  if (!api.user) {
    current = mountEntry(main);
    return;
  }
  const hash = location.hash.replace(/^#/, '');
  const consult = /^\/consult\/([0-9a-fA-F-]{1,64})$/.exec(hash);
  if (consult) {
    current = mountConsult(main, consult[1]);
  } else if (/^\/admin(\/|\?|$)/.test(hash)) {
    current = mountAdmin(main, hash);
  } else {
    current = mountHome(main);
  }
  // Move focus to the new page for screen readers and keyboard users.
  if (document.activeElement === document.body || !main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

window.addEventListener('hashchange', route);
api.addEventListener('auth', route);
route();
