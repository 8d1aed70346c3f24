// A network namespace of the spec's own, for browser tests that block traffic with nftables
// without touching the machine's network (the browser-side sibling of tests/common/netns.rs).
//
// A spec that needs one runs itself inside it: `runSpecInNetns(file, tag)` (from the spec as the
// test runner started it) creates a namespace with only `lo` up and runs `node --test FILE` again
// in it with `ip netns exec`, with BEDSIDE_E2E_NETNS set; that inner run (NETNS is set) starts
// the server, coturn, the robot agent and Chromium, which all inherit the namespace, and loads its
// rules with `nft`. Every address on 127.0.0.0/8 is local, so each party gets its own (127.0.0.2
// for the robot, say) and rules go by source address. The namespace and anything still running
// in it are removed afterwards.
//
// Needs root, `ip` (iproute2) and `nft` (nftables): `.ci/run` installs both. Missing tools fail
// the test, they never skip it.
//
// Not here: the rules themselves (each spec says what it blocks, and first shows it blocked).

import { spawn, spawnSync } from 'node:child_process';

/** The namespace this process runs in, when it is a spec's inner run. */
export const NETNS = process.env.BEDSIDE_E2E_NETNS || null;

/**
 * Run a command to completion; throw with its output when it fails or is missing.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{input?: string, env?: NodeJS.ProcessEnv}} [opts]
 */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { input: opts.input, env: opts.env || process.env, encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (is it installed? .ci/run installs what the tests need)`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Load an nftables script into this process's namespace (inner runs only).
 * @param {string} script
 */
export function nft(script) {
  if (!NETNS) throw new Error('nft rules belong in a namespace of the test\'s own');
  sh('nft', ['-f', '-'], { input: script });
}

/**
 * Packets counted so far by the rule with `comment` (a `counter` rule).
 * @param {string} comment
 */
export function nftCount(comment) {
  const ruleset = JSON.parse(sh('nft', ['-j', 'list', 'ruleset']));
  for (const item of ruleset.nftables) {
    const rule = item.rule;
    if (!rule || rule.comment !== comment) continue;
    for (const e of rule.expr) if (e.counter) return /** @type {number} */ (e.counter.packets);
  }
  throw new Error(`no nftables rule with comment ${comment}`);
}

/**
 * Run spec `file` again inside a new namespace; resolve with its exit code and output (also
 * streamed to stderr as it comes).
 * @param {string} file
 * @param {string} tag
 * @returns {Promise<{code: number|null, output: string}>}
 */
export async function runSpecInNetns(file, tag) {
  const name = `bedside-e2e-${tag}-${process.pid}`;
  sh('ip', ['netns', 'add', name]);
  try {
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    const env = { ...process.env, BEDSIDE_E2E_NETNS: name };
    // The runner's own protocol variable would make the inner run talk to a parent it lacks.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn('ip', ['netns', 'exec', name, process.execPath, '--test', '--test-reporter=spec', file], {
      env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    /** @param {Buffer} d */
    const take = (d) => {
      output += String(d);
      process.stderr.write(d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const code = await new Promise((res) => child.once('exit', (c) => res(c)));
    return { code: /** @type {number|null} */ (code), output };
  } finally {
    // Whatever the inner run left behind (it stops its own; this is for a crash) is ours.
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout || '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', name]);
  }
}
