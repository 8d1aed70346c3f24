// Modal dialogs of the admin console: "are you sure" before an action that ends sessions, a form
// in a dialog (edit a person or a robot), and a secret shown once (a generated password, a robot
// credential) with copy buttons.
//
// Built on the native <dialog> (showModal): it traps focus, closes on Escape, and hides the page
// behind it from screen readers; focus goes back to what opened it.
//
// Not here: what the actions do (admin_people.js, admin_robots.js).

import { h, toast } from './dom.js';
import { ApiError } from './api.js';

/**
 * Words for an error from the API.
 * @param {unknown} err
 */
export function errorText(err) {
  if (err instanceof ApiError) return err.message || err.code;
  return err instanceof Error ? err.message : String(err);
}

let serial = 0;

/**
 * Open `dialog` modally; resolve with its returnValue when it closes; remove it then.
 * @param {HTMLDialogElement} dialog
 * @returns {Promise<string>}
 */
function open(dialog) {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(dialog.returnValue);
    }, { once: true });
  });
}

/**
 * Ask before doing something. Resolves true if confirmed.
 * @param {{title: string, body: (string|Node)[], confirm: string, danger?: boolean}} o
 * @returns {Promise<boolean>}
 */
export async function confirmDialog(o) {
  const n = ++serial;
  const cancel = h('button', { type: 'submit', value: 'cancel', id: 'confirm-cancel' }, 'Cancel');
  const ok = h('button', { type: 'submit', value: 'ok', id: 'confirm-ok', class: o.danger ? 'danger' : 'primary' }, o.confirm);
  const dialog = h('dialog', { class: 'admin-dialog', id: 'confirm-dialog', 'aria-labelledby': `dlg-t-${n}`, 'aria-describedby': `dlg-b-${n}` },
    h('form', { method: 'dialog' },
      h('h2', { id: `dlg-t-${n}` }, o.title),
      h('div', { id: `dlg-b-${n}` }, o.body.map((b) => (typeof b === 'string' ? h('p', {}, b) : b))),
      h('div', { class: 'actions' }, cancel, ok)));
  const closed = open(dialog);
  // The safe choice has the focus: Enter does not end anybody's session by accident.
  cancel.focus();
  return (await closed) === 'ok';
}

/**
 * A form in a dialog. `submit` runs on Save; if it throws, the error is shown and the dialog
 * stays open. Resolves true once saved.
 * @param {{title: string, fields: Node[], save: string, submit: () => Promise<void>}} o
 * @returns {Promise<boolean>}
 */
export async function formDialog(o) {
  const n = ++serial;
  const error = h('p', { class: 'error', role: 'alert', id: 'dialog-error' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'dialog-save' }, o.save);
  /** @type {HTMLDialogElement} */
  let dialog;
  const form = h('form', {
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      error.textContent = '';
      save.disabled = true;
      try {
        await o.submit();
        dialog.close('saved');
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        save.disabled = false;
      }
    },
  },
  h('h2', { id: `dlg-t-${n}` }, o.title),
  o.fields,
  error,
  h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'dialog-cancel', onclick: () => dialog.close('cancel') }, 'Cancel'),
    save));
  dialog = h('dialog', { class: 'admin-dialog', id: 'form-dialog', 'aria-labelledby': `dlg-t-${n}` }, form);
  const closed = open(dialog);
  const first = form.querySelector('input:not([disabled]), select:not([disabled]), textarea');
  if (first instanceof HTMLElement) first.focus();
  return (await closed) === 'saved';
}

/**
 * Copy `text` to the clipboard; where the Clipboard API is refused, select `field` and copy
 * that way.
 * @param {string} text
 * @param {HTMLInputElement|HTMLTextAreaElement} field
 */
async function copy(text, field) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    field.focus();
    field.select();
    document.execCommand('copy');
  }
  toast('Copied.');
}

/**
 * @typedef {object} SecretItem
 * @property {string} id the field's id
 * @property {string} label
 * @property {string} value
 * @property {boolean} [multiline]
 * @property {string} [hint]
 */

/**
 * Show secrets once, each with a copy button; they are gone when the dialog closes.
 * @param {{title: string, intro: (string|Node)[], items: SecretItem[]}} o
 * @returns {Promise<void>}
 */
export async function secretDialog(o) {
  const n = ++serial;
  const done = h('button', { type: 'submit', class: 'primary', id: 'secret-done' }, 'Done, I have copied it');
  const dialog = h('dialog', { class: 'admin-dialog secret', id: 'secret-dialog', 'aria-labelledby': `dlg-t-${n}` },
    h('form', { method: 'dialog' },
      h('h2', { id: `dlg-t-${n}` }, o.title),
      o.intro.map((b) => (typeof b === 'string' ? h('p', {}, b) : b)),
      o.items.map((item) => {
        const field = item.multiline
          ? h('textarea', { id: item.id, readonly: true, rows: '7', spellcheck: 'false', class: 'mono', 'aria-describedby': item.hint ? `${item.id}-hint` : undefined })
          : h('input', { id: item.id, readonly: true, spellcheck: 'false', class: 'mono', autocomplete: 'off', 'aria-describedby': item.hint ? `${item.id}-hint` : undefined });
        field.value = item.value;
        return h('div', { class: 'field' },
          h('label', { for: item.id }, item.label),
          h('div', { class: 'copy-row' }, field,
            h('button', { type: 'button', class: 'small', id: `${item.id}-copy`, 'aria-label': `Copy ${item.label.toLowerCase()}`, onclick: () => copy(item.value, field) }, 'Copy')),
          item.hint ? h('p', { class: 'hint', id: `${item.id}-hint` }, item.hint) : null);
      }),
      h('p', { class: 'warn-text' }, 'This is shown only now. Nobody can see it again, not even an administrator.'),
      h('div', { class: 'actions' }, done)));
  const closed = open(dialog);
  const first = dialog.querySelector('input, textarea');
  if (first instanceof HTMLElement) first.focus();
  await closed;
}
