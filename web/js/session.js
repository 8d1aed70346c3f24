// One participant's connection to a room: WHEP (viewers) or WHIP (the robot page), its two data
// channels, and automatic reconnection with back-off.
//
// A connection attempt: get credentials (a fresh join or publish token), create the peer
// connection with the `control` (unordered, no retransmits, binary) and `events` (reliable, JSON)
// data channels and the media transceivers, POST the offer, apply the answer.
//
// The transceivers follow docs/protocol.md, "m-lines", in this order:
// - viewers (WHEP): recvonly video and audio (the robot), then for doctors their own microphone
//   and camera (sendonly; `inactive` when there is no such track, e.g. the doctor refused it),
//   then `audioSlots` recvonly audio (other doctors' voices) and `videoSlots` recvonly video
//   (other doctors' cameras);
// - the robot page (WHIP): sendonly video and audio (its camera and microphone), then
//   `videoSlots` recvonly video (the first is the presenter: the driving doctor's camera) and
//   `audioSlots` recvonly audio (the doctors' voices).
// Slots are negotiated once per connection: the SFU switches what a slot carries without a new
// offer, so a slot's RTCRtpReceiver and its track stay the same while the person on it changes
// (the `slots` event says who it is).
//
// Heartbeat (docs/protocol.md, "Heartbeat"): once `events` is open the session sends `ping`
// every 250 ms and the SFU answers `pong`. A ping unanswered with nothing at all heard for 1 s
// marks the link down (`alive` false, a `link` event) long before ICE notices (5-8 s), so the
// page can say so at once; any message heard marks it up again; 4 s of silence ends the attempt
// and reconnects. A hidden page's clamped timers send fewer pings, never false alarms: only an
// unanswered ping counts. The SFU is ICE-lite with host candidates (and TURN relays from the API
// where the network needs them), so no waiting for ICE gathering.
//
// A broken path is first mended in place, by an ICE restart (ice_restart.js): when ICE reports
// `disconnected` for a moment or `failed`, when the heartbeat goes unanswered for 2 s, or when
// the browser says the network changed (`online`, `navigator.connection` `change`). The session
// keeps its id, its lease (same epoch), its data channels and its tracks; `state` stays
// `connected`, with `alive` false and `iceRestart` set while it runs (the console says
// "Reconnecting…"). Only when the server refuses the restart or the link is not back within 5 s
// is the attempt torn down (DELETE on the session URL) and a new one started, after a growing,
// jittered delay; so is a connection that never comes up. Errors that retrying cannot fix (not
// allowed, booking over) end it with state `failed`.
//
// Not here: what the events mean (consult.js, robot.js), joystick frames (drive.js), statistics
// (stats.js).

import { parseServerEvent } from './events.js';
import { restartIce, iceUp, networkInformation } from './ice_restart.js';

/** @typedef {import('./events.js').ServerEvent} ServerEvent */
/** @typedef {import('./events.js').ClientEvent} ClientEvent */

/**
 * `failed`: joining was refused for good (not allowed, booking over); `ended`: the server ended
 * the session (revoked, replaced by the same person elsewhere); `closed`: we left.
 * @typedef {'idle'|'connecting'|'connected'|'reconnecting'|'closed'|'failed'|'ended'} SessionState
 */

/**
 * @typedef {object} Credentials
 * @property {string} room
 * @property {string} token
 * @property {RTCIceServer[]} [iceServers] TURN relays from the API (networks that block UDP)
 */

/**
 * @typedef {object} SessionOptions
 * @property {'whep'|'whip'} endpoint
 * @property {() => Promise<Credentials>} credentials called before every attempt
 * @property {MediaStream|null} [stream] what this participant sends: the robot page's camera
 *   and microphone (WHIP, required), a doctor's own (WHEP, with `sends`)
 * @property {boolean} [sends] WHEP: offer the own microphone and camera lines (doctors; an
 *   observer's would be answered `inactive` anyway, so observers offer none)
 * @property {number} [audioSlots] receive lines for doctors' voices
 * @property {number} [videoSlots] receive lines for doctors' cameras
 * @property {number} [connectTimeoutMs] give an attempt this long to connect
 * @property {number} [disconnectGraceMs] tolerate ICE `disconnected` this long before
 *   restarting ICE
 * @property {number} [heartbeatMs] send a `ping` this often (0: no heartbeat)
 */

/** Check the heartbeat this often. */
const HEARTBEAT_TICK_MS = 100;
/** Nothing heard for this long, with a ping unanswered: the link is down. */
const LINK_STALE_MS = 1000;
/** ... for this long: restart ICE (the path may be gone before ICE notices). */
const LINK_RESTART_MS = 2000;
/** ... for this long: give the attempt up and reconnect (when no ICE restart is running). */
const LINK_DEAD_MS = 4000;
/** An ICE restart that has not brought the link back in this time: rejoin from scratch. */
const ICE_RESTART_DEADLINE_MS = 5000;

/** An error that retrying cannot fix. */
export class FatalSessionError extends Error {
  /**
   * @param {string} message
   * @param {number} [status]
   */
  constructor(message, status = 0) {
    super(message);
    this.name = 'FatalSessionError';
    this.status = status;
  }
}

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;

/**
 * Delay before retry number `attempt` (1-based): doubling from 0.5 s, capped at 10 s, +-20 %.
 * @param {number} attempt
 * @param {number} [random] in [0, 1)
 * @returns {number}
 */
export function backoffMs(attempt, random = Math.random()) {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random));
}

/**
 * One connection's m-lines by what they carry (docs/protocol.md, "m-lines").
 * @typedef {object} Lines
 * @property {RTCRtpTransceiver|null} robotVideo the robot's camera (viewers)
 * @property {RTCRtpTransceiver|null} robotAudio the robot's microphone (viewers)
 * @property {RTCRtpTransceiver|null} ownAudio what we send: a doctor's or the robot's microphone
 * @property {RTCRtpTransceiver|null} ownVideo what we send: a doctor's or the robot's camera
 * @property {RTCRtpTransceiver[]} audioSlots doctors' voices, in m-line order
 * @property {RTCRtpTransceiver[]} videoSlots doctors' cameras, in m-line order
 */

/** @returns {Lines} */
function noLines() {
  return { robotVideo: null, robotAudio: null, ownAudio: null, ownVideo: null, audioSlots: [], videoSlots: [] };
}

/**
 * A sending line for `track`, or an `inactive` one of `kind` when there is none (so the m-line
 * order stays the same, and the SFU knows we send nothing of that kind).
 * @param {RTCPeerConnection} pc
 * @param {'audio'|'video'} kind
 * @param {MediaStreamTrack|undefined} track
 * @param {MediaStream|null|undefined} stream
 */
function sendLine(pc, kind, track, stream) {
  return track
    ? pc.addTransceiver(track, { direction: 'sendonly', streams: stream ? [stream] : [] })
    : pc.addTransceiver(kind, { direction: 'inactive' });
}

/**
 * Prefer a sharp picture over a smooth one when the encoder must save: drop frames, keep the
 * resolution (a face on the bedside screen, or the robot's view of the patient, is no use blurred).
 * Best effort: a browser without it keeps its default.
 * @param {RTCRtpSender} sender
 */
async function keepResolution(sender) {
  if (!sender.track) return;
  try {
    const params = /** @type {RTCRtpSendParameters & {degradationPreference?: string}} */ (sender.getParameters());
    params.degradationPreference = 'maintain-resolution';
    await sender.setParameters(params);
  } catch {
    // not supported here
  }
}

export class Session extends EventTarget {
  /** @param {SessionOptions} opts */
  constructor(opts) {
    super();
    this.opts = opts;
    /** @type {SessionState} */
    this.state = 'idle';
    /** @type {string} human-readable detail for the state */
    this.detail = '';
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCDataChannel|null} */
    this.control = null;
    /** @type {RTCDataChannel|null} */
    this.events = null;
    /** @type {string|null} our participant id in `events`, from X-Bedside-Session */
    this.participantId = null;
    /** @type {string|null} secret session URL; DELETE ends the session */
    this.location = null;
    /** Failed attempts since the last good connection. */
    this.failures = 0;
    /** Connections made so far (the first one is 1). */
    this.generation = 0;
    /** @type {number|null} when the next attempt starts (Date.now() ms), while waiting */
    this.retryAt = null;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.timer = null;
    /** @type {MediaStream} the robot's camera and microphone (viewers) */
    this.remoteStream = new MediaStream();
    /** @type {Lines} the current connection's m-lines */
    this.lines = noLines();
    this.closed = false;
    /** Attempt counter, so callbacks of a torn-down attempt do nothing. */
    this.attemptId = 0;
    /** The link answers (heartbeat); meaningful while `state` is `connected`. */
    this.alive = true;
    /** @type {number|null} when the link was last found down (Date.now() ms) */
    this.lostAt = null;
    /** @type {number|null} round trip of the last answered ping (ms) */
    this.rttMs = null;
    /** performance.now() of the last message heard on `events`. */
    this.lastHeard = 0;
    /** @type {number|null} performance.now() of the oldest ping not answered yet */
    this.unansweredSince = null;
    this.lastPingAt = 0;
    this.pingN = 0;
    /** @type {Map<number, number>} ping n -> performance.now() sent, for the round trip */
    this.pings = new Map();
    /** @type {ReturnType<typeof setInterval>|null} */
    this.heartbeat = null;
    /** @type {{why: string, since: number}|null} the ICE restart under way (since: Date.now() ms) */
    this.iceRestart = null;
    /** ICE restarts that brought the link back, over the session's life. */
    this.iceRestarts = 0;
    /** The browser says the network changed: mend the path at once. */
    this.onNetworkChange = () => this.restartIceNow('the network changed');
  }

  /** Start connecting; reconnects by itself until `close()`. */
  start() {
    if (this.state !== 'idle') return;
    window.addEventListener('online', this.onNetworkChange);
    networkInformation()?.addEventListener('change', this.onNetworkChange);
    this.attempt();
  }

  /** @returns {boolean} the `events` channel is open */
  get ready() {
    return !!this.events && this.events.readyState === 'open';
  }

  /** @returns {boolean} connected, `events` open and the server answering */
  get live() {
    return this.state === 'connected' && this.ready && this.alive;
  }

  /**
   * Send one event. False if the channel is not open (the caller's button should be disabled).
   * @param {ClientEvent} ev
   * @returns {boolean}
   */
  sendEvent(ev) {
    if (!this.events || this.events.readyState !== 'open') return false;
    this.events.send(JSON.stringify(ev));
    return true;
  }

  /**
   * Send raw bytes on the `control` channel.
   * @param {Uint8Array<ArrayBuffer>} bytes
   * @returns {boolean}
   */
  sendControl(bytes) {
    if (!this.control || this.control.readyState !== 'open') return false;
    this.control.send(bytes);
    return true;
  }

  /**
   * Drop the current connection and connect again at once, with fresh credentials (e.g. a new
   * join token that now carries `can_control`).
   * @param {string} why
   */
  restart(why) {
    if (this.closed) return;
    this.attemptId += 1;
    this.teardown();
    this.failures = 0;
    this.setState('reconnecting', why);
    this.attempt();
  }

  /** Leave for good: DELETE the session, close the connection, stop retrying. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.forgetNetwork();
    this.teardown();
    this.setState('closed', 'left the room');
  }

  /**
   * The server ended this session for good (access revoked, the same person joined elsewhere):
   * stop without reconnecting. No DELETE: the server has already forgotten the session.
   * @param {string} why plain words, shown as the state's detail
   */
  end(why) {
    if (this.closed) return;
    this.closed = true;
    this.forgetNetwork();
    this.location = null;
    this.teardown();
    this.setState('ended', why);
  }

  /**
   * Mend the path of the live connection by an ICE restart (see the top of this file): same
   * session, lease and tracks. Falls back to a full rejoin if the server refuses or the link is
   * not back within ICE_RESTART_DEADLINE_MS. Does nothing unless connected, or while one runs.
   * @param {string} why plain words, shown while it runs
   */
  async restartIceNow(why) {
    const pc = this.pc;
    if (this.closed || this.state !== 'connected' || !pc || !this.location || this.iceRestart) return;
    const id = this.attemptId;
    const deadline = performance.now() + ICE_RESTART_DEADLINE_MS;
    this.iceRestart = { why, since: Date.now() };
    this.setAlive(false, why);
    this.setState('connected', `trying a new network path (${why})`);
    try {
      await restartIce(pc, this.location, ICE_RESTART_DEADLINE_MS);
      if (id !== this.attemptId || this.closed) return;
      // Back when ICE is up on the new path and, with the heartbeat, the server answered over it.
      const applied = performance.now();
      const back = () => iceUp(pc) && (!this.heartbeat || this.lastHeard > applied);
      while (!back() && performance.now() < deadline && id === this.attemptId && !this.closed) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (id !== this.attemptId || this.closed) return;
      if (!back()) throw new Error('no answer on the new path');
      this.iceRestart = null;
      this.iceRestarts += 1;
      this.heard();
      this.setState('connected', 'connected');
    } catch (e) {
      if (id !== this.attemptId || this.closed) return;
      this.iceRestart = null;
      this.lost(`ICE restart failed (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  // --- internals --------------------------------------------------------------------------------

  forgetNetwork() {
    window.removeEventListener('online', this.onNetworkChange);
    networkInformation()?.removeEventListener('change', this.onNetworkChange);
  }

  /**
   * The link is up (something heard) or down (a ping unanswered, or ICE interrupted).
   * @param {boolean} alive
   * @param {string} why
   */
  setAlive(alive, why) {
    if (this.alive === alive) return;
    this.alive = alive;
    if (!alive) this.lostAt = Date.now();
    this.dispatchEvent(new CustomEvent('link', { detail: { alive, why } }));
  }

  /** Something arrived on `events`: the server is there. */
  heard() {
    this.lastHeard = performance.now();
    this.unansweredSince = null;
    this.setAlive(true, 'heard');
  }

  /** @param {number} id the attempt whose `events` channel just opened */
  startHeartbeat(id) {
    this.stopHeartbeat();
    const every = this.opts.heartbeatMs ?? 250;
    if (!every) return;
    this.pings.clear();
    this.heard();
    this.lastPingAt = 0;
    this.heartbeat = setInterval(() => {
      if (id !== this.attemptId || this.closed) {
        this.stopHeartbeat();
        return;
      }
      const now = performance.now();
      if (this.unansweredSince !== null) {
        const waited = now - this.unansweredSince;
        const silent = now - this.lastHeard;
        if (waited > LINK_DEAD_MS && silent > LINK_DEAD_MS && !this.iceRestart) {
          this.lost('no answer from the server');
          return;
        }
        if (waited > LINK_STALE_MS * 0.75 && silent > LINK_STALE_MS) this.setAlive(false, 'no answer from the server');
        if (waited > LINK_RESTART_MS * 0.75 && silent > LINK_RESTART_MS) this.restartIceNow('no answer from the server');
      }
      if (now - this.lastPingAt >= every && this.events && this.events.readyState === 'open') {
        this.pingN += 1;
        this.events.send(JSON.stringify({ type: 'ping', n: this.pingN }));
        this.pings.set(this.pingN, now);
        if (this.pings.size > 64) this.pings.delete(/** @type {number} */ (this.pings.keys().next().value));
        this.lastPingAt = now;
        if (this.unansweredSince === null) this.unansweredSince = now;
      }
    }, HEARTBEAT_TICK_MS);
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /**
   * @param {SessionState} state
   * @param {string} detail
   */
  setState(state, detail) {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, detail } }));
  }

  async attempt() {
    if (this.closed) return;
    const id = ++this.attemptId;
    this.retryAt = null;
    this.setState(this.generation === 0 && this.failures === 0 ? 'connecting' : 'reconnecting',
      this.failures > 0 ? `attempt ${this.failures + 1}` : 'connecting');
    try {
      const creds = await this.opts.credentials();
      if (id !== this.attemptId || this.closed) return;
      await this.connect(id, creds);
    } catch (e) {
      if (id !== this.attemptId || this.closed) return;
      this.teardown();
      if (e instanceof FatalSessionError || (e && typeof e === 'object' && 'status' in e && isFatalStatus(/** @type {any} */ (e).status))) {
        this.closed = true;
        this.setState('failed', e instanceof Error ? e.message : String(e));
        return;
      }
      this.scheduleRetry(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * @param {string} why
   */
  scheduleRetry(why) {
    if (this.closed) return;
    this.failures += 1;
    const delay = backoffMs(this.failures);
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting', `${why}; retrying in ${Math.ceil(delay / 1000)} s`);
    this.dispatchEvent(new CustomEvent('retry', { detail: { delay, why } }));
    this.timer = setTimeout(() => this.attempt(), delay);
  }

  /**
   * One attempt, up to "connected". Resolves once the offer is answered; the connection state
   * callbacks take it from there.
   * @param {number} id
   * @param {Credentials} creds
   */
  async connect(id, creds) {
    const pc = new RTCPeerConnection({ iceServers: creds.iceServers || [], bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const control = pc.createDataChannel('control', { ordered: false, maxRetransmits: 0 });
    control.binaryType = 'arraybuffer';
    const events = pc.createDataChannel('events');
    this.control = control;
    this.events = events;

    const lines = noLines();
    const own = this.opts.stream || null;
    const recv = (/** @type {'audio'|'video'} */ kind) => pc.addTransceiver(kind, { direction: 'recvonly' });
    if (this.opts.endpoint === 'whep') {
      lines.robotVideo = recv('video');
      lines.robotAudio = recv('audio');
      if (this.opts.sends) {
        lines.ownAudio = sendLine(pc, 'audio', own?.getAudioTracks()[0], own);
        lines.ownVideo = sendLine(pc, 'video', own?.getVideoTracks()[0], own);
      }
      for (let i = 0; i < (this.opts.audioSlots || 0); i++) lines.audioSlots.push(recv('audio'));
      for (let i = 0; i < (this.opts.videoSlots || 0); i++) lines.videoSlots.push(recv('video'));
      const stream = new MediaStream();
      this.remoteStream = stream;
      pc.ontrack = (ev) => {
        if (id !== this.attemptId) return;
        if (ev.transceiver !== lines.robotVideo && ev.transceiver !== lines.robotAudio) return;
        stream.addTrack(ev.track);
        this.dispatchEvent(new CustomEvent('track', { detail: { track: ev.track, stream } }));
      };
    } else {
      if (!own || !own.getVideoTracks()[0] || !own.getAudioTracks()[0]) throw new FatalSessionError('nothing to publish');
      lines.ownVideo = sendLine(pc, 'video', own.getVideoTracks()[0], own);
      lines.ownAudio = sendLine(pc, 'audio', own.getAudioTracks()[0], own);
      for (let i = 0; i < (this.opts.videoSlots || 0); i++) lines.videoSlots.push(recv('video'));
      for (let i = 0; i < (this.opts.audioSlots || 0); i++) lines.audioSlots.push(recv('audio'));
    }
    this.lines = lines;

    events.onopen = () => {
      if (id !== this.attemptId) return;
      this.startHeartbeat(id);
      this.dispatchEvent(new Event('events-open'));
    };
    events.onmessage = (ev) => {
      if (id !== this.attemptId) return;
      this.heard();
      const parsed = parseServerEvent(ev.data);
      if (parsed && parsed.type === 'pong') {
        const sent = this.pings.get(parsed.n);
        if (sent !== undefined) this.rttMs = performance.now() - sent;
        for (const n of this.pings.keys()) if (n <= parsed.n) this.pings.delete(n);
        return;
      }
      if (parsed) this.dispatchEvent(new CustomEvent('server-event', { detail: parsed }));
    };
    events.onclose = () => {
      if (id !== this.attemptId || this.closed) return;
      if (this.state === 'connected') this.lost('the room closed the connection');
    };
    control.onmessage = (ev) => {
      if (id !== this.attemptId) return;
      if (ev.data instanceof ArrayBuffer) {
        this.dispatchEvent(new CustomEvent('control', { detail: ev.data }));
      }
    };

    /** @type {ReturnType<typeof setTimeout>|null} */
    let graceTimer = null;
    pc.oniceconnectionstatechange = () => {
      if (id !== this.attemptId || this.closed || this.state !== 'connected') return;
      const s = pc.iceConnectionState;
      if (s === 'failed') {
        this.restartIceNow('the network path failed');
      } else if (s === 'disconnected' && !graceTimer) {
        this.setAlive(false, 'connection interrupted');
        graceTimer = setTimeout(() => {
          graceTimer = null;
          if (id === this.attemptId && !iceUp(pc)) this.restartIceNow('the network path was interrupted');
        }, this.opts.disconnectGraceMs ?? 1000);
      }
    };
    pc.onconnectionstatechange = () => {
      if (id !== this.attemptId || this.closed) return;
      const s = pc.connectionState;
      if (s === 'connected') {
        if (graceTimer) clearTimeout(graceTimer);
        graceTimer = null;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        if (this.state !== 'connected') {
          this.failures = 0;
          this.generation += 1;
          this.setState('connected', 'connected');
        }
      } else if (s === 'closed' || (s === 'failed' && this.state !== 'connected')) {
        this.lost(`connection ${s}`);
      } else if (s === 'failed' && !this.iceRestart && pc.iceConnectionState !== 'failed') {
        // DTLS failed, not the path: a new path cannot help.
        this.lost('connection failed');
      }
      // ICE's own troubles (disconnected, failed) are mended above, by an ICE restart.
    };

    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const sdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
    const url = `/${this.opts.endpoint}/${encodeURIComponent(creds.room)}`;
    let resp;
    try {
      resp = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${creds.token}` },
        body: sdp,
        cache: 'no-store',
      });
    } catch {
      throw new Error('cannot reach the server');
    }
    if (id !== this.attemptId) return;
    if (resp.status !== 201) {
      const text = (await resp.text().catch(() => '')).trim();
      const message = `${this.opts.endpoint.toUpperCase()} refused (${resp.status})${text ? `: ${text}` : ''}`;
      if (isFatalStatus(resp.status)) throw new FatalSessionError(message, resp.status);
      throw new Error(message);
    }
    this.location = resp.headers.get('Location');
    this.participantId = resp.headers.get('X-Bedside-Session');
    const answer = await resp.text();
    if (id !== this.attemptId) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    if (id !== this.attemptId) return;
    if (this.opts.endpoint === 'whep' && lines.ownVideo) await keepResolution(lines.ownVideo.sender);
    this.dispatchEvent(new CustomEvent('joined', { detail: { participantId: this.participantId } }));
    // The slots' receivers (and their tracks) exist from now on, for this connection's life.
    this.dispatchEvent(new CustomEvent('lines', { detail: lines }));

    // An attempt that never connects is as good as a failed one.
    this.timer = setTimeout(() => {
      if (id === this.attemptId && this.state !== 'connected') this.lost('no connection');
    }, this.opts.connectTimeoutMs ?? 15_000);
  }

  /** @param {string} why */
  lost(why) {
    if (this.closed) return;
    this.attemptId += 1; // silence the old attempt's callbacks
    this.teardown();
    this.dispatchEvent(new CustomEvent('lost', { detail: { why } }));
    this.scheduleRetry(why);
  }

  /** Close the current peer connection and tell the SFU (best effort). */
  teardown() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopHeartbeat();
    this.iceRestart = null;
    if (this.location) {
      // keepalive: also works from `pagehide`, when the page is going away.
      fetch(this.location, { method: 'DELETE', keepalive: true }).catch(() => {});
      this.location = null;
    }
    if (this.pc) {
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.oniceconnectionstatechange = null;
      try {
        this.pc.close();
      } catch {
        // already closed
      }
    }
    this.pc = null;
    this.control = null;
    this.events = null;
    this.participantId = null;
    this.lines = noLines();
  }
}

/**
 * HTTP statuses that another attempt will not change: bad request, not allowed, gone.
 * 401 is not here on purpose: the next attempt fetches a fresh token.
 * @param {number} status
 */
function isFatalStatus(status) {
  return status === 400 || status === 403 || status === 404 || status === 422;
}
