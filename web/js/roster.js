// The names of the people in the robot's booking, for the robot's own screen ("Dr … is driving"):
// `GET /api/robots/{id}/roster` with the robot's credential, kept as a map from `sub` (the
// opaque id the room's events carry) to display name.
//
// Asked on every (re)connect and when someone the map does not know appears in the room; asks
// come together (one request at a time, at most one more after it), and a sub that a request
// made after it appeared did not name is not asked about again until the next connection (an
// administrator, or someone taken off the booking, would otherwise cost a request per event).
// Anything wrong (no credential, network, an error answer, a malformed body) leaves names
// unknown: the page then shows roles, never an id. Nothing here is logged: the names are
// personal data.
//
// Not here: who is in the room (the `events` channel), how a person is worded (robot.js).

/** A hung request gives up after this long (the page falls back to roles meanwhile). */
const ROSTER_TIMEOUT_MS = 10_000;
/** Longest name shown; the API caps names too, this keeps a bad answer off the layout. */
const MAX_NAME = 100;

/**
 * @typedef {object} RosterEntry
 * @property {string} sub
 * @property {string} display_name
 * @property {'doctor'|'consultant'|'observer'} role
 */

/**
 * The roster of one robot's current booking. Fires `change` when the names it knows change.
 */
export class Roster extends EventTarget {
  /**
   * @param {string} robotId
   * @param {string} credential the robot's credential (kept in memory only, like the page does)
   */
  constructor(robotId, credential) {
    super();
    this.robotId = robotId;
    this.credential = credential;
    /** @type {Map<string, string>} sub -> display name */
    this.names = new Map();
    /** @type {'idle'|'loading'|'ok'|'failed'} what the last request did (support and tests) */
    this.state = 'idle';
    /** Requests sent (support and tests). */
    this.requests = 0;
    /** @type {Set<string>} subs seen in the room and not yet in `names` */
    this.wanted = new Set();
    /** @type {Set<string>} subs a request made after they appeared did not name */
    this.missed = new Set();
    this.busy = false;
    this.again = false;
  }

  /**
   * The display name of `sub`, or undefined when not known.
   * @param {string|undefined} sub
   */
  nameOf(sub) {
    return sub ? this.names.get(sub) : undefined;
  }

  /** A new connection: ask again (the booking on now may have changed), whoever was missed. */
  refresh() {
    this.missed.clear();
    if (this.busy) this.again = true;
    else this.run();
  }

  /**
   * These subs are in the room: ask for the ones not known yet.
   * @param {string[]} subs
   */
  want(subs) {
    let fresh = false;
    for (const sub of subs) {
      if (!sub || this.names.has(sub) || this.missed.has(sub) || this.wanted.has(sub)) continue;
      this.wanted.add(sub);
      fresh = true;
    }
    // While a request is out, its answer is looked at first (it most likely names them).
    if (fresh && !this.busy) this.run();
  }

  async run() {
    this.busy = true;
    this.again = false;
    /** Subs this request is meant to find: if it does not, they are not on the booking. */
    const asked = new Set(this.wanted);
    this.state = 'loading';
    this.requests += 1;
    const got = await this.fetchRoster();
    if (got) {
      const before = [...this.names].join('\n');
      this.names = got;
      this.state = 'ok';
      for (const sub of [...this.wanted]) {
        if (got.has(sub)) {
          this.wanted.delete(sub);
        } else if (asked.has(sub)) {
          this.wanted.delete(sub);
          this.missed.add(sub);
        }
      }
      if ([...this.names].join('\n') !== before) this.dispatchEvent(new Event('change'));
    } else {
      // Roles meanwhile; the next connection or newcomer asks again.
      this.state = 'failed';
      this.wanted.clear();
    }
    this.busy = false;
    if (this.again || this.wanted.size) this.run();
  }

  /**
   * One request; null on any failure.
   * @returns {Promise<Map<string, string>|null>}
   */
  async fetchRoster() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ROSTER_TIMEOUT_MS);
    try {
      const resp = await fetch(`/api/robots/${encodeURIComponent(this.robotId)}/roster`, {
        headers: { Authorization: `Robot ${this.credential}`, Accept: 'application/json' },
        cache: 'no-store',
        signal: abort.signal,
      });
      if (!resp.ok) return null;
      const body = await resp.json();
      if (!Array.isArray(body)) return null;
      /** @type {Map<string, string>} */
      const names = new Map();
      for (const e of body) {
        if (!e || typeof e.sub !== 'string' || typeof e.display_name !== 'string') continue;
        const name = e.display_name.trim().slice(0, MAX_NAME);
        if (e.sub && name) names.set(e.sub, name);
      }
      return names;
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}
