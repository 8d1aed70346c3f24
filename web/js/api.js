// The control-plane client: a fetch wrapper for /api with token storage and refresh.
//
// Access and refresh tokens live in sessionStorage (one browser tab = one login; closing the tab
// forgets them). Requests refresh the access token shortly before it expires, and once more after
// a 401, so a consult that lasts longer than one access token keeps working. Errors are thrown as
// ApiError carrying the server's `{error, message}`.
//
// Not here: WHIP/WHEP (session.js), or any UI (explainError only words an error, for the UI).

import { formatTime } from './dom.js';

/** @typedef {'admin'|'doctor'|'student'} UserRole */

/**
 * @typedef {object} User
 * @property {string} id
 * @property {string} username
 * @property {string} display_name
 * @property {UserRole} role
 */

/**
 * @typedef {object} UserListItem
 * @property {string} id
 * @property {string} [username] admins only
 * @property {string} display_name
 * @property {UserRole} role
 */

/**
 * @typedef {object} TokenResponse
 * @property {string} access_token
 * @property {string} refresh_token
 * @property {'Bearer'} token_type
 * @property {number} expires_in seconds
 * @property {User} user
 */

/**
 * @typedef {object} Robot
 * @property {string} id
 * @property {string} name
 * @property {string} ward
 * @property {string} description
 */

/**
 * @typedef {object} Invitation
 * @property {string} user_id
 * @property {'consultant'|'observer'} role
 */

/**
 * @typedef {object} Booking
 * @property {string} id
 * @property {string} robot_id
 * @property {string} doctor_id
 * @property {string} starts_at RFC 3339 UTC
 * @property {string} ends_at RFC 3339 UTC
 * @property {'confirmed'|'cancelled'} status
 * @property {string|null} note
 * @property {Invitation[]} invitations
 */

/**
 * @typedef {object} BusySlot
 * @property {string} starts_at
 * @property {string} ends_at
 */

/**
 * @typedef {object} JoinResponse
 * @property {string} room
 * @property {string} whep_url
 * @property {string} token
 * @property {'doctor'|'observer'} role
 * @property {boolean} can_control
 * @property {string} expires_at
 * @property {RTCIceServer[]} [ice_servers] TURN relays with credentials that expire with the token
 */

/**
 * @typedef {object} PublishTokenResponse
 * @property {string} room
 * @property {string} whip_url
 * @property {string} token
 * @property {string} expires_at
 * @property {RTCIceServer[]} [ice_servers] TURN relays with credentials that expire with the token
 */

/**
 * @typedef {object} ErrorBody
 * @property {string} error machine-readable code
 * @property {string} message
 * @property {{booking_id: string, starts_at: string, ends_at: string}} [conflict]
 */

const STORE_KEY = 'bedside.auth';
/** Refresh this long before the access token runs out. */
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 for a network failure
   * @param {string} code
   * @param {string} message
   * @param {ErrorBody|null} body
   */
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * @typedef {object} StoredAuth
 * @property {string} accessToken
 * @property {string} refreshToken
 * @property {number} expiresAt ms since the epoch
 * @property {User} user
 */

/** @returns {StoredAuth|null} */
function load() {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** @param {StoredAuth|null} auth */
function save(auth) {
  try {
    if (auth) sessionStorage.setItem(STORE_KEY, JSON.stringify(auth));
    else sessionStorage.removeItem(STORE_KEY);
  } catch {
    // Storage disabled: the login lasts as long as the page.
  }
}

/**
 * @param {TokenResponse} t
 * @returns {StoredAuth}
 */
function fromResponse(t) {
  return {
    accessToken: t.access_token,
    refreshToken: t.refresh_token,
    expiresAt: Date.now() + t.expires_in * 1000,
    user: t.user,
  };
}

/**
 * Turn a non-2xx response into an ApiError.
 * @param {Response} resp
 * @returns {Promise<ApiError>}
 */
async function errorOf(resp) {
  /** @type {ErrorBody|null} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not JSON (a proxy's error page): keep the status.
  }
  const code = body && typeof body.error === 'string' ? body.error : `http_${resp.status}`;
  const message = body && typeof body.message === 'string' ? body.message : resp.statusText || 'request failed';
  return new ApiError(resp.status, code, message, body);
}

/** The API client. One instance per page (`api` below). */
export class Api extends EventTarget {
  constructor() {
    super();
    /** @type {StoredAuth|null} */
    this.auth = load();
    /** @type {Promise<boolean>|null} one refresh at a time */
    this.refreshing = null;
  }

  /** @returns {User|null} */
  get user() {
    return this.auth ? this.auth.user : null;
  }

  /**
   * @param {string} username
   * @param {string} password
   * @returns {Promise<User>}
   */
  async login(username, password) {
    const resp = await this.raw('POST', '/api/auth/login', { username, password }, null);
    if (!resp.ok) throw await errorOf(resp);
    /** @type {TokenResponse} */
    const t = await resp.json();
    this.auth = fromResponse(t);
    save(this.auth);
    this.dispatchEvent(new Event('auth'));
    return t.user;
  }

  async logout() {
    const auth = this.auth;
    this.forget();
    if (auth) {
      // Best effort: the server ends the session; we have forgotten the tokens either way.
      await this.raw('POST', '/api/auth/logout', undefined, auth.accessToken).catch(() => {});
    }
  }

  /** Drop the tokens and tell the app (it shows the login page). */
  forget() {
    const had = this.auth !== null;
    this.auth = null;
    save(null);
    if (had) this.dispatchEvent(new Event('auth'));
  }

  /**
   * A JSON request with the access token; refreshes it when needed.
   * @template T
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<T>}
   */
  async request(method, path, body) {
    if (this.auth && this.auth.expiresAt - Date.now() < REFRESH_MARGIN_MS) {
      await this.refresh();
    }
    if (!this.auth) throw new ApiError(401, 'not_logged_in', 'please log in', null);
    let resp = await this.raw(method, path, body, this.auth.accessToken);
    if (resp.status === 401 && (await this.refresh())) {
      resp = await this.raw(method, path, body, /** @type {StoredAuth} */ (this.auth).accessToken);
    }
    if (resp.status === 401) {
      const err = await errorOf(resp);
      this.forget();
      throw err;
    }
    if (!resp.ok) throw await errorOf(resp);
    if (resp.status === 204) return /** @type {T} */ (/** @type {unknown} */ (null));
    return resp.json();
  }

  /**
   * Trade the refresh token for new tokens. False if that is no longer possible.
   * @returns {Promise<boolean>}
   */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** @returns {Promise<boolean>} */
  async doRefresh() {
    const auth = this.auth;
    if (!auth) return false;
    let resp;
    try {
      resp = await this.raw('POST', '/api/auth/refresh', { refresh_token: auth.refreshToken }, null);
    } catch {
      return false; // network: keep the tokens, the caller's request fails on its own
    }
    if (resp.status === 401) {
      this.forget();
      return false;
    }
    if (!resp.ok) return false;
    this.auth = fromResponse(await resp.json());
    save(this.auth);
    return true;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} body
   * @param {string|null} token
   * @returns {Promise<Response>}
   */
  async raw(method, path, body, token) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      return await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'cannot reach the server', null);
    }
  }

  // --- Typed endpoints -------------------------------------------------------------------------

  /** @returns {Promise<Robot[]>} */
  robots() {
    return this.request('GET', '/api/robots');
  }

  /**
   * @param {'doctor'|'student'} role
   * @returns {Promise<UserListItem[]>}
   */
  users(role) {
    return this.request('GET', `/api/users?role=${role}`);
  }

  /**
   * @param {{robot_id?: string, mine?: boolean, from?: string, to?: string}} q
   * @returns {Promise<Booking[]>}
   */
  bookings(q) {
    const p = new URLSearchParams();
    if (q.robot_id) p.set('robot_id', q.robot_id);
    if (q.mine) p.set('mine', 'true');
    if (q.from) p.set('from', q.from);
    if (q.to) p.set('to', q.to);
    const qs = p.toString();
    return this.request('GET', `/api/bookings${qs ? `?${qs}` : ''}`);
  }

  /**
   * @param {string} id
   * @returns {Promise<Booking>}
   */
  booking(id) {
    return this.request('GET', `/api/bookings/${encodeURIComponent(id)}`);
  }

  /**
   * Without `starts_at` the slot starts at the server's now and lasts `minutes`.
   * @param {{robot_id: string, note?: string} & ({starts_at: string, ends_at: string} | {minutes: number})} b
   * @returns {Promise<Booking>}
   */
  createBooking(b) {
    return this.request('POST', '/api/bookings', b);
  }

  /**
   * @param {string} id
   * @returns {Promise<Booking>}
   */
  cancelBooking(id) {
    return this.request('POST', `/api/bookings/${encodeURIComponent(id)}/cancel`);
  }

  /**
   * @param {string} id
   * @param {string} userId
   * @param {'consultant'|'observer'} role
   * @returns {Promise<Booking>}
   */
  invite(id, userId, role) {
    return this.request('POST', `/api/bookings/${encodeURIComponent(id)}/invitations`, { user_id: userId, role });
  }

  /**
   * @param {string} id
   * @param {string} userId
   * @returns {Promise<null>}
   */
  uninvite(id, userId) {
    return this.request('DELETE', `/api/bookings/${encodeURIComponent(id)}/invitations/${encodeURIComponent(userId)}`);
  }

  /**
   * @param {string} id
   * @returns {Promise<JoinResponse>}
   */
  join(id) {
    return this.request('POST', `/api/bookings/${encodeURIComponent(id)}/join`);
  }

  /**
   * @param {string} robotId
   * @param {string} from
   * @param {string} to
   * @returns {Promise<BusySlot[]>}
   */
  busy(robotId, from, to) {
    const p = new URLSearchParams({ from, to });
    return this.request('GET', `/api/robots/${encodeURIComponent(robotId)}/busy?${p}`);
  }
}

/**
 * A robot's publish token, with its credential (no user login involved).
 * @param {string} robotId
 * @param {string} credential
 * @returns {Promise<PublishTokenResponse>}
 */
export async function publishToken(robotId, credential) {
  let resp;
  try {
    resp = await fetch(`/api/robots/${encodeURIComponent(robotId)}/publish-token`, {
      method: 'POST',
      headers: { Authorization: `Robot ${credential}`, Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the server', null);
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

export const api = new Api();

// --- errors in words ------------------------------------------------------------------------------

/**
 * What an API error means for the person who caused it, as a plain sentence that says what to do
 * (issue 17): the server's messages are written for developers ("a booking cannot start in the
 * past", "ends_at must be after starts_at") and are never shown as they are. Codes and messages
 * this client does not know get a generic sentence with the server's words in it.
 * @param {unknown} err
 * @returns {string}
 */
export function explainError(err) {
  if (!(err instanceof ApiError)) {
    return 'Something went wrong in this page. Reload it and try again.';
  }
  const m = err.message || '';
  switch (err.code) {
    case 'network':
      return 'The server cannot be reached. Check the network connection, then try again.';
    case 'internal':
      return 'The server ran into a problem. Try again in a moment; if it keeps happening, tell your administrator.';
    case 'rate_limited':
      return 'Too many attempts in a short time. Wait a minute, then try again.';
    case 'unauthenticated':
    case 'not_logged_in':
      return 'Your session has ended. Log in again.';
    case 'booking_cancelled':
      return 'This booking was cancelled: nobody can join it or change it any more.';
    case 'already_invited':
      return 'That person is already invited.';
    case 'booking_conflict':
      return 'That time overlaps another booking of this robot. Choose another time.';
    case 'payload_too_large':
      return 'That is too much text. Shorten the note and try again.';
    case 'not_found':
      return /^robot/.test(m) ? 'That robot is no longer registered. Reload the page to see the robots there are now.'
        : /^booking/.test(m) ? 'That booking no longer exists, or you are not part of it. Reload the page.'
          : /^(user|invitation)/.test(m) ? 'That person is no longer invited or no longer has an account. Reload the page.'
            : 'That was not found. Reload the page and try again.';
    case 'outside_join_window': {
      const ended = /ended at (.+)$/.exec(m);
      if (ended && Number.isFinite(Date.parse(ended[1]))) return `This booking ended at ${formatTime(ended[1])}: book a new time to see the patient again.`;
      const opens = /opens at (.+)$/.exec(m);
      if (opens && Number.isFinite(Date.parse(opens[1]))) return `Joining opens at ${formatTime(opens[1])}, 5 minutes before the booking starts.`;
      return 'This booking cannot be joined now.';
    }
    case 'forbidden':
      if (/doctor or an admin may cancel/.test(m)) return 'Only the doctor who made this booking (or an administrator) can cancel it.';
      if (/doctor may change its invitations/.test(m)) return 'Only the doctor who made this booking can invite or remove people.';
      if (/may join/.test(m)) return 'You are not invited to this booking. Ask its doctor to invite you.';
      if (/doctors only/.test(m)) return 'Only doctors can do that.';
      if (/admins only/.test(m)) return 'Only administrators can do that.';
      return 'You are not allowed to do that.';
    case 'validation_failed':
    case 'bad_request': {
      if (/cannot start in the past/.test(m)) return 'That start time has already passed. Choose a later time, or press Start now.';
      if (/must be after/.test(m)) return 'The end must come after the start. Choose a later end or a longer length.';
      const longest = /at most (\d+) minutes/.exec(m);
      if (longest) return `A booking can last at most ${longest[1]} minutes. Choose a shorter length.`;
      const note = /note must be at most (\d+)/.exec(m);
      if (note) return `The note is too long: keep it under ${note[1]} characters.`;
      if (/already ended/.test(m)) return 'This booking is already over: it can no longer be changed.';
      if (/consultants must be doctors/.test(m)) return 'Invite doctors as consultants and students as observers.';
      if (/doctor is already in it/.test(m)) return 'The booking’s own doctor does not need an invitation.';
      return `That was not accepted (${m}). Check what you entered and try again.`;
    }
    default:
      return m ? `That did not work (${m}). Try again, or reload the page.` : 'That did not work. Try again, or reload the page.';
  }
}

