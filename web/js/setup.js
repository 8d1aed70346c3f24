// The way in for someone who is not logged in: the first-run setup while the server has no
// administrator (the one-time code from the server's log, carried in a `#setup=<code>` link or
// typed in), else the login page.
//
// The code is read from the URL fragment (never a query: a fragment reaches no server or proxy
// log) and then removed from the address bar and the history at once.
//
// Not here: logging in (login.js), tokens (api.js).

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { mountLogin } from './login.js';

/** @typedef {{destroy: () => void}} View */

/** The `#setup=` code of this page's URL, if any; removes it from the address bar. */
function takeCodeFromUrl() {
  const m = /^#setup=([A-Za-z0-9_-]{1,200})$/.exec(location.hash);
  if (!m) return '';
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return m[1];
}

/**
 * Is the first-run setup open on this server?
 * @returns {Promise<boolean>}
 */
async function setupNeeded() {
  const resp = await api.raw('GET', '/api/setup', undefined, null);
  if (!resp.ok) return false;
  const body = await resp.json();
  return body.setup_needed === true;
}

/**
 * The login page, or the first-run setup if the server has no administrator yet.
 * @param {HTMLElement} main
 * @returns {View}
 */
export function mountEntry(main) {
  const code = takeCodeFromUrl();
  /** @type {View|null} */
  let inner = null;
  let destroyed = false;
  const waiting = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  main.append(waiting);
  setupNeeded().catch(() => false).then((needed) => {
    if (destroyed) return;
    waiting.remove();
    if (needed) {
      inner = mountSetup(main, code);
    } else {
      if (code) {
        main.append(h('p', { class: 'panel notice', id: 'setup-done', role: 'status' },
          'This server already has an administrator, so the setup link does nothing any more. Log in, or ask an administrator for an account.'));
      }
      inner = mountLogin(main);
    }
  });
  return {
    destroy() {
      destroyed = true;
      if (inner) inner.destroy();
    },
  };
}

/**
 * @param {HTMLElement} main
 * @param {string} code from the link, or ''
 * @returns {View}
 */
function mountSetup(main, code) {
  const error = h('p', { class: 'error', id: 'setup-error', role: 'alert' });
  const fCode = h('input', { id: 'setup-code', name: 'setup-code', required: true, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', value: code, 'aria-describedby': 'setup-code-hint' });
  const fUser = h('input', { id: 'setup-username', name: 'username', required: true, autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', minlength: '3', maxlength: '64' });
  const fName = h('input', { id: 'setup-display-name', name: 'name', required: true, autocomplete: 'name', maxlength: '100' });
  const fPass = h('input', { id: 'setup-password', name: 'new-password', type: 'password', required: true, autocomplete: 'new-password', minlength: '10', 'aria-describedby': 'setup-password-hint' });
  const fPass2 = h('input', { id: 'setup-password2', name: 'confirm-password', type: 'password', required: true, autocomplete: 'new-password', minlength: '10' });
  for (const f of [fPass, fPass2]) f.addEventListener('input', () => { error.textContent = ''; });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'setup-submit' }, 'Create administrator');
  const form = h('form', {
    class: 'panel login',
    id: 'setup-form',
    'aria-labelledby': 'setup-title',
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      error.textContent = '';
      if (fPass.value !== fPass2.value) {
        error.textContent = 'The two passwords differ.';
        fPass2.focus();
        return;
      }
      submit.disabled = true;
      const username = fUser.value.trim();
      try {
        const resp = await api.raw('POST', '/api/setup', {
          code: fCode.value.trim(), username, display_name: fName.value.trim(), password: fPass.value,
        }, null);
        if (!resp.ok) {
          const body = await resp.json().catch(() => null);
          throw new ApiError(resp.status, body && body.error || `http_${resp.status}`, body && body.message || resp.statusText, body);
        }
        // Logging in re-routes the app to the console.
        await api.login(username, fPass.value);
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
          error.textContent = 'That setup code is wrong. Copy it again from the server’s log.';
          fCode.focus();
        } else if (err instanceof ApiError && err.code === 'setup_done') {
          error.textContent = 'This server already has an administrator. Reload the page and log in.';
        } else {
          error.textContent = err instanceof Error ? err.message : String(err);
        }
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', { id: 'setup-title' }, 'Set up Bedside'),
  h('p', {}, 'This server has no administrator yet. Create the first one: it can then add doctors, students and robots.'),
  h('div', { class: 'field' }, h('label', { for: 'setup-code' }, 'Setup code'), fCode,
    h('p', { class: 'hint', id: 'setup-code-hint' }, 'The one-time code the server printed in its log (', h('code', {}, 'bss_…'), '); a setup link fills it in.')),
  h('div', { class: 'field' }, h('label', { for: 'setup-username' }, 'Username'), fUser),
  h('div', { class: 'field' }, h('label', { for: 'setup-display-name' }, 'Your name'), fName),
  h('div', { class: 'field' }, h('label', { for: 'setup-password' }, 'Password'), fPass,
    h('p', { class: 'hint', id: 'setup-password-hint' }, 'At least 10 characters.')),
  h('div', { class: 'field' }, h('label', { for: 'setup-password2' }, 'Password again'), fPass2),
  error,
  submit);
  main.append(form);
  (code ? fUser : fCode).focus();
  return { destroy() {} };
}
