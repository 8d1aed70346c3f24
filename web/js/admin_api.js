// The admin console's calls to the API: people, robots and the audit log, typed. Built on the
// page's one API client (api.js) for tokens and refresh; here because some answers are more than
// a JSON body (the users' total is a header, the audit export is a CSV file).
//
// Not here: any UI (admin_*.js), logging in (api.js).

import { api, ApiError } from './api.js';

/**
 * @typedef {import('./api.js').UserRole} UserRole
 * @typedef {import('./api.js').Robot & {retired_at?: string}} AdminRobot
 */

/**
 * @typedef {object} AdminUser
 * @property {string} id
 * @property {string} username
 * @property {string} display_name
 * @property {UserRole} role
 * @property {boolean} disabled
 */

/**
 * @typedef {object} AuditEntry
 * @property {number} id
 * @property {string} at
 * @property {string} kind
 * @property {string|null} actor
 * @property {string|null} room
 * @property {Record<string, unknown>} detail
 * @property {string} [actor_name]
 * @property {string} [actor_kind] admin, doctor, student or robot
 * @property {string} [robot_name]
 */

/**
 * @typedef {object} AuditPage
 * @property {AuditEntry[]} entries
 * @property {number|null} next_before
 * @property {number} total
 */

/**
 * @typedef {object} AuditFilter
 * @property {string} [kind] a kind, or a family like `room.*`
 * @property {string} [actor]
 * @property {string} [robot]
 * @property {string} [from] RFC 3339
 * @property {string} [to] RFC 3339
 */

/** Refresh this long before the access token runs out (as api.js does). */
const REFRESH_MARGIN_MS = 60_000;

/**
 * A request with the access token, refreshed when needed; the raw response (ok or not).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<Response>}
 */
async function send(method, path, body) {
  if (api.auth && api.auth.expiresAt - Date.now() < REFRESH_MARGIN_MS) await api.refresh();
  if (!api.auth) throw new ApiError(401, 'not_logged_in', 'please log in', null);
  let resp = await api.raw(method, path, body, api.auth.accessToken);
  if (resp.status === 401 && (await api.refresh()) && api.auth) {
    resp = await api.raw(method, path, body, api.auth.accessToken);
  }
  if (resp.status === 401) api.forget();
  return resp;
}

/**
 * @param {Response} resp
 * @returns {Promise<ApiError>}
 */
async function failure(resp) {
  /** @type {any} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON
  }
  return new ApiError(resp.status, body && body.error || `http_${resp.status}`, body && body.message || resp.statusText, body);
}

/**
 * @template T
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<T>}
 */
async function json(method, path, body) {
  const resp = await send(method, path, body);
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

/**
 * @param {Record<string, string|number|boolean|undefined>} params
 */
function query(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const id = encodeURIComponent;

/**
 * @param {{q?: string, role?: string, disabled?: string, limit: number, offset: number}} q
 * @returns {Promise<{users: AdminUser[], total: number}>}
 */
export async function listUsers(q) {
  const resp = await send('GET', `/api/users${query(q)}`);
  if (!resp.ok) throw await failure(resp);
  const users = await resp.json();
  return { users, total: Number(resp.headers.get('x-total-count') || users.length) };
}

/**
 * @param {{username: string, display_name: string, role: UserRole}} u
 * @returns {Promise<AdminUser & {password: string}>}
 */
export const createUser = (u) => json('POST', '/api/users', u);

/**
 * @param {string} userId
 * @param {{display_name?: string, role?: UserRole}} change
 * @returns {Promise<AdminUser>}
 */
export const updateUser = (userId, change) => json('PATCH', `/api/users/${id(userId)}`, change);

/**
 * @param {string} userId
 * @returns {Promise<{password: string, sessions_ended: number}>}
 */
export const resetPassword = (userId) => json('POST', `/api/users/${id(userId)}/password`);

/**
 * @param {string} userId
 * @param {boolean} disabled
 * @returns {Promise<AdminUser>}
 */
export const setDisabled = (userId, disabled) => json('POST', `/api/users/${id(userId)}/${disabled ? 'disable' : 'enable'}`);

/**
 * @param {boolean} retired include retired robots
 * @returns {Promise<AdminRobot[]>}
 */
export const listRobots = (retired) => json('GET', `/api/robots${retired ? '?include_retired=true' : ''}`);

/**
 * @param {{name: string, ward: string, description: string}} r
 * @returns {Promise<{robot: AdminRobot, credential: string}>}
 */
export const createRobot = (r) => json('POST', '/api/robots', r);

/**
 * @param {string} robotId
 * @param {{name?: string, ward?: string, description?: string}} change
 * @returns {Promise<AdminRobot>}
 */
export const updateRobot = (robotId, change) => json('PATCH', `/api/robots/${id(robotId)}`, change);

/**
 * @param {string} robotId
 * @returns {Promise<{credential: string}>}
 */
export const rotateCredential = (robotId) => json('POST', `/api/robots/${id(robotId)}/credential`);

/**
 * @param {string} robotId
 * @returns {Promise<{robot: AdminRobot, cancelled_bookings: string[]}>}
 */
export const retireRobot = (robotId) => json('POST', `/api/robots/${id(robotId)}/retire`);

/**
 * @param {AuditFilter} f
 * @param {{limit: number, before?: number}} page
 * @returns {Promise<AuditPage>}
 */
export const auditPage = (f, page) => json('GET', `/api/audit${query({ ...f, ...page })}`);

/**
 * The filtered log as a CSV file.
 * @param {AuditFilter} f
 * @returns {Promise<{blob: Blob, filename: string, truncated: boolean}>}
 */
export async function auditCsv(f) {
  const resp = await send('GET', `/api/audit.csv${query({ ...f })}`);
  if (!resp.ok) throw await failure(resp);
  const m = /filename="([^"]+)"/.exec(resp.headers.get('content-disposition') || '');
  return {
    blob: await resp.blob(),
    filename: m ? m[1] : 'bedside-audit.csv',
    truncated: resp.headers.get('x-bedside-truncated') === 'true',
  };
}
