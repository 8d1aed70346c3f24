// Admin console, People: find people (search by name or username, filter by role and state,
// page through), add one (doctor, student or administrator) with a generated first password
// shown once, change a name or role, reset a password (shown once), disable and enable.
//
// Nobody's password is shown after the dialog that created it closes. Disabling says what it
// does before it does it: they are logged out and any consult they are in ends.
//
// Not here: the API calls (admin_api.js), dialogs (admin_dialogs.js), the frame (admin.js).

import { api } from './api.js';
import { h, replace, toast } from './dom.js';
import { listUsers, createUser, updateUser, resetPassword, setDisabled } from './admin_api.js';
import { confirmDialog, formDialog, secretDialog, errorText } from './admin_dialogs.js';

/** @typedef {import('./admin_api.js').AdminUser} AdminUser */
/** @typedef {{destroy: () => void}} View */

const PAGE = 25;
const ROLES = [['doctor', 'Doctor'], ['student', 'Student'], ['admin', 'Administrator']];

/**
 * @param {string} id
 * @param {string} [value]
 * @param {boolean} [any] offer "All roles"
 */
function roleSelect(id, value = 'doctor', any = false) {
  const select = h('select', { id, name: id },
    any ? h('option', { value: '' }, 'All roles') : null,
    ROLES.map(([v, label]) => h('option', { value: v }, label)));
  select.value = value;
  return select;
}

/**
 * @param {HTMLElement} root
 * @returns {View}
 */
export function mountPeople(root) {
  const state = { q: '', role: '', disabled: '', offset: 0 };
  let destroyed = false;
  const me = api.user ? api.user.id : '';

  // --- add a person ---
  const fUser = h('input', { id: 'new-username', name: 'username', required: true, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', minlength: '3', maxlength: '64', 'aria-describedby': 'new-username-hint' });
  const fName = h('input', { id: 'new-display-name', name: 'display-name', required: true, autocomplete: 'off', maxlength: '100' });
  const fRole = roleSelect('new-role');
  const createError = h('p', { class: 'error', role: 'alert', id: 'new-person-error' });
  const createButton = h('button', { type: 'submit', class: 'primary', id: 'new-person-submit' }, 'Add person');
  const createForm = h('form', {
    class: 'panel', id: 'new-person', 'aria-labelledby': 'new-person-title',
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      createError.textContent = '';
      createButton.disabled = true;
      try {
        const created = await createUser({ username: fUser.value.trim(), display_name: fName.value.trim(), role: /** @type {any} */ (fRole.value) });
        createForm.reset();
        await secretDialog({
          title: `${created.display_name} can now log in`,
          intro: [`Give ${created.display_name} their username and first password, in person or by a channel you trust.`],
          items: [
            { id: 'secret-username', label: 'Username', value: created.username },
            { id: 'secret-password', label: 'First password', value: created.password },
          ],
        });
        state.q = created.username;
        state.offset = 0;
        syncFilters();
        await load();
        fUser.focus();
      } catch (err) {
        createError.textContent = errorText(err);
      } finally {
        createButton.disabled = false;
      }
    },
  },
  h('h2', { id: 'new-person-title' }, 'Add a person'),
  h('div', { class: 'row' },
    h('div', { class: 'field' }, h('label', { for: 'new-username' }, 'Username'), fUser,
      h('p', { class: 'hint', id: 'new-username-hint' }, 'a-z, 0-9, . _ @ -')),
    h('div', { class: 'field' }, h('label', { for: 'new-display-name' }, 'Name shown to others'), fName),
    h('div', { class: 'field' }, h('label', { for: 'new-role' }, 'Role'), fRole),
    h('div', { class: 'field' }, createButton)),
  h('p', { class: 'hint' }, 'A first password is generated and shown once.'),
  createError);

  // --- find people ---
  const fQ = h('input', { id: 'people-q', name: 'q', type: 'search', autocomplete: 'off', maxlength: '100' });
  const fFilterRole = roleSelect('people-role', '', true);
  const fState = h('select', { id: 'people-state', name: 'state' },
    h('option', { value: '' }, 'Enabled and disabled'),
    h('option', { value: 'false' }, 'Enabled only'),
    h('option', { value: 'true' }, 'Disabled only'));
  const syncFilters = () => {
    fQ.value = state.q;
    fFilterRole.value = state.role;
    fState.value = state.disabled;
  };
  const search = h('form', {
    class: 'filters', role: 'search', id: 'people-search', 'aria-label': 'Find people',
    onsubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      state.q = fQ.value.trim();
      state.role = fFilterRole.value;
      state.disabled = fState.value;
      state.offset = 0;
      load();
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'people-q' }, 'Name or username'), fQ),
  h('div', { class: 'field' }, h('label', { for: 'people-role' }, 'Role'), fFilterRole),
  h('div', { class: 'field' }, h('label', { for: 'people-state' }, 'State'), fState),
  h('div', { class: 'field' }, h('button', { type: 'submit', id: 'people-search-submit' }, 'Search')));
  for (const select of [fFilterRole, fState]) select.addEventListener('change', () => search.requestSubmit());

  const status = h('p', { class: 'muted', id: 'people-status', role: 'status' }, 'Loading…');
  const tbody = h('tbody', { id: 'people-rows' });
  const prev = h('button', { type: 'button', id: 'people-prev', onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, 'Previous');
  const next = h('button', { type: 'button', id: 'people-next', onclick: () => { state.offset += PAGE; load(); } }, 'Next');
  const listError = h('p', { class: 'error', role: 'alert', id: 'people-error' });

  root.append(
    createForm,
    h('section', { class: 'panel', 'aria-labelledby': 'people-title' },
      h('h2', { id: 'people-title' }, 'People'),
      search,
      status,
      listError,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'admin-table', id: 'people-table' },
          h('caption', { class: 'visually-hidden' }, 'People, by name'),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Username'), h('th', { scope: 'col' }, 'Role'),
            h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Actions'))),
          tbody)),
      h('div', { class: 'pager' }, prev, next)));

  async function load() {
    listError.textContent = '';
    try {
      const { users, total } = await listUsers({
        q: state.q || undefined, role: state.role || undefined, disabled: state.disabled || undefined,
        limit: PAGE, offset: state.offset,
      });
      if (destroyed) return;
      replace(tbody, users.map(row));
      status.textContent = total === 0
        ? 'Nobody matches.'
        : `${total} ${total === 1 ? 'person' : 'people'}; showing ${state.offset + 1}–${state.offset + users.length}.`;
      prev.disabled = state.offset === 0;
      next.disabled = state.offset + users.length >= total;
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  /** @param {AdminUser} u */
  function row(u) {
    const self = u.id === me;
    const name = u.display_name;
    return h('tr', { dataset: { userId: u.id, username: u.username } },
      h('th', { scope: 'row' }, name, self ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', { class: 'mono' }, u.username),
      h('td', {}, h('span', { class: `badge ${u.role}` }, u.role)),
      h('td', {}, u.disabled ? h('span', { class: 'badge cancelled' }, 'disabled') : h('span', { class: 'state-ok' }, 'enabled')),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small edit', 'aria-label': `Edit ${name}`, onclick: () => edit(u) }, 'Edit'),
        h('button', { type: 'button', class: 'small reset', 'aria-label': `Reset password for ${name}`, onclick: () => reset(u) }, 'Reset password'),
        self ? null : h('button', {
          type: 'button',
          class: `small ${u.disabled ? 'enable' : 'disable danger'}`,
          'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${name}`,
          onclick: () => toggle(u),
        }, u.disabled ? 'Enable' : 'Disable'),
        h('a', { class: 'small-link', href: `#/admin/audit?actor=${encodeURIComponent(u.id)}`, 'aria-label': `Audit log of ${name}` }, 'Audit log')));
  }

  /** @param {AdminUser} u */
  async function edit(u) {
    const self = u.id === me;
    const fEditName = h('input', { id: 'edit-display-name', required: true, maxlength: '100', value: u.display_name });
    const fEditRole = roleSelect('edit-role', u.role);
    fEditRole.disabled = self;
    const saved = await formDialog({
      title: `Edit ${u.display_name}`,
      save: 'Save',
      fields: [
        h('div', { class: 'field' }, h('label', { for: 'edit-display-name' }, 'Name shown to others'), fEditName),
        h('div', { class: 'field' }, h('label', { for: 'edit-role' }, 'Role'), fEditRole,
          self ? h('p', { class: 'hint' }, 'You cannot change your own role.') : h('p', { class: 'hint' }, 'A new role applies at once; a consult they are in ends and they join again as their new role.')),
      ],
      submit: async () => {
        /** @type {{display_name?: string, role?: any}} */
        const change = {};
        if (fEditName.value.trim() !== u.display_name) change.display_name = fEditName.value.trim();
        if (!self && fEditRole.value !== u.role) change.role = fEditRole.value;
        if (Object.keys(change).length) await updateUser(u.id, change);
      },
    });
    if (saved) {
      toast('Saved.');
      await load();
    }
  }

  /** @param {AdminUser} u */
  async function reset(u) {
    const ok = await confirmDialog({
      title: `Reset the password of ${u.display_name}?`,
      body: ['A new password is generated and shown once. The old one stops working, and they are logged out everywhere at once.'],
      confirm: 'Reset password',
      danger: true,
    });
    if (!ok) return;
    try {
      const r = await resetPassword(u.id);
      await secretDialog({
        title: `New password for ${u.display_name}`,
        intro: [`${r.sessions_ended} ${r.sessions_ended === 1 ? 'session' : 'sessions'} ended. Give them this password by a channel you trust.`],
        items: [{ id: 'secret-password', label: 'New password', value: r.password }],
      });
      if (u.id === me) api.forget();
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  /** @param {AdminUser} u */
  async function toggle(u) {
    const disable = !u.disabled;
    const ok = await confirmDialog(disable
      ? {
        title: `Disable ${u.display_name}?`,
        body: ['They are logged out at once and any consult they are in ends now. They cannot log in or join until an administrator enables them again.'],
        confirm: 'Disable',
        danger: true,
      }
      : {
        title: `Enable ${u.display_name}?`,
        body: ['They can log in again with their password and join their bookings.'],
        confirm: 'Enable',
      });
    if (!ok) return;
    try {
      await setDisabled(u.id, disable);
      toast(disable ? `${u.display_name} is disabled; their sessions ended.` : `${u.display_name} is enabled.`);
      await load();
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  load();
  return {
    destroy() {
      destroyed = true;
      for (const d of document.querySelectorAll('dialog.admin-dialog')) if (d instanceof HTMLDialogElement) d.close('cancel');
    },
  };
}
