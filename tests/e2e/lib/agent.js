// The Rust robot agent (`bedside robot`), run the way a robot runs it, for the specs that need a
// robot that is not a browser page: what it is told to do is read from its stdout (one JSON drive
// command a line), so "the robot moved" / "the robot did not move" is observed, not assumed.
//
//   const agent = startAgent(server.base, ids, { args: ['--sink', 'stdout'] });
//   await agent.waitFor('the robot drives forward', (c) => c.some((d) => d.linear_x > 0));
//   await agent.stop();
//
// Not here: the server (server.js), browsers (browser.js).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN } from './server.js';

/**
 * One drive command the agent wrote, with the `Date.now()` it was read at (to tell what came
 * after a moment of the test from what came before).
 * @typedef {{at: number, linear_x: number, linear_y: number, angular_z: number, reason: string, epoch?: number}} DriveCommand
 */

/**
 * End `proc` and wait until it is gone: SIGTERM (a clean shutdown), SIGKILL if it is still there
 * 5 s later. Nothing to do when it already exited.
 * @param {import('node:child_process').ChildProcess|null|undefined} proc
 */
export async function stopProcess(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

/**
 * Start `bedside robot` for `robot` against the server at `base`. Its stdout lines that are JSON
 * objects are its drive commands (`commands`); its stderr (the log) is kept line by line
 * (`log`), so a failed wait can say what the agent was doing.
 * @param {string} base the server's URL
 * @param {{robotId: string, credential: string}} robot
 * @param {{args?: string[], log?: string}} [opts] `args`: more `robot` flags (`--local-ip`,
 *   `--sink`); `log`: its RUST_LOG (default `info,str0m=warn`)
 */
export function startAgent(base, robot, opts = {}) {
  const proc = spawn(BIN, ['robot', '--server', base, '--room', robot.robotId, '--credential', robot.credential, ...(opts.args || [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: opts.log || 'info,str0m=warn' },
  });
  /** @type {DriveCommand[]} */
  const commands = [];
  /** @type {string[]} */
  const log = [];
  /** Why the agent is gone (all its output read), or null while it runs. */
  /** @type {string|null} */
  let ended = null;
  /** Waits to look at again: on every new command and when the agent ends. */
  /** @type {Set<() => void>} */
  const waiting = new Set();
  const wake = () => { for (const w of [...waiting]) w(); };

  createInterface({ input: /** @type {import('node:stream').Readable} */ (proc.stdout) }).on('line', (line) => {
    let v;
    try {
      v = JSON.parse(line);
    } catch {
      return; // not a drive command
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      commands.push({ at: Date.now(), ...v });
      wake();
    }
  });
  // Without its colours: the lines end up in a failure message.
  createInterface({ input: /** @type {import('node:stream').Readable} */ (proc.stderr) }).on('line', (line) => { log.push(line.replace(/\x1b\[[0-9;]*m/g, '')); });
  proc.once('error', (e) => {
    ended = `could not start ${BIN}: ${e.message}`;
    wake();
  });
  // 'close', not 'exit': by then every line it wrote has been read.
  proc.once('close', (code, signal) => {
    ended ??= `exited with ${code ?? signal}`;
    wake();
  });

  const tail = () => `its last commands: ${JSON.stringify(commands.slice(-8))}\nits log:\n  ${log.slice(-20).join('\n  ')}`;

  return {
    proc,
    /** Every drive command so far, oldest first (the same array, growing). */
    commands,
    /** Every line of its log so far. */
    log,
    /**
     * Wait until `test` holds for the drive commands read so far (from index `from` on: what
     * came after a moment the caller noted with `commands.length`). Fails after `timeoutMs`,
     * or at once when the agent is gone, with its last commands and log lines.
     * @template T
     * @param {string} what
     * @param {(c: DriveCommand[]) => T} test
     * @param {{from?: number, timeoutMs?: number}} [o]
     * @returns {Promise<NonNullable<T>>}
     */
    waitFor(what, test, o = {}) {
      const { from = 0, timeoutMs = 20_000 } = o;
      return new Promise((resolve, reject) => {
        /** @type {NodeJS.Timeout|undefined} */
        let timer;
        const done = () => {
          waiting.delete(check);
          clearTimeout(timer);
        };
        const check = () => {
          let v;
          try {
            v = test(commands.slice(from));
          } catch (e) {
            done();
            reject(e);
            return;
          }
          if (v) {
            done();
            resolve(/** @type {NonNullable<T>} */ (v));
          } else if (ended) {
            done();
            reject(new Error(`the robot agent ${ended} while waiting for ${what}; ${tail()}`));
          }
        };
        waiting.add(check);
        timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; ${tail()}`));
        }, timeoutMs);
        check();
      });
    },
    /** SIGTERM, SIGKILL after 5 s, and wait until it is gone. */
    stop: () => stopProcess(proc),
  };
}

/** @typedef {ReturnType<typeof startAgent>} Agent */
