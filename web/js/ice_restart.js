// ICE restart of a live connection (RFC 9725 §4.3): a network change (a laptop moving from
// Wi-Fi to cable, a roam, a path that stopped answering) gets a new ICE path without leaving the
// room. The browser makes new ICE credentials (`restartIce()`), sends them to the server with
// `PATCH` on the session's secret URL as an `application/trickle-ice-sdpfrag`, and applies the
// server's new credentials from the reply to its last answer. The session keeps its id, its
// lease (same epoch), its data channels and its tracks: DTLS and SCTP run on, only the path
// underneath changes.
//
// Also here the SDP text work the restart needs (reading credentials, writing the fragment,
// splicing the server's reply into the answer): plain functions, testable without a browser.
//
// Not here: when to restart, what counts as done, and falling back to a full rejoin
// (session.js decides those).

/**
 * @typedef {object} IceCredentials
 * @property {string} ufrag `a=ice-ufrag`
 * @property {string} pwd `a=ice-pwd`
 */

/** @param {string} sdp */
function lines(sdp) {
  return sdp.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
}

/**
 * The first `a=ice-ufrag`/`a=ice-pwd` of an SDP or fragment (with BUNDLE every m-line has the same).
 * @param {string} sdp
 * @returns {IceCredentials|null}
 */
export function iceCredentials(sdp) {
  let ufrag = null;
  let pwd = null;
  for (const l of lines(sdp)) {
    if (ufrag === null && l.startsWith('a=ice-ufrag:')) ufrag = l.slice('a=ice-ufrag:'.length);
    if (pwd === null && l.startsWith('a=ice-pwd:')) pwd = l.slice('a=ice-pwd:'.length);
  }
  return ufrag && pwd ? { ufrag, pwd } : null;
}

/**
 * The fragment announcing the restart (RFC 8840 §4.4): the bundle's first m-line with its mid and
 * the new credentials. No candidates: the server is ICE-lite and learns our addresses from our
 * checks.
 * @param {string} offer the restarted local offer
 * @returns {string}
 */
export function restartFragment(offer) {
  const creds = iceCredentials(offer);
  if (!creds) throw new Error('the restarted offer has no ICE credentials');
  const all = lines(offer);
  const out = all.filter((l) => l.startsWith('a=ice-options:') || l.startsWith('a=group:BUNDLE'));
  const m = all.findIndex((l) => l.startsWith('m='));
  if (m >= 0) {
    out.push(all[m]);
    const mid = all.slice(m + 1).find((l) => l.startsWith('a=mid:') || l.startsWith('m='));
    if (mid && mid.startsWith('a=mid:')) out.push(mid);
  }
  out.push(`a=ice-ufrag:${creds.ufrag}`, `a=ice-pwd:${creds.pwd}`);
  return `${out.join('\r\n')}\r\n`;
}

/**
 * `answer` with the server's new credentials (and candidates, when the reply has any) in place
 * of the old ones, and the `o=` version raised: the answer to the restarted offer.
 * @param {string} answer the server's last answer
 * @param {string} reply the PATCH reply (a trickle-ice-sdpfrag)
 * @returns {string}
 */
export function splicedAnswer(answer, reply) {
  const creds = iceCredentials(reply);
  if (!creds) throw new Error('the server\'s reply has no ICE credentials');
  const candidates = lines(reply).filter((l) => l.startsWith('a=candidate:'));
  /** @type {string[]} */
  const out = [];
  let media = 0;
  /** The reply's candidates replace the old ones, in the first (bundled) m-line, at its end. */
  const place = () => {
    if (media === 1) out.push(...candidates);
  };
  for (const l of lines(answer)) {
    if (l.startsWith('m=')) {
      place();
      media += 1;
    }
    if (l.startsWith('a=ice-ufrag:')) out.push(`a=ice-ufrag:${creds.ufrag}`);
    else if (l.startsWith('a=ice-pwd:')) out.push(`a=ice-pwd:${creds.pwd}`);
    else if (l.startsWith('o=')) out.push(bumpVersion(l));
    else if (!(l.startsWith('a=candidate:') && candidates.length)) out.push(l);
  }
  place();
  return `${out.join('\r\n')}\r\n`;
}

/** @param {string} o an `o=` line */
function bumpVersion(o) {
  const parts = o.split(' ');
  if (parts.length > 2 && /^\d+$/.test(parts[2])) parts[2] = String(BigInt(parts[2]) + 1n);
  return parts.join(' ');
}

/**
 * ICE is up: the path works (for now).
 * @param {RTCPeerConnection} pc
 */
export function iceUp(pc) {
  return pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed';
}

/**
 * The Network Information API, whose `change` says the network changed, where the browser has
 * it (Chromium does, others do not).
 * @returns {EventTarget|null}
 */
export function networkInformation() {
  return /** @type {{connection?: EventTarget}} */ (navigator).connection || null;
}

/** Thrown when the server refused the restart or could not be reached. */
export class IceRestartError extends Error {
  /**
   * @param {string} message
   * @param {number} [status] the HTTP status, 0 when none arrived
   */
  constructor(message, status = 0) {
    super(message);
    this.name = 'IceRestartError';
    this.status = status;
  }
}

/**
 * Restart ICE on `pc`: new local credentials, `PATCH` to `location`, the server's new ones
 * applied. Resolves once the new descriptions are in place (ICE then checks the new path);
 * rejects with an IceRestartError when the server refuses, cannot be reached within
 * `timeoutMs`, or the reply is unusable.
 * @param {RTCPeerConnection} pc
 * @param {string} location the session's secret URL (from the POST's `Location`)
 * @param {number} timeoutMs give the PATCH this long
 * @returns {Promise<IceCredentials>} our new credentials
 */
export async function restartIce(pc, location, timeoutMs) {
  const answer = pc.remoteDescription?.sdp;
  if (!answer) throw new IceRestartError('nothing to restart: no answer yet');
  const before = iceCredentials(pc.localDescription?.sdp || '');
  pc.restartIce();
  const offer = await pc.createOffer({ iceRestart: true });
  await pc.setLocalDescription(offer);
  const sdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
  const ours = iceCredentials(sdp);
  if (!ours || (before && ours.ufrag === before.ufrag)) throw new IceRestartError('the browser made no new ICE credentials');
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let resp;
  let reply;
  try {
    resp = await fetch(location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' },
      body: restartFragment(sdp),
      cache: 'no-store',
      signal: abort.signal,
    });
    reply = await resp.text();
  } catch {
    throw new IceRestartError('cannot reach the server');
  } finally {
    clearTimeout(timer);
  }
  if (resp.status !== 200) throw new IceRestartError(`ICE restart refused (${resp.status})${reply.trim() ? `: ${reply.trim()}` : ''}`, resp.status);
  let spliced;
  try {
    spliced = splicedAnswer(answer, reply);
  } catch (e) {
    throw new IceRestartError(e instanceof Error ? e.message : String(e), resp.status);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: spliced });
  return ours;
}
