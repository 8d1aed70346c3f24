// The consult view: the robot's live video and audio, the other doctors' voices (and one of
// their cameras, small), who is in the room, who drives and who speaks, link quality, the
// booking's countdown, and for doctors their own microphone and camera (mute, camera off), the
// driving controls (on-screen joystick, keyboard, gamepad), request / hand off control, and the
// e-stop.
//
// Doctors are asked for the microphone and camera (echo cancellation, noise suppression and
// automatic gain on) before joining; whoever refuses still joins, receiving only, and is told so.
// Observers (students) are never asked: they get the video, the doctors' voices and the room and
// nothing else: the control elements are never created for them, so they are not in the DOM at
// all. Doctors' controls are always created and enabled or disabled by state (holding the lease,
// e-stop, connection).
//
// States shown: connecting, reconnecting (automatic, with back-off), cannot join, robot offline,
// waiting for video, you are driving, someone else is driving, nobody is driving, e-stop latched,
// booking ends in N minutes / has ended. The booking's doctor who joined during the grace period
// before the slot is reconnected automatically at the start, with a token that allows control.
//
// Not here: WebRTC and reconnection (session.js), frame sending (drive.js), inputs
// (joystick.js, keyboard.js, gamepad.js), statistics (stats.js).

import { api, ApiError, explainError } from './api.js';
import { h, replace, setText, formatDateTime, formatTime, formatClock, formatCountdown, formatDuration, toast } from './dom.js';
import { Session, FatalSessionError } from './session.js';
import { DriveSender } from './drive.js';
import { Joystick } from './joystick.js';
import { KeyboardInput } from './keyboard.js';
import { GamepadInput } from './gamepad.js';
import { StatsSampler, describe, describePath } from './stats.js';
import { applyPresence, describeError } from './events.js';

/** @typedef {import('./events.js').ServerEvent} ServerEvent */
/** @typedef {import('./events.js').Participant} Participant */
/** @typedef {import('./events.js').Telemetry} Telemetry */
/** @typedef {import('./api.js').Booking} Booking */
/** @typedef {import('./api.js').JoinResponse} JoinResponse */

/** Joining opens this long before the booking starts (the API's `join_grace`). */
const JOIN_GRACE_MS = 5 * 60_000;
/** Warn this long before the booking ends. */
const ENDS_SOON_MS = 5 * 60_000;
/** Other doctors' voices played at once (the loudest; the SFU picks them). */
const AUDIO_SLOTS = 3;

/**
 * What a doctor sends: the microphone and camera, whichever the browser and the person allow.
 * A refused or missing device is not an error: the doctor joins without it and is told.
 * @returns {Promise<{stream: MediaStream|null, problem: string}>}
 */
async function openLocalMedia() {
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
    return { stream: null, problem: 'This browser cannot use a microphone or camera here: the others cannot hear or see you.' };
  }
  /** @type {unknown} */
  let firstError = null;
  for (const want of [{ audio, video }, { audio }, { video }]) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(want);
      if (!want.video) return { stream, problem: 'No camera: the others can hear you but not see you.' };
      if (!want.audio) return { stream, problem: 'No microphone: the others can see you but not hear you.' };
      return { stream, problem: '' };
    } catch (err) {
      firstError = firstError || err;
      // Refused: asking again for less would only be refused again.
      if (err instanceof DOMException && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) break;
    }
  }
  const refused = firstError instanceof DOMException && (firstError.name === 'NotAllowedError' || firstError.name === 'SecurityError');
  return {
    stream: null,
    problem: refused
      ? 'Microphone and camera are blocked: you are in the room and can see and hear it, but nobody can hear or see you. Allow them for this site in the browser, then rejoin.'
      : 'No microphone or camera could be opened: you are in the room and can see and hear it, but nobody can hear or see you.',
  };
}

/**
 * Room state as the events describe it.
 * @typedef {object} RoomState
 * @property {Participant|null} you
 * @property {Participant[]} participants
 * @property {string|null} holder
 * @property {number} epoch
 * @property {boolean} estop
 * @property {string|null} estopBy
 * @property {boolean} estopRobot the robot's own e-stop (released only at the robot)
 * @property {string[]} requests who asked me (the holder) for control
 * @property {boolean} requested I asked and wait for an answer
 * @property {Telemetry|null} telemetry
 * @property {{audio: (string|null)[], video: (string|null)[]}} slots who our receive slots carry
 * @property {string[]} speaking who speaks now, loudest first
 * @property {Map<string, {audio: boolean, video: boolean}>} muted who muted what
 */

/**
 * @param {HTMLElement} main
 * @param {string} bookingId
 * @returns {{destroy: () => void}}
 */
export function mountConsult(main, bookingId) {
  const me = /** @type {import('./api.js').User} */ (api.user);
  /** @type {Booking|null} */
  let booking = null;
  /** @type {JoinResponse|null} */
  let grant = null;
  /** @type {Map<string, string>} user id -> display name */
  const names = new Map([[me.id, me.display_name]]);
  let robotName = 'Robot';
  let destroyed = false;
  /** The booking's time is over (the session was closed for that reason). */
  let ended = false;
  /** @type {ReturnType<typeof setTimeout>|null} */
  let controlTimer = null;
  /**
   * An e-stop this page pressed that the room has not confirmed yet (Date.now() of the press):
   * sent whenever the link is live, again on every new connection, until an `estop` event says
   * the room is latched. While the link is down it is shown as not delivered.
   * @type {number|null}
   */
  let estopWanted = null;
  /** The link (connection and heartbeat) the wanted e-stop was last sent on. */
  let estopSentOn = '';
  /** When it was last sent (Date.now()): unconfirmed, it is sent again every second. */
  let estopSentAt = 0;
  /** Times the link came back, so a wanted e-stop is sent again on each. */
  let linkUps = 0;
  /** @type {string|null} our participant id on the current or last connection */
  let myId = null;
  /** @type {{at: number, why: string}|null} we drove and lost control: when and why */
  let controlLost = null;
  /** @type {number|null} when the page first showed the loss of the link (Date.now() ms) */
  let lossShownAt = null;
  /** @type {number|null} opened before the join window: when it opens (Date.now() ms) */
  let joinOpensAt = null;
  /** @type {ReturnType<typeof setInterval>|null} the countdown to the join window */
  let waitTicker = null;

  /** @type {RoomState} */
  const room = {
    you: null, participants: [], holder: null, epoch: 0, estop: false, estopBy: null, estopRobot: false,
    requests: [], requested: false, telemetry: null,
    slots: { audio: [], video: [] }, speaking: [], muted: new Map(),
  };

  // --- layout -----------------------------------------------------------------------------------

  const title = h('h1', { id: 'consult-title' }, 'Consult');
  const countdown = h('span', { class: 'countdown', id: 'countdown', role: 'timer', 'aria-live': 'off' }, '');
  const video = h('video', { id: 'remote-video', autoplay: true, playsinline: true, 'aria-label': 'Live video from the robot' });
  const banner = h('div', { class: 'banner', id: 'state-banner', role: 'status', 'aria-live': 'polite' });
  const linkBadge = h('span', { class: 'linkbadge', id: 'link-badge' }, '');
  const connDot = h('span', { class: 'dot connecting', 'aria-hidden': 'true' });
  const connText = h('span', { id: 'conn-state' }, 'Connecting…');
  const driveStatus = h('p', { class: 'state-line', id: 'drive-status', 'aria-live': 'polite' }, '');
  const unmute = h('button', { type: 'button', class: 'small', id: 'unmute', hidden: true, onclick: () => soundOn() }, 'Turn sound on');
  // Another doctor's camera (the video slot), small, over the robot's picture.
  const peerVideo = h('video', { id: 'peer-video', class: 'pip', autoplay: true, playsinline: true, muted: true, hidden: true });
  peerVideo.muted = true;
  const peerLabel = h('span', { class: 'pip-label', id: 'peer-label', hidden: true });
  // The other doctors' voices: one element per audio slot.
  const audioBox = h('div', { id: 'slot-audio', hidden: true });
  /** @type {HTMLAudioElement[]} */
  let audios = [];
  const speakingLine = h('p', { class: 'speaking-now', id: 'speaking', 'aria-live': 'off' });
  const peopleList = h('ul', { class: 'list people', id: 'people' });
  const linkList = h('dl', { class: 'kv', id: 'link-stats' });
  const robotInfo = h('dl', { class: 'kv', id: 'robot-telemetry' });
  const bookingInfo = h('p', { class: 'muted', id: 'booking-info' }, '');
  const isObserver = me.role === 'student';
  /** @type {MediaStream|null} what we send (doctors) */
  let local = null;
  let micMuted = false;
  let camOff = false;

  // Doctor-only controls. Built only for doctors; see the module comment.
  /** @type {null|{estop: HTMLButtonElement, estopStatus: HTMLElement, notice: HTMLElement, clear: HTMLButtonElement, take: HTMLButtonElement, release: HTMLButtonElement, handoffTo: HTMLSelectElement, handoff: HTMLButtonElement, requests: HTMLElement, hint: HTMLElement, panel: HTMLElement, joystick: Joystick, keyboard: KeyboardInput, gamepad: GamepadInput, drive: DriveSender}} */
  let ctl = null;

  const session = new Session({
    endpoint: 'whep',
    sends: !isObserver,
    audioSlots: AUDIO_SLOTS,
    videoSlots: isObserver ? 0 : 1,
    credentials: async () => {
      try {
        grant = await api.join(bookingId);
        joinOpensAt = null;
      } catch (err) {
        const early = err instanceof ApiError && err.code === 'outside_join_window' ? /^joining opens at (.+)$/.exec(err.message) : null;
        if (early && Number.isFinite(Date.parse(early[1]))) {
          // Our clock is a little ahead of the server's: wait, and try again shortly.
          joinOpensAt = Date.parse(early[1]);
          throw new Error(`joining opens at ${formatClock(joinOpensAt)}`);
        }
        if (err instanceof ApiError && [403, 404, 409, 422].includes(err.status)) {
          throw new FatalSessionError(explainError(err), err.status);
        }
        throw err;
      }
      scheduleControlRejoin();
      return { room: grant.room, token: grant.token, iceServers: grant.ice_servers || [] };
    },
  });

  // Doctor-only: their own microphone and camera.
  /** @type {null|{mic: HTMLButtonElement, cam: HTMLButtonElement, preview: HTMLVideoElement, status: HTMLElement, row: HTMLElement}} */
  let own = null;
  if (!isObserver) {
    const mic = h('button', { type: 'button', id: 'mute-mic', 'aria-pressed': 'false', disabled: true, onclick: () => setMuted(!micMuted, camOff) }, 'Mute microphone');
    const cam = h('button', { type: 'button', id: 'camera-off', 'aria-pressed': 'false', disabled: true, onclick: () => setMuted(micMuted, !camOff) }, 'Turn camera off');
    const preview = h('video', { id: 'own-video', class: 'own-preview mirror', autoplay: true, playsinline: true, muted: true, 'aria-label': 'Your camera, as the others see it' });
    preview.muted = true;
    const status = h('p', { class: 'hint own-status', id: 'own-media-status', role: 'status' }, 'Asking for your microphone and camera…');
    const row = h('section', { class: 'media-row', 'aria-label': 'Your microphone and camera' },
      preview, h('div', { class: 'media-buttons' }, mic, cam), status);
    own = { mic, cam, preview, status, row };
  }

  if (!isObserver) {
    const joystick = new Joystick();
    const estop = h('button', { type: 'button', class: 'estop', id: 'estop', 'aria-pressed': 'false', 'aria-keyshortcuts': 'Space', onclick: () => pressEstop() }, 'E-STOP');
    const clear = h('button', { type: 'button', id: 'estop-clear', hidden: true, onclick: () => send({ type: 'estop_clear' }) }, 'Clear e-stop');
    const take = h('button', { type: 'button', class: 'primary', id: 'request-control', onclick: () => requestControl() }, 'Take control');
    const release = h('button', { type: 'button', id: 'release-control', onclick: () => send({ type: 'release' }) }, 'Release control');
    const handoffTo = h('select', { id: 'handoff-to', 'aria-label': 'Hand off control to' });
    const handoff = h('button', { type: 'button', id: 'handoff', onclick: () => { if (handoffTo.value) send({ type: 'handoff', to: handoffTo.value }); } }, 'Hand off');
    const requests = h('div', { id: 'lease-requests', 'aria-live': 'assertive' });
    const hint = h('p', { class: 'hint', id: 'control-hint', 'aria-live': 'polite' });
    // What became of a pressed e-stop, and control lost without our doing: said at once.
    const estopStatus = h('p', { class: 'estop-status', id: 'estop-status', role: 'alert', hidden: true });
    const notice = h('p', { class: 'control-notice', id: 'control-notice', role: 'status', hidden: true });
    const keyboard = new KeyboardInput({ onEstop: () => pressEstop() });
    const gamepad = new GamepadInput({ onEstop: () => pressEstop() });
    const drive = new DriveSender({ send: (b) => session.sendControl(b), inputs: [joystick, keyboard, gamepad] });
    drive.start();
    const panel = h('section', { class: 'panel', id: 'drive-panel', 'aria-labelledby': 'drive-title' },
      h('h2', { id: 'drive-title', class: 'visually-hidden' }, 'Drive the robot'),
      estop, estopStatus, clear, notice,
      h('div', { class: 'controls', style: 'margin-top: .8rem' },
        joystick.el,
        h('div', { class: 'buttons' }, take, release)),
      h('div', { class: 'handoff-row' },
        h('label', { for: 'handoff-to', class: 'visually-hidden' }, 'Hand off control to'),
        handoffTo, handoff),
      requests, hint,
      // Keyboard users only: hidden on touch screens and phones (app.css).
      h('p', { class: 'keys', id: 'key-hints' },
        'Keys: ', h('kbd', {}, 'W'), h('kbd', {}, 'A'), h('kbd', {}, 'S'), h('kbd', {}, 'D'), ' or arrows to drive, ',
        h('kbd', {}, 'Q'), h('kbd', {}, 'E'), ' strafe, ', h('kbd', {}, 'Shift'), ' full speed, ', h('kbd', {}, 'Space'), ' e-stop.'));
    ctl = { estop, estopStatus, notice, clear, take, release, handoffTo, handoff, requests, hint, panel, joystick, keyboard, gamepad, drive };
  }

  const linkPanel = h('section', { class: `panel link-panel${ctl ? ' side-by-side' : ''}`, 'aria-label': 'Link quality and robot' },
    h('div', {}, h('h2', { id: 'link-title' }, 'Link quality'), linkList),
    h('div', {}, h('h2', { style: ctl ? '' : 'margin-top: .8rem' }, 'Robot'), robotInfo));

  const root = h('div', { class: `consult${ctl ? ' with-estop' : ''}` },
    h('div', { class: 'consult-head' },
      h('div', {}, title, bookingInfo),
      h('div', { class: 'actions' }, countdown,
        h('button', { type: 'button', id: 'leave', onclick: () => { location.hash = '#/'; } }, 'Leave'))),
    h('div', { class: 'col' },
      h('div', { class: 'stage' }, video, banner, linkBadge, peerVideo, peerLabel),
      h('div', { class: 'status-row' },
        h('div', { class: 'state-line' }, connDot, connText, unmute),
        driveStatus),
      speakingLine,
      own ? own.row : null,
      audioBox,
      ctl ? linkPanel : null),
    h('div', { class: 'col' },
      ctl ? ctl.panel : null,
      h('section', { class: 'panel people-panel', 'aria-labelledby': 'people-title' }, h('h2', { id: 'people-title' }, 'In the room'), peopleList),
      // Without the driving panel the side column has room for it.
      ctl ? null : linkPanel));
  main.append(root);

  // --- names ------------------------------------------------------------------------------------

  async function loadContext() {
    try {
      booking = await api.booking(bookingId);
      const robots = await api.robots();
      const r = robots.find((x) => x.id === booking?.robot_id);
      if (r) robotName = r.name;
      title.textContent = `Consult · ${robotName}`;
      bookingInfo.textContent = `${r ? `${r.ward} · ` : ''}${formatDateTime(booking.starts_at)}–${formatTime(booking.ends_at)}${booking.note ? ` · ${booking.note}` : ''}`;
    } catch (err) {
      bookingInfo.textContent = explainError(err);
    }
    if (me.role === 'doctor' || me.role === 'admin') {
      try {
        const [doctors, students] = await Promise.all([api.users('doctor'), api.users('student')]);
        for (const u of [...doctors, ...students]) names.set(u.id, u.display_name);
      } catch {
        // Fall back to roles.
      }
    }
    render();
  }

  /**
   * A person's label for the UI: name if we may know it, else what they are in this booking.
   * @param {Participant} p
   */
  function label(p) {
    if (p.role === 'robot') return robotName;
    const name = names.get(p.sub);
    if (name) return name;
    if (booking && p.sub === booking.doctor_id) return 'Booking doctor';
    const inv = booking && booking.invitations.find((i) => i.user_id === p.sub);
    if (inv) return inv.role === 'consultant' ? 'Consultant' : 'Observer';
    return p.role === 'doctor' ? 'Doctor' : 'Observer';
  }

  /** @param {string|null} id */
  function participant(id) {
    return room.participants.find((p) => p.id === id) || null;
  }

  // --- actions ----------------------------------------------------------------------------------

  /** @param {import('./events.js').ClientEvent} ev */
  function send(ev) {
    if (!session.sendEvent(ev)) toast('Not connected to the room right now.');
  }

  /**
   * Mute or unmute our microphone and camera: the track sends silence / black (`enabled`), and
   * the room is told, so it stops giving us a slot and shows it.
   * @param {boolean} audio
   * @param {boolean} videoOff
   */
  function setMuted(audio, videoOff) {
    micMuted = audio;
    camOff = videoOff;
    if (local) {
      for (const t of local.getAudioTracks()) t.enabled = !micMuted;
      for (const t of local.getVideoTracks()) t.enabled = !camOff;
    }
    session.sendEvent({ type: 'media', audio_muted: micMuted, video_muted: camOff });
    renderOwn();
  }

  /**
   * Latch the e-stop. Never refused by this page: with the link down it is kept and marked not
   * delivered, and sent as soon as a connection answers again (the room may say it is latched
   * already: then it is confirmed at once).
   */
  function pressEstop() {
    if (!ctl) return;
    estopWanted = Date.now();
    estopSentOn = '';
    deliverEstop();
    render();
  }

  /**
   * Send the wanted e-stop on the live link: at once on a new link, and again every second until
   * the room confirms it (a send on a link that has just come back may not be heard).
   */
  function deliverEstop() {
    if (estopWanted === null || !session.live) return;
    const link = `${session.generation}/${linkUps}`;
    if (estopSentOn === link && Date.now() - estopSentAt < 1000) return;
    if (session.sendEvent({ type: 'estop' })) {
      estopSentOn = link;
      estopSentAt = Date.now();
    }
  }

  /**
   * We held the lease and no longer do, not by our own hand: remember why, to say so.
   * @param {string} why
   */
  function loseControl(why) {
    controlLost = { at: Date.now(), why };
  }

  function requestControl() {
    send({ type: 'request_lease' });
  }

  /**
   * The booking's doctor joined before the slot started and has no control yet: get a new token
   * at the start (the API allows control from then on) by reconnecting.
   */
  function scheduleControlRejoin() {
    if (controlTimer || !grant || !booking || grant.can_control || grant.role !== 'doctor') return;
    if (booking.doctor_id !== me.id) return;
    const wait = Date.parse(booking.starts_at) - Date.now() + 1000;
    if (wait <= 0 || wait > 24 * 3600_000) return;
    controlTimer = setTimeout(() => {
      controlTimer = null;
      if (!destroyed) session.restart('rejoining with control');
    }, wait);
  }

  // --- events -----------------------------------------------------------------------------------

  session.addEventListener('server-event', (e) => {
    const ev = /** @type {CustomEvent<ServerEvent>} */ (e).detail;
    switch (ev.type) {
      case 'welcome':
        room.you = ev.you;
        // The room says whether it is latched (an `estop` follows if so): show its state, not
        // what this page remembers from before the connection dropped.
        room.estop = false;
        room.estopBy = null;
        room.estopRobot = false;
        break;
      case 'presence':
      case 'joined':
      case 'left':
        room.participants = applyPresence(room.participants, ev);
        room.requests = room.requests.filter((id) => participant(id));
        break;
      case 'lease': {
        const mine = !!myId && room.holder === myId;
        if (mine && ev.holder !== myId) {
          const why = {
            revoked: 'an administrator took control away',
            expired: 'the booking ended',
            suspended: 'the server stopped hearing your browser; the robot was stopped',
            disconnected: 'your connection dropped; the robot was stopped',
          }[/** @type {string} */ (ev.reason)];
          if (why) loseControl(why);
        }
        if (ev.holder && ev.holder === myId) controlLost = null;
        if (ev.holder !== room.holder) room.requested = false;
        room.holder = ev.holder;
        room.epoch = ev.epoch;
        room.requests = [];
        if (ev.holder && ev.holder === session.participantId && ev.reason === 'handoff') toast('You have control now.');
        break;
      }
      case 'lease_requested':
        if (ev.from === session.participantId) {
          room.requested = true;
        } else if (!room.requests.includes(ev.from)) {
          room.requests.push(ev.from);
        }
        break;
      case 'lease_denied':
        room.requested = false;
        toast('Your request for control was declined.');
        break;
      case 'estop':
        room.estop = ev.latched;
        room.estopBy = ev.by;
        room.estopRobot = !!ev.robot;
        if (ev.latched) estopWanted = null; // delivered (or latched already): confirmed
        break;
      case 'telemetry':
        room.telemetry = ev.telemetry;
        break;
      case 'slots':
        room.slots = { audio: ev.audio, video: ev.video };
        break;
      case 'speaking':
        room.speaking = ev.ids;
        // Four times a second at most: only the speaking marks change, nothing is rebuilt.
        renderSpeaking();
        return;
      case 'media':
        room.muted.set(ev.id, { audio: ev.audio_muted, video: ev.video_muted });
        break;
      case 'error': {
        if (ev.code === 'no_holder' || ev.code === 'forbidden' || ev.code === 'not_holder' || ev.code === 'expired'
          || ev.code === 'already_holder' || ev.code === 'no_request' || ev.code === 'not_in_room'
          || ev.code === 'control_revoked') {
          room.requested = false;
        }
        const m = describeError(ev.code, ev.message);
        if (m.ends) session.end(m.text);
        else toast(m.text);
        break;
      }
    }
    render();
  });

  session.addEventListener('state', () => {
    if (session.state !== 'connected' && myId && room.holder === myId && !controlLost) {
      loseControl('the connection to the server was lost; the robot stopped by itself');
    }
    if (session.state !== 'connected') {
      room.participants = [];
      room.holder = null;
      room.requests = [];
      room.requested = false;
      room.slots = { audio: [], video: [] };
      room.speaking = [];
      room.muted = new Map();
    }
    render();
  });

  session.addEventListener('joined', () => {
    myId = session.participantId;
    if (ctl) ctl.drive.resetSequence();
  });

  session.addEventListener('link', (e) => {
    const { alive } = /** @type {CustomEvent<{alive: boolean}>} */ (e).detail;
    if (alive) {
      linkUps += 1;
      deliverEstop();
    } else if (myId && room.holder === myId) {
      loseControl('the connection to the server was lost; the robot stopped by itself');
    }
    render();
  });

  session.addEventListener('events-open', () => {
    deliverEstop();
    // A new session starts unmuted in the room's eyes.
    if (micMuted || camOff) session.sendEvent({ type: 'media', audio_muted: micMuted, video_muted: camOff });
  });

  session.addEventListener('track', () => {
    if (video.srcObject !== session.remoteStream) video.srcObject = session.remoteStream;
    playVideo();
  });

  session.addEventListener('lines', (e) => {
    const lines = /** @type {CustomEvent<import('./session.js').Lines>} */ (e).detail;
    for (const a of audios) a.srcObject = null;
    audios = lines.audioSlots.map((t, i) => {
      const a = h('audio', { autoplay: true, dataset: { slot: String(i) } });
      a.srcObject = new MediaStream([t.receiver.track]);
      return a;
    });
    replace(audioBox, audios);
    const slot = lines.videoSlots[0];
    peerVideo.srcObject = slot ? new MediaStream([slot.receiver.track]) : null;
    peerVideo.play().catch(() => {});
    room.slots = { audio: audios.map(() => null), video: lines.videoSlots.map(() => null) };
    playVideo();
  });

  function playVideo() {
    const others = audios.filter((a) => !a.muted);
    Promise.all([video.play(), ...others.map((a) => a.play())]).catch(() => {
      // No user gesture on this page yet (opened by URL): start muted, offer sound.
      video.muted = true;
      for (const a of audios) a.muted = true;
      unmute.hidden = false;
      video.play().catch(() => {});
      for (const a of audios) a.play().catch(() => {});
    });
  }

  function soundOn() {
    video.muted = false;
    for (const a of audios) a.muted = false;
    unmute.hidden = true;
    Promise.all([video.play(), ...audios.map((a) => a.play())]).catch(() => {
      toast('The browser still blocks sound on this page.');
    });
  }

  video.addEventListener('resize', render);
  video.addEventListener('playing', render);

  // Resolution and frame rate of the robot's picture, not of a doctor's camera on a slot.
  const stats = new StatsSampler(() => session.pc, 'in', () => session.lines.robotVideo?.mid ?? null);
  stats.addEventListener('stats', () => renderStats());
  stats.start();

  // --- rendering --------------------------------------------------------------------------------

  function robotOnline() {
    return room.participants.some((p) => p.role === 'robot');
  }

  function iHold() {
    return !!session.participantId && room.holder === session.participantId;
  }

  /** The link is lost (heartbeat unanswered) or being re-made: nothing we send arrives. */
  function linkDown() {
    return session.state === 'reconnecting' || (session.state === 'connected' && !session.alive);
  }

  /** Who can clear the latched e-stop, in words, for the banner and the hint. */
  function whoClears() {
    if (room.estopRobot) return 'Only someone at the robot can release it (its own e-stop).';
    const holder = participant(room.holder);
    if (holder) return holder.id === session.participantId ? 'You can clear it once the robot is safe.' : `${label(holder)} (who has control) can clear it.`;
    const doctor = booking ? room.participants.find((p) => p.sub === booking?.doctor_id && p.role === 'doctor') : null;
    if (booking && booking.doctor_id === me.id) return 'Nobody has control: take control, check the robot, then clear it.';
    return doctor
      ? `Nobody has control: ${label(doctor)} (the booking’s doctor) can take control and clear it.`
      : 'Nobody has control: the booking’s doctor can clear it after taking control.';
  }

  function render() {
    if (destroyed) return;
    const connected = session.state === 'connected' && session.alive;
    if (iHold() && session.live) controlLost = null;

    // Connection line.
    const lost = linkDown();
    connDot.className = `dot ${lost ? 'reconnecting' : session.state}`;
    const connLine = session.state === 'connected' && !session.alive ? (session.iceRestart ? `Reconnecting… ${session.detail}` : 'Connection lost: no answer from the server')
      : {
        idle: 'Starting…',
        connecting: 'Connecting…',
        connected: 'Connected',
        reconnecting: `Reconnecting… ${session.detail}`,
        closed: 'Left the room',
        failed: `Cannot join: ${session.detail}`,
        ended: 'Left the room',
      }[session.state];
    setText(connText, connLine);
    connText.dataset.state = lost ? 'lost' : session.state;

    // The banner over the video: the most important thing to know right now.
    /** @type {[string, string]|null} */
    let b = null;
    const undelivered = estopWanted !== null ? ' Your E-STOP was not delivered: it will be sent as soon as the connection is back.' : '';
    const lastKnown = room.estop && estopWanted === null ? ' (The e-stop was latched when the connection dropped.)' : '';
    const waiting = joinOpensAt !== null && ['idle', 'connecting', 'reconnecting'].includes(session.state);
    if (waiting) {
      const left = /** @type {number} */ (joinOpensAt) - Date.now();
      b = ['info', `Joining opens at ${formatTime(new Date(/** @type {number} */ (joinOpensAt)))}${left > 0 ? ` (in ${formatCountdown(left)})` : ''}: this page joins by itself then.`];
    } else if (session.state === 'failed') b = ['danger', `Cannot join: ${session.detail}`];
    else if (session.state === 'connected' && !session.alive) b = ['danger', `Connection lost — the robot has stopped by itself. Reconnecting…${undelivered}${lastKnown}`];
    else if (session.state === 'reconnecting') b = ['danger', `Connection lost — the robot has stopped by itself. Reconnecting… (${session.detail})${undelivered}${lastKnown}`];
    else if (session.state === 'ended') b = ['danger', session.detail];
    else if (session.state === 'closed') b = ['info', ended ? 'The booking has ended.' : 'You left the room.'];
    else if (room.estop) b = ['danger', `E-STOP LATCHED — the robot is stopped${room.estopRobot ? ' by its own e-stop' : room.estopBy && participant(room.estopBy) ? ` (by ${label(/** @type {Participant} */ (participant(room.estopBy)))})` : ''}. ${whoClears()}`];
    else if (session.state === 'connecting' || session.state === 'idle') b = ['info', 'Connecting to the robot…'];
    else if (connected && !robotOnline()) b = ['warn', 'Robot offline — waiting for it to connect'];
    else if (connected && video.videoWidth <= 2) b = ['info', 'Waiting for video…'];
    banner.hidden = !b;
    banner.className = `banner ${b ? b[0] : ''}`;
    // The countdown changes every second: read out once, not every second.
    banner.setAttribute('aria-live', waiting ? 'off' : 'polite');
    banner.dataset.state = !b ? 'live' : waiting ? 'waiting' : session.state === 'connected' && !session.alive ? 'lost' : b[1].startsWith('E-STOP') ? 'estop' : session.state === 'connected' && !robotOnline() ? 'robot-offline' : session.state;
    setText(banner, b ? b[1] : '');
    if (lost && lossShownAt === null) lossShownAt = Date.now();
    if (!lost) lossShownAt = null;

    // Who drives.
    const holder = participant(room.holder);
    const driveState = lost ? 'lost' : !connected ? 'unknown' : iHold() ? 'you' : holder ? 'other' : 'nobody';
    const driveKey = `${driveState}|${room.estop}|${holder ? label(holder) : ''}`;
    if (driveStatus.dataset.key !== driveKey) {
      // Rebuilt only when it changes: a polite live region rewritten with the same words is
      // read out again.
      driveStatus.dataset.key = driveKey;
      driveStatus.replaceChildren();
      driveStatus.dataset.state = driveState;
      if (lost) {
        driveStatus.append(h('span', { class: 'dot poor', 'aria-hidden': 'true' }), ' Nobody can drive: the connection is lost');
      } else if (connected) {
        if (iHold() && room.estop) {
          // Never a green "Driving" while the robot is held by the e-stop.
          driveStatus.append(h('span', { class: 'badge stopped' }, 'Stopped'), ' You have control; the e-stop holds the robot');
        } else if (iHold()) {
          driveStatus.append(h('span', { class: 'badge driving' }, 'Driving'), ' You are driving');
        } else if (holder) {
          driveStatus.append(h('span', { class: `dot ${room.estop ? 'poor' : 'good'}`, 'aria-hidden': 'true' }), room.estop ? ` ${label(holder)} has control (stopped by the e-stop)` : ` ${label(holder)} is driving`);
        } else {
          driveStatus.append(h('span', { class: 'dot', 'aria-hidden': 'true' }), ' Nobody is driving');
        }
      }
    }

    renderPeople();
    renderSlots();
    renderOwn();
    renderControls();
    renderTelemetry();
    renderCountdown();
  }

  /** @param {Participant} p */
  function mutedText(p) {
    const m = room.muted.get(p.id);
    if (p.role !== 'doctor') return '';
    if (!p.sends_audio && !p.sends_video) return 'no microphone or camera';
    const parts = [];
    if (!p.sends_audio) parts.push('no microphone');
    else if (m && m.audio) parts.push('muted');
    if (!p.sends_video) parts.push('no camera');
    else if (m && m.video) parts.push('camera off');
    return parts.join(', ');
  }

  function renderPeople() {
    const key = `${session.state}|${room.holder}|${room.estop}|${room.participants.map((p) => `${p.id}=${label(p)}:${mutedText(p)}`).join(',')}`;
    if (peopleList.dataset.key === key) return renderSpeaking();
    peopleList.dataset.key = key;
    if (!room.participants.length) {
      replace(peopleList, h('li', { class: 'muted' }, session.state === 'connected' ? 'Nobody else yet.' : '—'));
      return;
    }
    replace(peopleList, room.participants.map((p) => {
      const you = p.id === session.participantId;
      const inv = booking && booking.invitations.find((i) => i.user_id === p.sub);
      const kind = p.role === 'robot' ? 'robot' : p.role === 'observer' ? 'observer' : inv && inv.role === 'consultant' ? 'consultant' : 'doctor';
      const media = mutedText(p);
      return h('li', { dataset: { participant: p.id, role: p.role } },
        h('span', { class: 'person' },
          h('span', { class: 'speaking-mark', 'aria-hidden': 'true' }),
          h('span', {}, label(p), you ? ' (you)' : ''),
          h('span', { class: `badge ${kind}` }, kind),
          media ? h('span', { class: 'media-state' }, media) : null),
        p.id === room.holder ? (room.estop ? h('span', { class: 'badge stopped' }, 'has control, stopped') : h('span', { class: 'badge driving' }, 'driving')) : null);
    }));
    renderSpeaking();
  }

  /** Who speaks: a mark in the room's list and one line under the video. */
  function renderSpeaking() {
    const speaking = room.speaking.filter((id) => participant(id));
    for (const li of peopleList.querySelectorAll('li[data-participant]')) {
      const el = /** @type {HTMLElement} */ (li);
      el.classList.toggle('speaking', speaking.includes(el.dataset.participant || ''));
    }
    const names = speaking.map((id) => {
      const p = /** @type {Participant} */ (participant(id));
      return id === session.participantId ? 'you' : label(p);
    });
    speakingLine.textContent = names.length ? `Speaking: ${names.join(', ')}` : '';
    speakingLine.dataset.ids = speaking.join(' ');
  }

  /** The other doctor's camera, small over the robot's picture. */
  function renderSlots() {
    const id = room.slots.video[0] || null;
    const p = participant(id);
    peerVideo.hidden = !p;
    peerLabel.hidden = !p;
    peerVideo.dataset.participant = id || '';
    peerLabel.textContent = p ? label(p) : '';
    peerVideo.setAttribute('aria-label', p ? `Camera of ${label(p)}` : 'Another doctor’s camera');
  }

  /** Our own microphone and camera (doctors). */
  function renderOwn() {
    if (!own) return;
    const mic = local ? local.getAudioTracks()[0] : undefined;
    const cam = local ? local.getVideoTracks()[0] : undefined;
    own.mic.disabled = !mic;
    own.cam.disabled = !cam;
    own.mic.setAttribute('aria-pressed', String(!!mic && micMuted));
    own.cam.setAttribute('aria-pressed', String(!!cam && camOff));
    own.preview.hidden = !cam;
    if (own.status.dataset.problem) return; // the reason there is no microphone or camera stays
    // A status region: rewritten only when the words change (render() runs every second).
    if (!local) return;
    setText(own.status, micMuted && camOff ? 'Your microphone is muted and your camera is off.'
      : micMuted ? 'Your microphone is muted.'
        : camOff ? 'Your camera is off.'
          : 'The others hear and see you.');
  }

  function renderControls() {
    if (!ctl) return;
    const connected = session.live;
    const hold = iHold();
    const canControl = !!(room.you ? room.you.can_control : grant && grant.can_control);
    // The pressed button may be hidden by what it did: focus then moves to the next sensible
    // control rather than falling to the page's body.
    const focused = document.activeElement;
    ctl.drive.setEnabled(connected && hold && !room.estop);
    ctl.joystick.el.classList.toggle('disabled', !(connected && hold && !room.estop));
    ctl.joystick.el.setAttribute('aria-disabled', String(!(connected && hold && !room.estop)));

    // The e-stop is never disabled: pressed with the link down, it is kept and sent on reconnect.
    const delivery = estopWanted === null ? (room.estop ? 'latched' : '') : connected ? 'sending' : 'undelivered';
    ctl.estop.dataset.delivery = delivery;
    ctl.estop.setAttribute('aria-pressed', String(room.estop || estopWanted !== null));
    setText(ctl.estop, delivery === 'undelivered' ? 'E-STOP NOT DELIVERED' : delivery === 'sending' ? 'E-STOP sending…' : room.estop ? 'E-STOP LATCHED' : 'E-STOP');
    const estopSays = delivery === 'undelivered'
      ? `Not delivered: the connection is lost. Your e-stop (pressed at ${formatClock(/** @type {number} */ (estopWanted))}) will be sent as soon as the connection is back. Without a connection no commands reach the robot: it has stopped by itself.`
      : '';
    ctl.estopStatus.hidden = !estopSays;
    setText(ctl.estopStatus, estopSays);
    const lostSays = controlLost && !hold ? `You lost control at ${formatClock(controlLost.at)}: ${controlLost.why}. ${connected ? 'Take control again to drive.' : 'Once reconnected, take control again to drive.'}` : '';
    ctl.notice.hidden = !lostSays;
    setText(ctl.notice, lostSays);
    // Shown for the robot's own e-stop too: the room's refusal then says, in words, that only
    // someone at the robot can release it.
    ctl.clear.hidden = !(room.estop && hold && connected);

    ctl.take.hidden = hold;
    setText(ctl.take, room.holder ? (room.requested ? 'Control requested…' : 'Request control') : 'Take control');
    ctl.take.disabled = !connected || room.requested || (!room.holder && !canControl);
    ctl.release.hidden = !hold;
    ctl.release.disabled = !connected;

    const others = room.participants.filter((p) => p.role === 'doctor' && p.id !== session.participantId);
    // Rebuild the options only when they change: telemetry re-renders every second, and replacing
    // the options would close the list under the user's hand.
    const optionsKey = others.map((p) => `${p.id}=${label(p)}`).join('|');
    if (ctl.handoffTo.dataset.key !== optionsKey) {
      const prev = ctl.handoffTo.value;
      ctl.handoffTo.dataset.key = optionsKey;
      replace(ctl.handoffTo,
        h('option', { value: '' }, others.length ? 'Hand off to…' : 'No other doctor here'),
        others.map((p) => h('option', { value: p.id, selected: p.id === prev }, label(p))));
    }
    ctl.handoffTo.hidden = !hold;
    ctl.handoff.hidden = !hold;
    ctl.handoff.disabled = !connected || !others.length;
    if (focused instanceof HTMLElement && focused.hidden) {
      if (focused === ctl.take && !ctl.release.hidden) ctl.release.focus();
      else if ((focused === ctl.release || focused === ctl.handoff) && !ctl.take.hidden) ctl.take.focus();
      else ctl.estop.focus();
    }

    const requestsKey = room.requests.join('|');
    if (ctl.requests.dataset.key !== requestsKey) ctl.requests.dataset.key = requestsKey;
    else return renderHint();
    replace(ctl.requests, room.requests.map((id) => {
      const p = participant(id);
      const who = p ? label(p) : id;
      return h('div', { class: 'request', dataset: { from: id } },
        h('p', {}, `${who} asks for control.`),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'primary small', onclick: () => send({ type: 'grant_lease', to: id }) }, `Give control to ${who}`),
          h('button', { type: 'button', class: 'small', onclick: () => send({ type: 'deny_lease', to: id }) }, 'Decline')));
    }));
    renderHint();
  }

  function renderHint() {
    if (!ctl) return;
    const connected = session.live;
    const hold = iHold();
    const canControl = !!(room.you ? room.you.can_control : grant && grant.can_control);
    let hint = '';
    if (!connected) hint = 'Controls work once connected. The E-STOP always works: pressed now, it is sent as soon as the connection is back.';
    else if (room.estop) hint = `The e-stop is latched. ${hold && !room.estopRobot ? 'Check the robot, then clear it to drive again.' : whoClears()}`;
    else if (hold) hint = 'You are driving: hold a key, drag the joystick or use a gamepad.';
    else if (room.requested) hint = 'Waiting for the driver to answer.';
    else if (!room.holder && !canControl) {
      hint = grant && booking && booking.doctor_id === me.id && Date.parse(booking.starts_at) > Date.now()
        ? `Control becomes available at ${formatTime(booking.starts_at)}; you will be reconnected automatically then.`
        : 'Nobody is driving. Only the booking’s doctor can take control.';
    }
    setText(ctl.hint, hint);
  }

  function renderStats() {
    const s = stats.latest;
    linkBadge.textContent = describe(s);
    replace(linkList,
      h('dt', {}, 'Round trip'), h('dd', {}, s && s.rttMs !== null ? `${Math.round(s.rttMs)} ms` : '–'),
      h('dt', {}, 'Packet loss'), h('dd', {}, s && s.lossPct !== null ? `${s.lossPct.toFixed(1)} %` : '–'),
      h('dt', {}, 'Bitrate'), h('dd', {}, s && s.kbps !== null ? `${Math.round(s.kbps)} kbit/s` : '–'),
      h('dt', {}, 'Path'), h('dd', { id: 'link-path', title: 'TCP and TURN relays add delay that UDP does not have' }, describePath(s ? s.path : null)),
      h('dt', {}, 'Video'), h('dd', { id: 'video-info' }, s && s.width ? `${s.width}×${s.height}${s.fps ? ` @ ${Math.round(s.fps)} fps` : ''}` : '–'),
      h('dt', {}, 'Quality'), h('dd', {}, h('span', { class: `dot ${s ? s.quality : ''}`, 'aria-hidden': 'true' }), ` ${s ? s.quality : 'unknown'}`));
  }

  function renderTelemetry() {
    const t = room.telemetry;
    replace(robotInfo,
      h('dt', {}, 'Status'), h('dd', {}, robotOnline() ? 'online' : 'offline'),
      h('dt', {}, 'Battery'), h('dd', {}, t && typeof t.battery === 'number' ? `${Math.round(t.battery * 100)} %` : '–'),
      h('dt', {}, 'Its link'), h('dd', {}, t && typeof t.link_quality === 'number' ? `${Math.round(t.link_quality * 100)} %` : '–'),
      h('dt', {}, 'Executing'), h('dd', {}, t && t.drive ? t.drive.join(', ') : '–'));
  }

  function renderCountdown() {
    if (!booking) return;
    const left = Date.parse(booking.ends_at) - Date.now();
    const toStart = Date.parse(booking.starts_at) - Date.now();
    countdown.classList.toggle('soon', left > 0 && left <= ENDS_SOON_MS);
    countdown.classList.toggle('over', left <= 0);
    if (left <= 0 && !ended) {
      // The join token and the lease end with the booking; leave rather than linger.
      ended = true;
      session.close();
      render();
    }
    if (left <= 0) countdown.textContent = 'Booking has ended';
    else if (toStart > 0) countdown.textContent = `Starts in ${formatDuration(toStart)}`;
    else countdown.textContent = `Booking ends in ${formatDuration(left)}`;
  }

  const clock = setInterval(renderCountdown, 10_000);
  const estopRetry = setInterval(deliverEstop, 250);

  const onPageHide = () => session.close();
  window.addEventListener('pagehide', onPageHide);

  // For the end-to-end tests and for support: the live objects of this view.
  /** @type {any} */ (window).__bedside = {
    session, room, stats, drive: ctl ? ctl.drive : null,
    get lossShownAt() { return lossShownAt; },
    get estopWanted() { return estopWanted; },
    get local() { return local; },
    get audios() { return audios; },
  };

  /** Doctors: ask for the microphone and camera (never observers), then join either way. */
  async function openOwnMedia() {
    if (!own) return;
    const { stream, problem } = await openLocalMedia();
    if (destroyed) {
      if (stream) for (const t of stream.getTracks()) t.stop();
      return;
    }
    local = stream;
    session.opts.stream = stream;
    own.preview.srcObject = stream ? new MediaStream(stream.getVideoTracks()) : null;
    if (stream) own.preview.play().catch(() => {});
    own.status.textContent = problem;
    own.status.dataset.problem = problem ? 'true' : '';
    own.status.classList.toggle('warn-text', !!problem);
    if (!problem) own.status.dataset.problem = '';
    renderOwn();
  }

  /**
   * Opened before the join window (5 minutes before the start): count down, then join by
   * itself, rather than being refused.
   */
  function waitForJoinWindow() {
    const opens = booking ? Date.parse(booking.starts_at) - JOIN_GRACE_MS : NaN;
    if (!(opens > Date.now())) return Promise.resolve();
    joinOpensAt = opens;
    render();
    return new Promise((resolve) => {
      waitTicker = setInterval(() => {
        if (destroyed || Date.now() >= opens) {
          if (waitTicker) clearInterval(waitTicker);
          waitTicker = null;
          resolve(undefined);
        }
        render();
      }, 1000);
    });
  }

  render();
  Promise.all([loadContext(), openOwnMedia()]).then(() => waitForJoinWindow()).then(() => {
    if (!destroyed) session.start();
  });

  return {
    destroy() {
      destroyed = true;
      clearInterval(clock);
      clearInterval(estopRetry);
      if (waitTicker) clearInterval(waitTicker);
      if (controlTimer) clearTimeout(controlTimer);
      window.removeEventListener('pagehide', onPageHide);
      stats.stop();
      if (ctl) {
        ctl.drive.stop();
        ctl.keyboard.destroy();
      }
      session.close();
      video.srcObject = null;
      peerVideo.srcObject = null;
      for (const a of audios) a.srcObject = null;
      if (local) for (const t of local.getTracks()) t.stop();
      delete (/** @type {any} */ (window).__bedside);
    },
  };
}
