// The login page: username and password, errors in words (wrong password, too many attempts).
//
// Not here: token handling (api.js) or where to go afterwards (app.js re-routes on login).

import { api, ApiError } from './api.js';
import { h } from './dom.js';

/**
 * @param {HTMLElement} main
 * @returns {{destroy: () => void}}
 */
export function mountLogin(main) {
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert' });
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in');
  const form = h('form', {
    class: 'panel login',
    'aria-labelledby': 'login-title',
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      try {
        await api.login(username.value.trim(), password.value);
      } catch (err) {
        password.value = '';
        if (err instanceof ApiError && err.status === 429) {
          // The server says how long (its message carries Retry-After in words).
          const wait = /(\d+)\s*s\b/.exec(err.message);
          error.textContent = wait
            ? `Too many failed attempts. Try again in ${wait[1]} seconds.`
            : 'Too many failed attempts. Please wait a few minutes and try again.';
        } else if (err instanceof ApiError && err.status === 401) {
          error.textContent = 'Unknown username or wrong password.';
        } else {
          error.textContent = err instanceof Error ? err.message : 'Login failed.';
        }
        password.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', { id: 'login-title' }, 'Log in to Bedside'),
  h('div', { class: 'field' }, h('label', { for: 'username' }, 'Username'), username),
  h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), password),
  error,
  submit,
  h('p', { class: 'hint' }, 'Robot? Open ', h('a', { href: '/robot' }, 'the robot page'), '.'));
  main.append(form);
  username.focus();
  return { destroy() {} };
}
