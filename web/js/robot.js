// The robot page (robot.html), for tablet-style robots: publishes the camera and microphone over
// WHIP, shows the driving doctor's camera full size (the presenter slot) and plays the doctors'
// voices (the audio slots), shows who drives, who speaks and the drive commands it receives, and
// runs the same watchdog and e-stop rules as the Rust robot agent (watchdog.js). Reports
// telemetry every second.
//
// Start: by entering the robot id and its credential, or from a link with them in the URL
// *fragment*: `/robot#room=<robot id>&credential=<credential>` (or `#room=…&token=<publish
// token>`). A fragment is never sent to a server (no request line, no access log, no Referer);
// the page takes it out of the address bar and the history at once. A token or credential in the
// query (`?token=`) is refused: it has already travelled to the server and sits in its logs.
// The credential lives in this page's memory only, for the page's life: not in localStorage (on
// disk for good, readable by any script of the origin, surviving whoever used the tablet) and
// not in sessionStorage either (it survives reloads, which a kiosk does not need: its start
// link carries the fragment again). Every (re)connect asks the API for a fresh publish token.
//
// The deadman check runs on a dedicated worker's clock (deadman_worker.js): a hidden page's own
// timers are throttled to about one a second. The robot also stops on a lease change announced
// on `events` (a newer epoch), in case the SFU's stop frame was lost, and keeps its e-stop latch
// across reconnects until the new room says what its state is. Its own e-stop (the *STOP*
// button here) is reported in telemetry; only this page releases it.
//
// Who is who: the room's events name people by session id and opaque `sub` only; the robot
// reads the names of its booking's people from the API with its credential (roster.js) and
// shows a person by name and role ("Dr Dana Okafor is driving"). Without the names (a start by
// publish token alone, or the roster unavailable) it shows what they are in the room ("The
// driving doctor"), never an id.
//
// Not here: the watchdog rules (watchdog.js), WebRTC and reconnection (session.js).

import { publishToken, ApiError, explainError } from './api.js';
import { $, h, replace, setText, formatClock, toast } from './dom.js';
import { Session, FatalSessionError } from './session.js';
import { Watchdog, isStillDrive } from './watchdog.js';
import { StatsSampler, describe } from './stats.js';
import { applyPresence, describeError } from './events.js';
import { Roster } from './roster.js';

/** @typedef {import('./watchdog.js').Drive} Drive */
/** @typedef {import('./events.js').ServerEvent} ServerEvent */
/** @typedef {import('./events.js').Participant} Participant */
/** @typedef {import('./session.js').Lines} Lines */

/** Doctors' voices the robot plays at once (the loudest). */
const AUDIO_SLOTS = 3;
/** How often the deadman is checked. */
const DEADMAN_TICK_MS = 20;

const main = $('#main');

/** @type {Session|null} */
let session = null;

/**
 * The robot's name, for its own screen: from the publish-token answer once the API gives it
 * (`robot_name`), else from the start link (`#…&name=Rounds-1`), else none. Never its raw id:
 * people in the room read this screen.
 * @type {string}
 */
let robotName = '';

/**
 * Read a start link's fragment (`#room=…&credential=…` or `#room=…&token=…`, optionally
 * `&name=…`) and take it out of the address bar and the history. A secret in the query is refused
 * (see the module comment).
 * @returns {{room: string, credential?: string, token?: string, refused?: string, name?: string}}
 */
function takeStartLink() {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const room = fragment.get('room') || query.get('room') || '';
  const secretInQuery = query.has('token') || query.has('credential');
  if (location.search || location.hash) history.replaceState(null, '', location.pathname);
  if (secretInQuery) {
    return {
      room,
      refused: 'A token or credential in the address query (?token=…) is not accepted: it is sent to the server and kept in logs and history. Enter the credential below, or use a link with #room=…&credential=… instead.',
    };
  }
  const credential = fragment.get('credential') || undefined;
  const token = fragment.get('token') || undefined;
  const name = (fragment.get('name') || '').trim().slice(0, 100) || undefined;
  return { room, credential, token, name };
}

/**
 * @param {string} id
 * @param {string} cred
 * @returns {() => Promise<{room: string, token: string, iceServers?: RTCIceServer[]}>}
 */
function fromCredential(id, cred) {
  return async () => {
    try {
      const t = await publishToken(id, cred);
      const named = /** @type {{robot_name?: unknown}} */ (t).robot_name;
      if (typeof named === 'string' && named.trim()) showName(named.trim());
      return { room: t.room, token: t.token, iceServers: t.ice_servers || [] };
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw new FatalSessionError('the robot credential was refused', 401);
      throw err;
    }
  };
}

/**
 * @param {string} roomId
 * @param {string} [refused] why a start link was not used
 */
function showSetup(roomId, refused) {
  const room = h('input', { id: 'robot-id', name: 'robot-id', required: true, autocomplete: 'off', spellcheck: 'false', value: roomId });
  const credential = h('input', { id: 'robot-credential', name: 'robot-credential', type: 'password', required: true, autocomplete: 'off' });
  const error = h('p', { class: 'error', id: 'robot-error', role: 'alert' }, refused || '');
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
          ? 'Unknown robot or wrong credential. Check both with the administrator who registered this robot.'
          : explainError(err);
        submit.disabled = false;
        return;
      }
      start(id, fromCredential(id, cred), new Roster(id, cred));
    },
  },
  h('h1', { id: 'robot-setup-title' }, 'Start this robot'),
  h('p', { class: 'hint' }, 'The robot id and credential come from the administrator who registered the robot. The credential is kept only while this page is open.'),
  h('div', { class: 'field' }, h('label', { for: 'robot-id' }, 'Robot id'), room),
  h('div', { class: 'field' }, h('label', { for: 'robot-credential' }, 'Credential'), credential),
  error,
  submit));
  (room.value ? credential : room).focus();
}

/**
 * @param {string} room
 * @param {() => Promise<{room: string, token: string}>} credentials
 * @param {Roster|null} roster the people's names (null: none to be had, roles are shown)
 */
async function start(room, credentials, roster) {
  replace(main, h('p', { class: 'muted', id: 'robot-camera' }, 'Asking for the camera and microphone…'));
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      // The doctors' voices come out of this robot's speaker, next to its microphone.
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    replace(main, h('div', { class: 'panel login' },
      h('h1', {}, 'No camera'),
      h('p', { class: 'error', role: 'alert', id: 'robot-error' }, err instanceof DOMException && (err.name === 'NotAllowedError' || err.name === 'SecurityError')
        ? 'The camera and microphone are blocked for this page. Allow them in the browser’s site settings, then press Try again.'
        : 'No camera or microphone could be opened. Check that they are connected and not used by another program, then press Try again.'),
      h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')));
    return;
  }
  runRobot(stream, credentials, roster);
}

/**
 * The deadman's clock: ticks from a dedicated worker, which a hidden page does not throttle; a
 * plain interval if the worker cannot start (then a hidden page checks about once a second, and
 * the page says so).
 */
class DeadmanClock {
  /** @param {() => void} onTick */
  constructor(onTick) {
    /** @type {'worker'|'interval'} */
    this.kind = 'worker';
    /** @type {Worker|null} */
    this.worker = null;
    /** @type {ReturnType<typeof setInterval>|null} */
    this.interval = null;
    try {
      const w = new Worker(new URL('./deadman_worker.js', import.meta.url), { type: 'module', name: 'deadman' });
      w.onmessage = () => onTick();
      w.onerror = () => this.fallBack(onTick);
      w.postMessage({ type: 'start', everyMs: DEADMAN_TICK_MS });
      this.worker = w;
    } catch {
      this.fallBack(onTick);
    }
  }

  /** @param {() => void} onTick */
  fallBack(onTick) {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.kind = 'interval';
    if (!this.interval) this.interval = setInterval(onTick, DEADMAN_TICK_MS);
    toast('The deadman timer runs on the page: keep this page visible.');
  }

  stop() {
    if (this.worker) this.worker.terminate();
    if (this.interval) clearInterval(this.interval);
    this.worker = null;
    this.interval = null;
  }
}

/**
 * The live robot: publishing, watchdog, display.
 * @param {MediaStream} stream
 * @param {() => Promise<{room: string, token: string}>} credentials
 * @param {Roster|null} roster
 */
function runRobot(stream, credentials, roster) {
  const s = new Session({ endpoint: 'whip', stream, credentials, videoSlots: 1, audioSlots: AUDIO_SLOTS });
  session = s;
  const watchdog = new Watchdog();
  const counts = { received: 0, obeyed: 0, ignored: 0 };
  /** @type {Record<string, number>} */
  const ignoredBy = {};
  /** @type {Participant[]} */
  let participants = [];
  /** @type {string|null} */
  let holder = null;
  let epoch = 0;
  /** The room's e-stop state (either latch), as last reported by the room. */
  let roomEstop = false;
  /** Our own e-stop (the STOP button): only this page releases it. */
  let localEstop = false;
  /** A new connection: the room has not told us its e-stop state yet. */
  let awaitingRoomEstop = false;
  /** @type {{audio: (string|null)[], video: (string|null)[]}} what our slots carry */
  let slots = { audio: [], video: [] };
  /** @type {string[]} */
  let speaking = [];
  /** @type {{t: number, reason: string, x: number, y: number, z: number, epoch: number}[]} every command, newest last (support and tests) */
  const commands = [];

  const preview = h('video', { id: 'local-video', class: 'pip mirror', autoplay: true, playsinline: true, muted: true, 'aria-label': 'What this robot’s camera sends' });
  preview.muted = true;
  // The picture only: a media element playing the live microphone (even muted) counts as a page
  // playing sound, which Chromium then never throttles, and the preview has no use for it.
  preview.srcObject = new MediaStream(stream.getVideoTracks());
  // The presenter: the driving doctor's camera. Its sound, if any, comes on the audio slots.
  const presenter = h('video', { id: 'presenter-video', autoplay: true, playsinline: true, muted: true, 'aria-describedby': 'presenter-label' });
  presenter.muted = true;
  const presenterLabel = h('p', { class: 'presenter-label', id: 'presenter-label', 'aria-live': 'polite' }, '');
  const noPresenter = h('p', { class: 'stage-empty', id: 'presenter-none' }, 'No doctor’s camera yet');
  const speakingLine = h('p', { class: 'speaking-line', id: 'speaking' }, '');
  const audioBox = h('div', { id: 'robot-audio', hidden: true });
  /** @type {HTMLAudioElement[]} */
  let audios = [];
  const soundOn = h('button', { type: 'button', class: 'small', id: 'sound-on', hidden: true, onclick: () => playAudio(true) }, 'Turn sound on');
  const connDot = h('span', { class: 'dot connecting', 'aria-hidden': 'true' });
  const connText = h('span', { id: 'conn-state' }, 'Connecting…');
  const driver = h('p', { class: 'state-line', id: 'driver', 'aria-live': 'polite' }, 'Nobody is driving');
  const estopState = h('div', { class: 'estop-state', id: 'estop-state', role: 'status', 'aria-live': 'assertive' }, 'E-stop clear');
  // Shown in words and percent ("forward 50%"); the raw i16 stays in `data-value`.
  const dx = h('output', { id: 'drive-x', dataset: { value: '0' } }, 'still');
  const dy = h('output', { id: 'drive-y', dataset: { value: '0' } }, 'still');
  const dz = h('output', { id: 'drive-z', dataset: { value: '0' } }, 'still');
  const arrow = h('div', { class: 'drive-arrow', id: 'drive-arrow', 'aria-hidden': 'true' }, '■');
  const reason = h('span', { id: 'drive-reason' }, 'stop');
  const epochEl = h('span', { id: 'drive-epoch' }, '0');
  const received = h('span', { id: 'frames-received' }, '0');
  const obeyed = h('span', { id: 'frames-obeyed' }, '0');
  const ignored = h('span', { id: 'frames-ignored' }, '0');
  const log = h('ul', { class: 'log', id: 'drive-log', 'aria-label': 'Recent drive commands' });
  const link = h('span', { id: 'robot-link' }, 'measuring…');
  const localStop = h('button', { type: 'button', class: 'estop', id: 'local-estop', 'aria-pressed': 'false', onclick: () => toggleLocalEstop() }, 'STOP (local e-stop)');
  const stage = h('div', { class: 'stage presenter-stage' }, presenter, noPresenter, presenterLabel, speakingLine, preview);
  const fullscreen = h('button', {
    type: 'button',
    class: 'small',
    id: 'fullscreen',
    onclick: () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else stage.requestFullscreen().catch(() => toast('Full screen is not available here.'));
    },
  }, 'Full screen');

  replace(main, h('div', { class: 'robot-page' },
    h('h1', { class: 'visually-hidden', id: 'robot-title' }, pageTitle()),
    h('div', { class: 'robot-main' },
      stage,
      // The dot stays with its words however narrow the screen; the buttons wrap instead.
      h('div', { class: 'state-line' }, h('span', { class: 'conn' }, connDot, connText), soundOn, fullscreen),
      driver,
      h('p', { class: 'hint' }, 'Link: ', link),
      audioBox),
    h('div', { class: 'robot-side' },
      h('section', { class: 'panel', 'aria-labelledby': 'cmd-title' },
        h('h2', { id: 'cmd-title' }, 'Drive command'),
        estopState,
        arrow,
        h('div', { class: 'drive-now' },
          h('div', {}, dx, h('span', {}, 'forward / back')),
          h('div', {}, dy, h('span', {}, 'sideways')),
          h('div', {}, dz, h('span', {}, 'turning'))),
        h('p', { class: 'hint' }, 'Reason: ', reason, ' · epoch ', epochEl),
        h('p', { class: 'hint' }, 'Frames received ', received, ' · obeyed ', obeyed, ' · ignored ', ignored),
        localStop),
      h('section', { class: 'panel', 'aria-labelledby': 'log-title' },
        h('h2', { id: 'log-title' }, 'Recent commands'), log))));

  // --- motors -----------------------------------------------------------------------------------

  /**
   * One axis for people: "forward 50%", "still"; the raw value for machines in `data-value`.
   * @param {HTMLElement} el
   * @param {number} v i16
   * @param {string} plus
   * @param {string} minus
   */
  function showAxis(el, v, plus, minus) {
    el.dataset.value = String(v);
    const pct = Math.round((Math.abs(v) / 32767) * 100);
    el.textContent = v === 0 ? 'still' : `${v > 0 ? plus : minus} ${pct}%`;
  }

  /** @param {Drive|null} d */
  function apply(d) {
    if (!d) return;
    // A real robot sends `d` to its motor controller here.
    commands.push({ t: performance.now(), reason: d.reason, x: d.linearX, y: d.linearY, z: d.angularZ, epoch: d.epoch });
    if (commands.length > 500) commands.splice(0, commands.length - 500);
    showAxis(dx, d.linearX, 'forward', 'back');
    showAxis(dy, d.linearY, 'left', 'right');
    showAxis(dz, d.angularZ, 'turn left', 'turn right');
    reason.textContent = d.reason;
    epochEl.textContent = String(d.epoch);
    arrow.textContent = isStillDrive(d) ? '■' : d.linearX > 0 ? (d.angularZ > 0 ? '↖' : d.angularZ < 0 ? '↗' : '↑')
      : d.linearX < 0 ? (d.angularZ > 0 ? '↙' : d.angularZ < 0 ? '↘' : '↓')
        : d.angularZ > 0 ? '↺' : d.angularZ < 0 ? '↻' : d.linearY > 0 ? '←' : '→';
    const t = formatClock(new Date());
    log.prepend(h('li', {}, `${t} ${d.reason.padEnd(7)} x=${d.linearX} y=${d.linearY} z=${d.angularZ} epoch=${d.epoch}`));
    while (log.children.length > 50) log.lastElementChild?.remove();
  }

  function renderCounts() {
    received.textContent = String(counts.received);
    obeyed.textContent = String(counts.obeyed);
    ignored.textContent = String(counts.ignored);
    ignored.title = Object.entries(ignoredBy).map(([k, v]) => `${k}: ${v}`).join(', ');
  }

  // --- e-stop -----------------------------------------------------------------------------------

  /** The watchdog holds still while either the room or this robot says so. */
  function syncEstop() {
    apply(watchdog.onEstop(roomEstop || localEstop));
    renderEstop();
  }

  function renderEstop() {
    const latched = watchdog.estopLatched();
    estopState.classList.toggle('latched', latched);
    // A live region: rewritten only when the words change (every estop event calls this).
    setText(estopState, !latched ? 'E-stop clear' : localEstop ? 'E-STOP LATCHED at the robot' : 'E-STOP LATCHED');
    estopState.dataset.latched = String(latched);
    estopState.dataset.local = String(localEstop);
    localStop.setAttribute('aria-pressed', String(localEstop));
    setText(localStop, localEstop ? 'Release local e-stop' : 'STOP (local e-stop)');
  }

  function toggleLocalEstop() {
    localEstop = !localEstop;
    // Latching is at once; releasing takes effect when the room (which also obeys our latch)
    // says the e-stop is clear, or at once if it does not know of any.
    syncEstop();
    sendTelemetry(); // the room latches (or releases our latch) from our report
  }

  // --- who is who -------------------------------------------------------------------------------

  /**
   * What a participant is, in words ("The driving doctor"): for when their name is not known.
   * @param {string|null} id
   */
  function label(id) {
    const p = participants.find((x) => x.id === id);
    if (!p) return 'A doctor';
    if (p.role === 'robot') return 'This robot';
    if (p.role === 'observer') return 'A student';
    if (id === holder) return 'The driving doctor';
    return p.can_control ? 'The booking’s doctor' : 'A consulting doctor';
  }

  /**
   * A participant's display name from the roster, if known (never their id).
   * @param {string|null} id
   * @returns {string|undefined}
   */
  function nameOf(id) {
    const p = participants.find((x) => x.id === id);
    return p && p.role !== 'robot' && roster ? roster.nameOf(p.sub) : undefined;
  }

  /**
   * Who a participant is: their name if known, else what they are ("A consulting doctor").
   * @param {string|null} id
   */
  function who(id) {
    return nameOf(id) || label(id);
  }

  /**
   * The presenter's caption: name and role ("Dr Dana Okafor (driving)", "Dr Chen Wei
   * (consulting doctor, not driving)"), or the role alone without a name.
   * @param {string} id
   */
  function presenterCaption(id) {
    const p = participants.find((x) => x.id === id);
    const role = id === holder ? 'driving'
      : !p || p.role !== 'doctor' ? 'not driving'
        : p.can_control ? 'booking’s doctor, not driving' : 'consulting doctor, not driving';
    const name = nameOf(id);
    if (name) return `${name} (${role})`;
    return id === holder ? 'The driving doctor' : `${label(id)} (not driving)`;
  }

  function renderDriver() {
    driver.dataset.holder = holder || '';
    // By name when known, else in words (the session id stays in `data-holder` for machines).
    const p = participants.find((x) => x.id === holder);
    const role = !p ? 'A doctor' : p.can_control ? 'The booking’s doctor' : 'A consulting doctor';
    setText(driver, holder ? `${nameOf(holder) || role} is driving` : 'Nobody is driving');
    const doctors = participants.filter((x) => x.role === 'doctor').length;
    const observers = participants.filter((x) => x.role === 'observer').length;
    driver.title = `${doctors} doctor(s), ${observers} observer(s) in the room`;
    renderPresenter();
  }

  function renderPresenter() {
    const id = slots.video[0] || null;
    presenter.dataset.participant = id || '';
    noPresenter.hidden = !!id;
    presenterLabel.hidden = !id;
    setText(presenterLabel, id ? presenterCaption(id) : '');
    const name = id ? nameOf(id) : undefined;
    presenter.setAttribute('aria-label', !id ? 'No doctor’s camera' : name ? `Camera of ${name}` : `Camera of ${label(id).toLowerCase()}`);
    const names = speaking.filter((x) => participants.some((p) => p.id === x)).map(who);
    setText(speakingLine, names.length ? `${listed(names)} ${names.length === 1 ? 'is' : 'are'} speaking` : '');
    speakingLine.hidden = !names.length;
    speakingLine.dataset.ids = speaking.join(' ');
  }

  // --- media ------------------------------------------------------------------------------------

  /** @param {CustomEvent<Lines>} e */
  function onLines(e) {
    const lines = e.detail;
    const slot = lines.videoSlots[0];
    presenter.srcObject = slot ? new MediaStream([slot.receiver.track]) : null;
    presenter.play().catch(() => {});
    for (const a of audios) a.srcObject = null;
    audios = lines.audioSlots.map((t, i) => {
      const a = h('audio', { autoplay: true, dataset: { slot: String(i) } });
      a.srcObject = new MediaStream([t.receiver.track]);
      return a;
    });
    replace(audioBox, audios);
    slots = { audio: audios.map(() => null), video: lines.videoSlots.map(() => null) };
    renderPresenter();
    playAudio(false);
  }

  /**
   * Play the doctors' voices; a browser that wants a tap first gets the *Turn sound on* button.
   * @param {boolean} tapped
   */
  function playAudio(tapped) {
    Promise.all(audios.map((a) => a.play())).then(() => {
      soundOn.hidden = true;
    }).catch(() => {
      soundOn.hidden = false;
      if (tapped) toast('The browser still blocks sound on this page.');
    });
  }

  s.addEventListener('lines', /** @type {EventListener} */ (onLines));

  s.addEventListener('joined', () => {
    // A new connection is a new room session: start still, with fresh epochs, and keep the
    // e-stop latch until the room says what its state is.
    apply(watchdog.reconnected());
    awaitingRoomEstop = true;
    renderEstop();
    // The booking on now may have changed while we were away: its people afresh.
    if (roster) roster.refresh();
  });

  if (roster) roster.addEventListener('change', () => renderDriver());

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
    switch (ev.type) {
      case 'estop':
        if (awaitingRoomEstop) {
          // The room remembers our own latch across our reconnects (and reloads): keep it.
          localEstop = localEstop || !!ev.robot;
          awaitingRoomEstop = false;
          if (localEstop && !ev.robot) sendTelemetry();
        }
        roomEstop = ev.latched;
        syncEstop();
        break;
      case 'lease':
        // The stop frame may have been lost; the lease event is not.
        apply(watchdog.onLease(ev.epoch));
        holder = ev.holder;
        epoch = ev.epoch;
        renderDriver();
        break;
      case 'presence':
      case 'joined':
      case 'left':
        participants = applyPresence(participants, ev);
        // Someone new: their name, if the roster does not have it yet.
        if (roster) roster.want(participants.filter((p) => p.role !== 'robot').map((p) => p.sub));
        renderDriver();
        break;
      case 'slots':
        slots = { audio: ev.audio, video: ev.video };
        renderPresenter();
        break;
      case 'speaking':
        speaking = ev.ids;
        renderPresenter();
        break;
      case 'error': {
        const m = describeError(ev.code, ev.message);
        if (m.ends) {
          s.end(m.text);
        } else {
          toast(m.text);
        }
        break;
      }
      default:
        break;
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
      ended: `Stopped: ${s.detail}`,
    }[s.state];
    connText.dataset.state = s.state;
    if (s.state !== 'connected') {
      apply(watchdog.connectionLost());
      slots = { audio: [], video: [] };
      speaking = [];
      renderPresenter();
    }
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

  // The deadman: checked every 20 ms on a worker's clock, so a silent driver stops the robot
  // within ~300 ms even while this page is hidden.
  const deadman = new DeadmanClock(() => apply(watchdog.poll(performance.now())));
  const telemetry = setInterval(() => {
    if (s.state === 'connected') sendTelemetry();
  }, 1000);

  window.addEventListener('pagehide', () => {
    deadman.stop();
    clearInterval(telemetry);
    s.close();
  });

  /** @type {any} */ (window).__bedside = {
    session: s,
    watchdog,
    deadman,
    counts,
    ignoredBy,
    commands,
    get holder() { return holder; },
    get epoch() { return epoch; },
    get slots() { return slots; },
    get speaking() { return speaking; },
    get localEstop() { return localEstop; },
    get roster() { return roster ? { state: roster.state, requests: roster.requests } : null; },
  };
  s.start();
}

/**
 * Names as a sentence: "A", "A and B", "A, B and C".
 * @param {string[]} names
 */
function listed(names) {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** The page's heading: the robot's name when known. */
function pageTitle() {
  return robotName ? `${robotName}: robot screen` : 'Robot screen';
}

/**
 * Show the robot's name in the top bar, the heading and the window title.
 * @param {string} name
 */
function showName(name) {
  robotName = name;
  setText($('#robot-who'), name);
  const title = document.getElementById('robot-title');
  if (title) setText(title, pageTitle());
  document.title = `${name} · Bedside robot`;
}

const link = takeStartLink();
if (link.name) showName(link.name);
if (link.room && link.credential) {
  start(link.room, fromCredential(link.room, link.credential), new Roster(link.room, link.credential));
} else if (link.room && link.token) {
  // A publish token alone: good until it expires (then the page says so and stops retrying).
  const { room, token } = link;
  // No credential, so no roster: people are shown by role.
  start(room, async () => ({ room, token }), null);
} else {
  showSetup(link.room, link.refused);
}
