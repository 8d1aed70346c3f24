// Runs the real `bedside` binary for one test file, the way a user starts it, and talks to its
// HTTP API the way the admin and doctors would (no SQL, no back doors).
//
//   const server = await startServer();   // fresh data dir, free ports, first admin from env
//   const admin = await server.login('admin', ADMIN_PASSWORD);
//   ...
//   await server.stop();
//
// Not here: browsers (browser.js) or assertions (the specs).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMetrics } from './metrics.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The binary: $BEDSIDE_BIN, else target/debug/bedside of this checkout. */
export const BIN = process.env.BEDSIDE_BIN
  ? resolve(process.env.BEDSIDE_BIN)
  : resolve(here, '../../../target/debug/bedside');

export const ADMIN_USERNAME = 'admin';
export const ADMIN_PASSWORD = 'e2e-admin-password-1';

/** @returns {Promise<number>} a TCP port nobody listens on right now */
function freeTcpPort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

/**
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function tcpFree(port) {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '0.0.0.0', () => s.close(() => res(true)));
  });
}

/**
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function udpFree(port) {
  return new Promise((res) => {
    const s = createSocket('udp4');
    s.once('error', () => res(false));
    s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/**
 * A first UDP port such that it and the next one are free (one per media worker; the machine
 * has 2 cores, so `serve` starts 2 workers by default).
 * @returns {Promise<number>}
 */
async function freeUdpPorts() {
  for (let i = 0; i < 50; i++) {
    // Below Linux's ephemeral range (32768-60999): an outgoing connection (Chromium's, a
    // database client's) takes its local port from there at any moment, and the server's ICE-TCP
    // listener, on the same number as its first UDP port, then failed to bind (seen once: a
    // whole spec lost to "bedside serve exited with 1").
    const p = 20000 + Math.floor(Math.random() * 12000);
    if ((await udpFree(p)) && (await udpFree(p + 1)) && (await udpFree(p + 2)) && (await udpFree(p + 3))
      && (await tcpFree(p))) return p;
  }
  throw new Error('no free UDP ports');
}

/**
 * A server log cut for an error message: the exit's `Error: ...` (printed before a
 * `RUST_BACKTRACE` backtrace that would push it out of a plain tail) and the log's end.
 * @param {string} log
 */
function headAndTail(log) {
  if (log.length <= 4000) return log;
  const at = log.lastIndexOf('Error: ');
  const error = at >= 0 ? `${log.slice(at, at + 1500)}\n[...]\n` : '';
  return `${error}${log.slice(-2000)}`;
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class ApiClientError extends Error {
  /**
   * @param {number} status
   * @param {any} body
   * @param {string} what
   */
  constructor(status, body, what) {
    super(`${what} -> ${status} ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * A logged-in API user.
 */
export class ApiUser {
  /**
   * @param {string} base
   * @param {any} login the login response
   */
  constructor(base, login) {
    this.base = base;
    this.token = login.access_token;
    this.user = login.user;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async call(method, path, body) {
    const resp = await fetch(this.base + path, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (!resp.ok) throw new ApiClientError(resp.status, parsed, `${method} ${path}`);
    return parsed;
  }

  /**
   * @param {string} username
   * @param {string} displayName
   * @param {'doctor'|'student'|'admin'} role
   * @param {string} password
   */
  createUser(username, displayName, role, password) {
    return this.call('POST', '/api/users', { username, display_name: displayName, password, role });
  }

  /**
   * @param {string} name
   * @param {string} ward
   * @param {string} description
   * @returns {Promise<{robot: {id: string, name: string}, credential: string}>}
   */
  createRobot(name, ward, description) {
    return this.call('POST', '/api/robots', { name, ward, description });
  }
}

export class Server {
  /**
   * @param {string} dataDir
   * @param {number} httpPort
   * @param {number} udpPort
   * @param {string[]} [extraArgs] more `serve` flags (e.g. TURN settings)
   * @param {{admin?: boolean}} [opts] admin: false starts without the first admin from the
   *   environment (a fresh install: the server prints a setup link)
   */
  constructor(dataDir, httpPort, udpPort, extraArgs = [], opts = {}) {
    this.extraArgs = extraArgs;
    this.withAdmin = opts.admin !== false;
    this.dataDir = dataDir;
    this.httpPort = httpPort;
    this.udpPort = udpPort;
    this.base = `http://127.0.0.1:${httpPort}`;
    this.logPath = join(dataDir, '..', 'server.log');
    /** @type {import('node:child_process').ChildProcess|null} */
    this.proc = null;
  }

  /** Start the binary and wait for /healthz. */
  async start() {
    const log = openSync(this.logPath, 'a');
    const proc = spawn(BIN, [
      'serve',
      '--data-dir', this.dataDir,
      '--http', `127.0.0.1:${this.httpPort}`,
      '--udp-port', String(this.udpPort),
      ...this.extraArgs,
    ], {
      env: {
        ...process.env,
        ...(this.withAdmin ? { BEDSIDE_ADMIN_USERNAME: ADMIN_USERNAME, BEDSIDE_ADMIN_PASSWORD: ADMIN_PASSWORD } : {}),
        RUST_LOG: process.env.RUST_LOG || 'info,str0m=warn,sqlx=warn',
        // ICE-TCP on the same number as this server's UDP port (free: it was picked for this
        // server), not the default 50000, which a process outside this run may hold. A spec's
        // own `--ice-tcp-port` / `--no-ice-tcp` still wins over this.
        BEDSIDE_ICE_TCP_PORT: String(this.udpPort),
      },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.proc = proc;
    /** @type {string|null} */
    let exited = null;
    proc.once('exit', (code, signal) => { exited = `exited with ${code ?? signal}`; });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`bedside serve ${exited} before it was healthy:\n${headAndTail(this.log())}`);
      try {
        const r = await fetch(`${this.base}/healthz`);
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`bedside serve not healthy after 60 s:\n${headAndTail(this.log())}`);
  }

  /**
   * Stop the binary (SIGTERM, then SIGKILL) and wait for it to exit. `SIGKILL` kills it at once,
   * as a crash or a pulled plug would: no goodbyes on any connection.
   * @param {'SIGTERM'|'SIGKILL'} [signal]
   */
  async kill(signal = 'SIGTERM') {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * @param {string} username
   * @param {string} password
   */
  async login(username, password) {
    const resp = await fetch(`${this.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const body = await resp.json();
    if (!resp.ok) throw new ApiClientError(resp.status, body, `login ${username}`);
    return new ApiUser(this.base, body);
  }

  /** The samples of `GET /metrics`, parsed (lib/metrics.js). */
  async metrics() {
    const resp = await fetch(`${this.base}/metrics`);
    if (!resp.ok) throw new Error(`GET /metrics -> ${resp.status}`);
    return parseMetrics(await resp.text());
  }

  /**
   * One sample's value, 0 when absent.
   * @param {string} name e.g. `bedside_control_frames_dropped_total`
   * @param {Record<string, string>} [labels] e.g. `{reason: 'observer'}`
   */
  async metric(name, labels = {}) {
    return (await this.metrics()).value(name, labels);
  }

  /**
   * A publish token for a robot, asked the way the robot page asks (its credential).
   * @param {string} robotId
   * @param {string} credential
   * @returns {Promise<{room: string, token: string}>}
   */
  async publishToken(robotId, credential) {
    const resp = await fetch(`${this.base}/api/robots/${robotId}/publish-token`, {
      method: 'POST', headers: { Authorization: `Robot ${credential}` },
    });
    const body = await resp.json();
    if (!resp.ok) throw new ApiClientError(resp.status, body, `publish token for ${robotId}`);
    return body;
  }
}

/**
 * A fresh server on free ports with its own data dir.
 * @param {{args?: (udpPort: number) => string[], admin?: boolean}} [opts] more `serve` flags,
 *   given its UDP port; `admin` see `Server`
 * @returns {Promise<Server & {stop: () => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const root = mkdtempSync(join(tmpdir(), 'bedside-e2e-'));
  const udpPort = await freeUdpPorts();
  const server = new Server(join(root, 'data'), await freeTcpPort(), udpPort, opts.args ? opts.args(udpPort) : [], opts);
  await server.start();
  return Object.assign(server, {
    async stop() {
      await server.kill();
      if (!process.env.BEDSIDE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
    },
  });
}

/**
 * RFC 3339 UTC, whole seconds.
 * @param {number} ms
 */
export function iso(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
