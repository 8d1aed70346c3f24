// The robot page (robot.html), for tablet-style robots: publishes the camera and microphone over
// WHIP, shows who drives and the drive commands it receives, and runs the same watchdog and e-stop
// rules as the Rust robot agent (watchdog.js). Reports telemetry every second.
//
// Start: with `?room=<robot id>&token=<publish token>` in the URL, or by entering the robot id
// and its credential (the page asks the API for a publish token, again on every reconnect).
//
// Here the "motors" are the screen: the command being executed is shown large, and every change
// is logged. A real robot would hand `Drive` commands to its motor controller at the same point.
//
// Not here: the watchdog rules (watchdog.js), WebRTC and reconnection (session.js).

import { publishToken, ApiError } from './api.js';
import { $, h, replace, toast } from './dom.js';
import { Session, FatalSessionError } from './session.js';
import { Watchdog, isStillDrive } from './watchdog.js';
import { StatsSampler, describe } from './stats.js';
import { applyPresence } from './events.js';

/** @typedef {import('./watchdog.js').Drive} Drive */
/** @typedef {import('./events.js').ServerEvent} ServerEvent */
/** @typedef {import('./events.js').Participant} Participant */

const CREDS_KEY = 'bedside.robot';

const main = $('#main');
const params = new URLSearchParams(location.search);

/** @type {Session|null} */
let session = null;

function showSetup() {
  /** @type {{room?: string, credential?: string}} */
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(CREDS_KEY) || '{}');
  } catch {
    saved = {};
  }
  const room = h('input', { id: 'robot-id', name: 'robot-id', required: true, autocomplete: 'off', spellcheck: 'false', value: params.get('room') || saved.room || '' });
  const credential = h('input', { id: 'robot-credential', name: 'robot-credential', type: 'password', required: true, autocomplete: 'off', value: saved.credential || '' });
  const remember = h('input', { id: 'robot-remember', type: 'checkbox', style: 'width: auto; min-height: 0', checked: !!saved.credential });
  const error = h('p', { class: 'error', id: 'robot-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'robot-start' }, 'Start publishing');
  replace(main, h('form', {
    class: 'panel login',
    'aria-labelledby': 'robot-setup-title',
    onsubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      const id = room.value.trim();
      const cred = credential.value.trim();
      try {
        await publishToken(id, cred); // check before asking for the camera
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 401
          ? 'Unknown robot or wrong credential.'
          : err instanceof Error ? err.message : String(err);
        submit.disabled = false;
        return;
      }
      try {
        if (remember.checked) localStorage.setItem(CREDS_KEY, JSON.stringify({ room: id, credential: cred }));
        else localStorage.removeItem(CREDS_KEY);
      } catch {
        // storage disabled
      }
      start(id, async () => {
        try {
          const t = await publishToken(id, cred);
          return { room: t.room, token: t.token };
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) throw new FatalSessionError('the robot credential was refused', 401);
          throw err;
        }
      });
    },
  },
  h('h1', { id: 'robot-setup-title' }, 'Start this robot'),
  h('p', { class: 'hint' }, 'The robot id and credential come from the administrator who registered the robot.'),
  h('div', { class: 'field' }, h('label', { for: 'robot-id' }, 'Robot id'), room),
  h('div', { class: 'field' }, h('label', { for: 'robot-credential' }, 'Credential'), credential),
  h('div', { class: 'field' }, h('label', { for: 'robot-remember', style: 'display: flex; gap: .5rem; align-items: center; font-weight: 400' }, remember, 'Remember on this device')),
  error,
  submit));
  (room.value ? credential : room).focus();
}

/**
 * @param {string} room
 * @param {() => Promise<{room: string, token: string}>} credentials
 */
async function start(room, credentials) {
  replace(main, h('p', { class: 'muted', id: 'robot-camera' }, 'Asking for the camera and microphone…'));
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      audio: { echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    replace(main, h('div', { class: 'panel login' },
      h('h1', {}, 'No camera'),
      h('p', { class: 'error', role: 'alert', id: 'robot-error' }, `The camera or microphone could not be opened: ${err instanceof Error ? err.message : String(err)}`),
      h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')));
    return;
  }
  $('#robot-who').textContent = `Robot ${room.slice(0, 8)}…`;
  runRobot(stream, credentials);
}

/**
 * The live robot: publishing, watchdog, display.
 * @param {MediaStream} stream
 * @param {() => Promise<{room: string, token: string}>} credentials
 */
function runRobot(stream, credentials) {
  const s = new Session({ endpoint: 'whip', stream, credentials });
  session = s;
  let watchdog = new Watchdog();
  const counts = { received: 0, obeyed: 0, ignored: 0 };
  /** @type {Record<string, number>} */
  const ignoredBy = {};
  /** @type {Participant[]} */
  let participants = [];
  /** @type {string|null} */
  let holder = null;
  let epoch = 0;
  let localEstop = false;

  const preview = h('video', { id: 'local-video', autoplay: true, playsinline: true, muted: true, 'aria-label': 'What this robot’s camera sends' });
  preview.muted = true;
  preview.srcObject = stream;
  const connDot = h('span', { class: 'dot connecting', 'aria-hidden': 'true' });
  const connText = h('span', { id: 'conn-state' }, 'Connecting…');
  const driver = h('p', { class: 'state-line', id: 'driver', 'aria-live': 'polite' }, 'Nobody is driving');
  const estopState = h('div', { class: 'estop-state', id: 'estop-state', role: 'status', 'aria-live': 'assertive' }, 'E-stop clear');
  const dx = h('output', { id: 'drive-x' }, '0');
  const dy = h('output', { id: 'drive-y' }, '0');
  const dz = h('output', { id: 'drive-z' }, '0');
  const arrow = h('div', { class: 'drive-arrow', id: 'drive-arrow', 'aria-hidden': 'true' }, '■');
  const reason = h('span', { id: 'drive-reason' }, 'stop');
  const epochEl = h('span', { id: 'drive-epoch' }, '0');
  const received = h('span', { id: 'frames-received' }, '0');
  const obeyed = h('span', { id: 'frames-obeyed' }, '0');
  const ignored = h('span', { id: 'frames-ignored' }, '0');
  const log = h('ul', { class: 'log', id: 'drive-log', 'aria-label': 'Recent drive commands' });
  const link = h('span', { id: 'robot-link' }, 'measuring…');
  const localStop = h('button', { type: 'button', class: 'estop', id: 'local-estop', onclick: () => latchLocally() }, 'STOP (local e-stop)');

  replace(main, h('div', { class: 'robot-page' },
    h('div', {},
      h('div', { class: 'stage' }, preview),
      h('div', { class: 'state-line' }, connDot, connText),
      driver,
      h('p', { class: 'hint' }, 'Link: ', link)),
    h('div', {},
      h('section', { class: 'panel', 'aria-labelledby': 'cmd-title' },
        h('h2', { id: 'cmd-title' }, 'Drive command'),
        estopState,
        arrow,
        h('div', { class: 'drive-now' },
          h('div', {}, dx, h('span', {}, 'forward (linear x)')),
          h('div', {}, dy, h('span', {}, 'left (linear y)')),
          h('div', {}, dz, h('span', {}, 'turn left (angular z)'))),
        h('p', { class: 'hint' }, 'Reason: ', reason, ' · epoch ', epochEl),
        h('p', { class: 'hint' }, 'Frames received ', received, ' · obeyed ', obeyed, ' · ignored ', ignored),
        localStop),
      h('section', { class: 'panel', 'aria-labelledby': 'log-title' },
        h('h2', { id: 'log-title' }, 'Recent commands'), log))));

  /** @param {Drive|null} d */
  function apply(d) {
    if (!d) return;
    // A real robot sends `d` to its motor controller here.
    dx.textContent = String(d.linearX);
    dy.textContent = String(d.linearY);
    dz.textContent = String(d.angularZ);
    reason.textContent = d.reason;
    epochEl.textContent = String(d.epoch);
    arrow.textContent = isStillDrive(d) ? '■' : d.linearX > 0 ? (d.angularZ > 0 ? '↖' : d.angularZ < 0 ? '↗' : '↑')
      : d.linearX < 0 ? (d.angularZ > 0 ? '↙' : d.angularZ < 0 ? '↘' : '↓')
        : d.angularZ > 0 ? '↺' : d.angularZ < 0 ? '↻' : d.linearY > 0 ? '←' : '→';
    const t = new Date().toLocaleTimeString(undefined, { hour12: false });
    log.prepend(h('li', {}, `${t} ${d.reason.padEnd(7)} x=${d.linearX} y=${d.linearY} z=${d.angularZ} epoch=${d.epoch}`));
    while (log.children.length > 50) log.lastElementChild?.remove();
  }

  function renderCounts() {
    received.textContent = String(counts.received);
    obeyed.textContent = String(counts.obeyed);
    ignored.textContent = String(counts.ignored);
    ignored.title = Object.entries(ignoredBy).map(([k, v]) => `${k}: ${v}`).join(', ');
  }

  function renderEstop() {
    const latched = watchdog.estopLatched();
    estopState.classList.toggle('latched', latched);
    estopState.textContent = latched ? 'E-STOP LATCHED' : 'E-stop clear';
    estopState.dataset.latched = String(latched);
    localStop.disabled = latched;
  }

  function renderDriver() {
    const p = participants.find((x) => x.id === holder);
    driver.dataset.holder = holder || '';
    driver.textContent = holder ? `Driving: ${p && p.role === 'doctor' ? 'a doctor' : 'participant'} (session ${holder})` : 'Nobody is driving';
    const doctors = participants.filter((x) => x.role === 'doctor').length;
    const observers = participants.filter((x) => x.role === 'observer').length;
    driver.title = `${doctors} doctor(s), ${observers} observer(s) in the room`;
  }

  function latchLocally() {
    localEstop = true;
    apply(watchdog.onEstop(true));
    renderEstop();
    sendTelemetry(); // the room latches from our report
  }

  s.addEventListener('joined', () => {
    // A new connection is a new room session: start still, with fresh epochs.
    const estop = watchdog.estopLatched() && localEstop;
    watchdog = new Watchdog();
    if (estop) watchdog.onEstop(true);
    renderEstop();
  });

  s.addEventListener('control', (e) => {
    counts.received += 1;
    const out = watchdog.onFrame(/** @type {CustomEvent<ArrayBuffer>} */ (e).detail, performance.now());
    if (out.ignored) {
      counts.ignored += 1;
      ignoredBy[out.ignored] = (ignoredBy[out.ignored] || 0) + 1;
    } else {
      counts.obeyed += 1;
      apply(out.drive);
    }
    renderCounts();
  });

  s.addEventListener('server-event', (e) => {
    const ev = /** @type {CustomEvent<ServerEvent>} */ (e).detail;
    if (ev.type === 'estop') {
      if (!ev.latched) localEstop = false;
      apply(watchdog.onEstop(ev.latched));
      renderEstop();
    } else if (ev.type === 'lease') {
      holder = ev.holder;
      epoch = ev.epoch;
      renderDriver();
    } else if (ev.type === 'presence' || ev.type === 'joined' || ev.type === 'left') {
      participants = applyPresence(participants, ev);
      renderDriver();
    } else if (ev.type === 'error') {
      toast(ev.message);
    }
  });

  s.addEventListener('lost', () => {
    // Losing the server means losing the driver.
    apply(watchdog.connectionLost());
    holder = null;
    renderDriver();
  });

  s.addEventListener('state', () => {
    connDot.className = `dot ${s.state}`;
    connText.textContent = {
      idle: 'Starting…',
      connecting: 'Connecting…',
      connected: 'Live: publishing camera and microphone',
      reconnecting: `Reconnecting… ${s.detail}`,
      closed: 'Stopped',
      failed: `Cannot publish: ${s.detail}`,
    }[s.state];
    connText.dataset.state = s.state;
    if (s.state !== 'connected') apply(watchdog.connectionLost());
  });

  const stats = new StatsSampler(() => s.pc, 'out');
  stats.addEventListener('stats', () => {
    link.textContent = describe(stats.latest);
  });
  stats.start();

  /** @type {{level: number}|null} */
  let battery = null;
  const nav = /** @type {any} */ (navigator);
  if (typeof nav.getBattery === 'function') {
    nav.getBattery().then((/** @type {{level: number}} */ b) => { battery = b; }).catch(() => {});
  }

  function sendTelemetry() {
    const q = stats.latest ? { good: 1, fair: 0.6, poor: 0.3, unknown: null }[stats.latest.quality] : null;
    const d = watchdog.current;
    s.sendEvent({
      type: 'telemetry',
      ...(battery ? { battery: battery.level } : {}),
      ...(q !== null ? { link_quality: q } : {}),
      // Only our own (local) e-stop: echoing the room's latch back could re-latch it just
      // after the driver cleared it, if the report crossed the clear on the wire.
      estop: localEstop,
      drive: [d.linearX, d.linearY, d.angularZ],
    });
  }

  // The deadman: checked often, so a silent driver stops the robot within ~300 ms.
  const deadman = setInterval(() => apply(watchdog.poll(performance.now())), 20);
  const telemetry = setInterval(() => {
    if (s.state === 'connected') sendTelemetry();
  }, 1000);

  window.addEventListener('pagehide', () => {
    clearInterval(deadman);
    clearInterval(telemetry);
    s.close();
  });

  /** @type {any} */ (window).__bedside = {
    session: s,
    get watchdog() { return watchdog; },
    counts,
    ignoredBy,
    get holder() { return holder; },
    get epoch() { return epoch; },
  };
  s.start();
}

const urlRoom = params.get('room');
const urlToken = params.get('token');
if (urlRoom && urlToken) {
  // Keep the token out of the address bar (and out of screenshots).
  history.replaceState(null, '', `${location.pathname}?room=${encodeURIComponent(urlRoom)}`);
  start(urlRoom, async () => ({ room: urlRoom, token: urlToken }));
} else {
  showSetup();
}
