// Admin console, Robots: register a robot (its credential shown once, with the robot page's
// start link and the `bedside robot` set-up to copy), give it a new credential (the old one and
// its connection end), edit its name, ward and description, and retire it.
//
// The credential never goes into a URL query or onto a command line that `ps` shows: the robot
// page's link carries it in the fragment (never sent to a server; robot.js takes it out of the
// address bar at once), and the agent's set-up writes it to a file only its owner can read and
// passes it as the environment variable `BEDSIDE_ROBOT_CREDENTIAL`.
//
// Not here: the API calls (admin_api.js), dialogs (admin_dialogs.js), the live state of robots
// (the Live rooms page).

import { h, replace, toast, formatDateTime } from './dom.js';
import { listRobots, createRobot, updateRobot, rotateCredential, retireRobot } from './admin_api.js';
import { confirmDialog, formDialog, secretDialog, errorText } from './admin_dialogs.js';

/** @typedef {import('./admin_api.js').AdminRobot} AdminRobot */
/** @typedef {{destroy: () => void}} View */

/**
 * The robot page's start link: the credential in the fragment only.
 * @param {string} robotId
 * @param {string} credential
 */
export function robotLink(robotId, credential) {
  return `${location.origin}/robot#room=${encodeURIComponent(robotId)}&credential=${encodeURIComponent(credential)}`;
}

/**
 * Shell lines that set up and start the agent on the robot: an environment file readable by its
 * owner only, loaded into the environment (so the credential is in no process's arguments).
 * @param {string} robotId
 * @param {string} credential
 */
export function agentSetup(robotId, credential) {
  return [
    '# On the robot, as the user that runs it:',
    'umask 077',
    "cat > ~/bedside-robot.env <<'EOF'",
    `BEDSIDE_SERVER=${location.origin}`,
    `BEDSIDE_ROBOT_ID=${robotId}`,
    `BEDSIDE_ROBOT_CREDENTIAL=${credential}`,
    'EOF',
    'set -a; . ~/bedside-robot.env; set +a',
    'bedside robot',
    '# As a systemd service: EnvironmentFile=/home/<user>/bedside-robot.env',
  ].join('\n');
}

/**
 * Show a robot's credential once, with the ways to use it.
 * @param {AdminRobot} robot
 * @param {string} credential
 * @param {string} title
 */
function showCredential(robot, credential, title) {
  return secretDialog({
    title,
    intro: [`Set ${robot.name} up with one of these. Its robot id is ${robot.id}.`],
    items: [
      { id: 'secret-credential', label: 'Credential', value: credential },
      { id: 'secret-robot-link', label: 'Robot page link (a browser on the robot)', value: robotLink(robot.id, credential), hint: 'Open it on the robot\'s tablet: the credential is in the part after #, which is never sent to a server, and the page removes it from the address bar.' },
      { id: 'secret-agent-setup', label: 'Agent set-up (bedside robot)', value: agentSetup(robot.id, credential), multiline: true, hint: 'The credential goes into a file only its owner can read, and into the environment, never onto the command line.' },
    ],
  });
}

/**
 * @param {HTMLElement} root
 * @returns {View}
 */
export function mountRobots(root) {
  let destroyed = false;
  let showRetired = false;

  const fName = h('input', { id: 'new-robot-name', required: true, maxlength: '100', autocomplete: 'off' });
  const fWard = h('input', { id: 'new-robot-ward', required: true, maxlength: '100', autocomplete: 'off' });
  const fDesc = h('input', { id: 'new-robot-description', maxlength: '1000', autocomplete: 'off' });
  const createError = h('p', { class: 'error', role: 'alert', id: 'new-robot-error' });
  const createButton = h('button', { type: 'submit', class: 'primary', id: 'new-robot-submit' }, 'Register robot');
  const createForm = h('form', {
    class: 'panel', id: 'new-robot', 'aria-labelledby': 'new-robot-title',
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      createError.textContent = '';
      createButton.disabled = true;
      try {
        const { robot, credential } = await createRobot({ name: fName.value.trim(), ward: fWard.value.trim(), description: fDesc.value.trim() });
        createForm.reset();
        await showCredential(robot, credential, `${robot.name} is registered`);
        await load();
        fName.focus();
      } catch (err) {
        createError.textContent = errorText(err);
      } finally {
        createButton.disabled = false;
      }
    },
  },
  h('h2', { id: 'new-robot-title' }, 'Register a robot'),
  h('div', { class: 'row' },
    h('div', { class: 'field' }, h('label', { for: 'new-robot-name' }, 'Name'), fName),
    h('div', { class: 'field' }, h('label', { for: 'new-robot-ward' }, 'Ward'), fWard),
    h('div', { class: 'field grow' }, h('label', { for: 'new-robot-description' }, 'Description (optional)'), fDesc),
    h('div', { class: 'field' }, createButton)),
  h('p', { class: 'hint' }, 'Its credential is shown once, with a link and a set-up to copy onto the robot.'),
  createError);

  const retiredBox = h('input', { type: 'checkbox', id: 'robots-show-retired', onchange: () => { showRetired = retiredBox.checked; load(); } });
  const status = h('p', { class: 'muted', id: 'robots-status', role: 'status' }, 'Loading…');
  const listError = h('p', { class: 'error', role: 'alert', id: 'robots-error' });
  const tbody = h('tbody', { id: 'robot-rows' });
  root.append(createForm,
    h('section', { class: 'panel', 'aria-labelledby': 'robots-title' },
      h('h2', { id: 'robots-title' }, 'Robots'),
      h('div', { class: 'check' }, retiredBox, h('label', { for: 'robots-show-retired' }, 'Show retired robots')),
      status,
      listError,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'admin-table', id: 'robots-table' },
          h('caption', { class: 'visually-hidden' }, 'Robots, by ward and name'),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Ward'), h('th', { scope: 'col' }, 'Description'),
            h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Actions'))),
          tbody))));

  async function load() {
    listError.textContent = '';
    try {
      const robots = await listRobots(showRetired);
      if (destroyed) return;
      replace(tbody, robots.map(row));
      status.textContent = robots.length === 0 ? 'No robots yet.' : `${robots.length} ${robots.length === 1 ? 'robot' : 'robots'}.`;
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  /** @param {AdminRobot} r */
  function row(r) {
    const retired = Boolean(r.retired_at);
    return h('tr', { dataset: { robotId: r.id }, class: retired ? 'retired' : undefined },
      h('th', { scope: 'row' }, r.name),
      h('td', {}, r.ward),
      h('td', {}, r.description || h('span', { class: 'muted' }, '—')),
      h('td', {}, retired
        ? h('span', { class: 'badge cancelled' }, `retired ${formatDateTime(/** @type {string} */ (r.retired_at))}`)
        : h('span', { class: 'state-ok' }, 'in service')),
      h('td', { class: 'row-actions' },
        retired ? null : [
          h('button', { type: 'button', class: 'small edit', 'aria-label': `Edit ${r.name}`, onclick: () => edit(r) }, 'Edit'),
          h('button', { type: 'button', class: 'small rotate', 'aria-label': `New credential for ${r.name}`, onclick: () => rotate(r) }, 'New credential'),
          h('button', { type: 'button', class: 'small retire danger', 'aria-label': `Retire ${r.name}`, onclick: () => retire(r) }, 'Retire'),
        ],
        h('a', { class: 'small-link', href: `#/admin/audit?robot=${encodeURIComponent(r.id)}`, 'aria-label': `Audit log of ${r.name}` }, 'Audit log')));
  }

  /** @param {AdminRobot} r */
  async function edit(r) {
    const eName = h('input', { id: 'edit-robot-name', required: true, maxlength: '100', value: r.name });
    const eWard = h('input', { id: 'edit-robot-ward', required: true, maxlength: '100', value: r.ward });
    const eDesc = h('textarea', { id: 'edit-robot-description', maxlength: '1000' });
    eDesc.value = r.description;
    const saved = await formDialog({
      title: `Edit ${r.name}`,
      save: 'Save',
      fields: [
        h('div', { class: 'field' }, h('label', { for: 'edit-robot-name' }, 'Name'), eName),
        h('div', { class: 'field' }, h('label', { for: 'edit-robot-ward' }, 'Ward'), eWard),
        h('div', { class: 'field' }, h('label', { for: 'edit-robot-description' }, 'Description'), eDesc),
      ],
      submit: async () => {
        /** @type {{name?: string, ward?: string, description?: string}} */
        const change = {};
        if (eName.value.trim() !== r.name) change.name = eName.value.trim();
        if (eWard.value.trim() !== r.ward) change.ward = eWard.value.trim();
        if (eDesc.value.trim() !== r.description) change.description = eDesc.value.trim();
        if (Object.keys(change).length) await updateRobot(r.id, change);
      },
    });
    if (saved) {
      toast('Saved.');
      await load();
    }
  }

  /** @param {AdminRobot} r */
  async function rotate(r) {
    const ok = await confirmDialog({
      title: `New credential for ${r.name}?`,
      body: ['The current credential stops working now: the robot leaves any consult and cannot come back until it is set up with the new one. Use this when a credential may have leaked.'],
      confirm: 'Make a new credential',
      danger: true,
    });
    if (!ok) return;
    try {
      const { credential } = await rotateCredential(r.id);
      await showCredential(r, credential, `New credential for ${r.name}`);
    } catch (err) {
      listError.textContent = errorText(err);
    }
  }

  /** @param {AdminRobot} r */
  async function retire(r) {
    const ok = await confirmDialog({
      title: `Retire ${r.name}?`,
      body: [
        'Its credential stops working and it leaves any consult now. Every booking of it that is not over yet is cancelled, and the people in them are told. Nobody can book it any more.',
        'It stays in the audit log. This cannot be undone: a robot back in service is registered again.',
      ],
      confirm: 'Retire robot',
      danger: true,
    });
    if (!ok) return;
    try {
      const done = await retireRobot(r.id);
      const n = done.cancelled_bookings.length;
      toast(`${r.name} is retired; ${n} ${n === 1 ? 'booking' : 'bookings'} cancelled.`);
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
