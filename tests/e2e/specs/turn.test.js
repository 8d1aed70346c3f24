// Reach through a network that blocks UDP: headless Chromium joins a consult through a real
// coturn, over TURN/TCP and then over TURN/TLS on 443 (its test CA trusted through the profile's
// NSS database, no check switched off), decodes the robot's video and drives it; coturn refuses
// expired and forged credentials and relays only to the media node.
//
// The network, in a namespace of the test's own (lib/netns.js), everything on loopback:
//   127.0.0.1  bedside serve (HTTP, media UDP port, ICE-TCP port) and the browser
//   127.0.0.2  the robot agent (UDP allowed: the robot's network is fine)
//   127.0.0.4  coturn's listeners (3478 UDP/TCP, 443 TLS); 127.0.0.3 its relay address
//   127.0.0.5  the test's own TURN client
// Rules: from 127.0.0.1, no UDP and no TCP to the media node's media ports and no UDP to coturn
// (a guest network that lets only TCP out); later also no TCP to 3478 (only 443 left).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { NETNS, runSpecInNetns, nft, nftCount, sh } from '../lib/netns.js';
import { TurnClient } from '../lib/turn_client.js';
import { startServer } from '../lib/server.js';
import { startAgent, stopProcess } from '../lib/agent.js';
import { seed } from '../lib/seed.js';
import {
  CHROMIUM, FLAGS, watchPage, browserTest, login, until, expectDecoding, text, unexpectedPageProblems,
} from '../lib/browser.js';

if (!NETNS) {
  test('TURN reach, in a network namespace of its own', { timeout: 600_000 }, async () => {
    const r = await runSpecInNetns(fileURLToPath(import.meta.url), 'turn');
    assert.equal(r.code, 0, `the run inside the namespace failed (output above)`);
  });
} else {
  inside();
}

function inside() {
  const SECRET = 'e2e-turn-shared-secret-0123';
  const TURN_IP = '127.0.0.4';
  const RELAY_IP = '127.0.0.3';
  const ROBOT_IP = '127.0.0.2';
  const URLS = [`turn:${TURN_IP}:3478?transport=udp`, `turn:${TURN_IP}:3478?transport=tcp`, `turns:${TURN_IP}:443?transport=tcp`];
  /** A failed attempt's DELETE may find the session already gone (documented 404). */
  const OLD_SESSION = /^(doctor|untrusting): HTTP 404 DELETE \/sessions\/[^/]+$/;

  const dir = mkdtempSync(join(tmpdir(), 'bedside-turn-'));
  const home = join(dir, 'home');
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('node:child_process').ChildProcess|null} */
  let coturn = null;
  /** @type {import('../lib/agent.js').Agent} */
  let agent;
  let coturnLog = '';
  /** @type {{bookingId: string, robotId: string, credential: string, dana: import('../lib/server.js').ApiUser}} */
  let ids;
  /** @type {import('playwright-core').Page|null} */
  let doctor = null;

  /** A test CA and coturn's certificate from it (EC P-256: quick to make). */
  function makeCertificates() {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    sh('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2',
      '-subj', '/CN=Bedside e2e test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    sh('openssl', ['req', ...ec, '-keyout', join(dir, 'turn.key'), '-out', join(dir, 'turn.csr'), '-subj', '/CN=turn.bedside.test']);
    writeFileSync(join(dir, 'turn.ext'),
      `subjectAltName=IP:${TURN_IP},DNS:turn.bedside.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    sh('openssl', ['x509', '-req', '-in', join(dir, 'turn.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
      '-CAcreateserial', '-out', join(dir, 'turn.pem'), '-days', '2', '-extfile', join(dir, 'turn.ext')]);
    // Chromium on Linux trusts what the user's NSS database trusts: $HOME/.pki/nssdb.
    const db = join(home, '.pki', 'nssdb');
    mkdirSync(db, { recursive: true });
    sh('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
    sh('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'Bedside e2e test CA', '-i', join(dir, 'ca.pem')]);
  }

  /** coturn as docs/operations.md ships it, plus what a loopback test needs. */
  function startCoturn() {
    const conf = join(dir, 'turnserver.conf');
    writeFileSync(conf, [
      `listening-ip=${TURN_IP}`, `relay-ip=${RELAY_IP}`,
      'listening-port=3478', 'tls-listening-port=443',
      `cert=${join(dir, 'turn.pem')}`, `pkey=${join(dir, 'turn.key')}`,
      'use-auth-secret', `static-auth-secret=${SECRET}`, 'realm=bedside.test',
      'fingerprint', 'no-cli', 'no-tcp-relay', 'no-multicast-peers', 'no-dtls',
      'min-port=49152', 'max-port=49407',
      // Relay to the media node only.
      'denied-peer-ip=0.0.0.0-255.255.255.255', 'denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'allowed-peer-ip=127.0.0.1',
      // Test only: the media node is on loopback here.
      'allow-loopback-peers',
      `pidfile=${join(dir, 'turnserver.pid')}`, `userdb=${join(dir, 'turndb')}`,
      'simple-log', 'log-file=stdout', 'no-stdout-log',
    ].join('\n') + '\n');
    coturn = spawn('turnserver', ['-c', conf, '--log-file', 'stdout'], { stdio: ['ignore', 'pipe', 'pipe'] });
    coturn.stdout?.on('data', (d) => { coturnLog += String(d); });
    coturn.stderr?.on('data', (d) => { coturnLog += String(d); });
    coturn.once('error', (e) => { coturnLog += `\nspawn failed: ${e.message} (coturn is needed: .ci/run installs it)`; });
  }

  async function coturnListening() {
    return until('coturn answers on 3478', async () => {
      const c = new TurnClient({ server: TURN_IP, port: 3478, localIp: '127.0.0.5' });
      await c.open();
      try {
        const r = await c.allocate('0:nobody', 'x');
        return !r.ok && r.code === 401;
      } finally {
        c.close();
      }
    }, 30_000).catch((e) => { throw new Error(`${e.message}\ncoturn log:\n${coturnLog.slice(-3000)}`); });
  }

  /** @param {string} name */
  async function newPage(name) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, timezoneId: 'UTC', locale: 'en-GB', permissions: ['camera', 'microphone'] });
    return watchPage(await context.newPage(), name);
  }

  /** @param {import('playwright-core').Page} page */
  function sessionState(page) {
    return page.evaluate(() => {
      const b = /** @type {any} */ (window).__bedside;
      return b && b.session ? /** @type {string} */ (b.session.state) : null;
    }).catch(() => null);
  }

  /**
   * The selected candidate pair's local candidate, from getStats().
   * @param {import('playwright-core').Page} page
   */
  function selectedLocal(page) {
    return page.evaluate(async () => {
      const pc = /** @type {RTCPeerConnection|null} */ (/** @type {any} */ (window).__bedside?.session?.pc);
      if (!pc) return null;
      const report = await pc.getStats();
      /** @type {any} */
      let pair = null;
      report.forEach((/** @type {any} */ s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      if (!pair) return null;
      const l = report.get(pair.localCandidateId);
      const r = report.get(pair.remoteCandidateId);
      return { type: l.candidateType, relayProtocol: l.relayProtocol || null, address: l.address, remote: `${r.address}:${r.port}/${r.protocol}` };
    });
  }

  before(async () => {
    makeCertificates();
    server = await startServer({
      args: (udp) => ['--workers', '1', '--ice-tcp-port', String(udp), '--turn-url', URLS.join(','),
        '--turn-secret', SECRET, '--turn-relay-ips', RELAY_IP],
    });
    const udp = server.udpPort;
    nft(`table inet bedside_turn {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 127.0.0.1 ip daddr 127.0.0.1 udp dport ${udp} counter drop comment "direct-udp"
    ip saddr 127.0.0.1 ip daddr 127.0.0.1 tcp dport ${udp} counter drop comment "ice-tcp"
    ip saddr 127.0.0.1 ip daddr ${TURN_IP} meta l4proto udp counter drop comment "turn-udp"
  }
}
`);
    const world = await seed(server, {
      users: { dana: ['Dr Dana Okafor', 'doctor'] },
      robots: { r1: ['Rounds-1', 'Cardiology 3B', ''] },
      bookings: { now: { robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 30 } },
    });
    ids = { bookingId: world.bookings.now.id, robotId: world.robots.r1.id, credential: world.robots.r1.credential, dana: world.users.dana.api };
    agent = startAgent(server.base, ids, { args: ['--local-ip', ROBOT_IP, '--sink', 'stdout'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, env: { ...process.env, HOME: home } });
  });

  after(async () => {
    const left = unexpectedPageProblems([OLD_SESSION]);
    if (browser) await browser.close();
    if (agent) await agent.stop();
    await stopProcess(coturn);
    if (server) await server.stop();
    rmSync(dir, { recursive: true, force: true });
    if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
  });

  browserTest('without a relay the doctor cannot reach the media node: direct UDP and ICE-TCP are blocked', { timeout: 90_000, allow: [OLD_SESSION] }, async (t) => {
    // The robot's own network is fine: it publishes over UDP from its address.
    await until('the robot agent is on air', async () => (await server.metric('bedside_session_transports', { transport: 'udp' })) >= 1, 30_000);
    doctor = await newPage('doctor');
    await login(doctor, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
    // coturn is not running yet: the attempt times out (15 s) and the session retries.
    await until('the first attempt gives up', async () => (await sessionState(doctor)) === 'reconnecting', 60_000);
    const dropped = nftCount('direct-udp');
    t.diagnostic(`direct UDP datagrams dropped: ${dropped}, ICE-TCP segments dropped: ${nftCount('ice-tcp')}`);
    assert.ok(dropped > 0, 'the browser did try UDP to the media port, and it was dropped');
    assert.equal(await server.metric('bedside_session_transports', { transport: 'relay' }), 0);
  });

  browserTest('through coturn over TURN/TCP: video decodes, the path is a TCP relay, the driver drives the robot', { timeout: 150_000, allow: [OLD_SESSION] }, async (t) => {
    startCoturn();
    await coturnListening();
    assert.ok(doctor, 'the doctor page of the previous test');
    const page = doctor;
    await until('the doctor connects through the relay', async () => (await sessionState(page)) === 'connected', 90_000);
    await expectDecoding(page, 'doctor over TURN/TCP');
    const local = await selectedLocal(page);
    t.diagnostic(`selected pair: ${JSON.stringify(local)}`);
    assert.equal(local?.type, 'relay');
    assert.equal(local?.relayProtocol, 'tcp');
    assert.equal(local?.address, RELAY_IP);
    await until('the link panel shows the relay', async () => (await text(page, '#link-path')) === 'relay (TURN/TCP)');
    await until('the SFU reports the session as relayed', async () => (await server.metric('bedside_session_transports', { transport: 'relay' })) >= 1);
    assert.ok(nftCount('turn-udp') > 0, 'the browser tried TURN over UDP first, and it was dropped');

    // Drive over the relay; the robot agent obeys.
    await page.click('#request-control');
    await page.waitForSelector('#drive-status[data-state="you"]', { timeout: 20_000 });
    await page.click('#remote-video');
    const before = agent.commands.length;
    await page.keyboard.down('KeyW');
    try {
      await agent.waitFor('the robot receives drive frames over the relay',
        (c) => c.filter((d) => d.reason === 'frame' && d.linear_x > 0).length >= 5, { from: before, timeoutMs: 20_000 });
    } finally {
      await page.keyboard.up('KeyW');
    }
    await agent.waitFor('the robot stops on release', (c) => c.at(-1)?.linear_x === 0);
    await page.click('#release-control').catch(() => {});
    await page.close();
    doctor = null;
  });

  browserTest('with only 443 open: through coturn over TURN/TLS, its certificate trusted through NSS', { timeout: 120_000, allow: [OLD_SESSION] }, async (t) => {
    nft(`add rule inet bedside_turn input ip saddr 127.0.0.1 ip daddr ${TURN_IP} tcp dport 3478 counter drop comment "turn-tcp"\n`);
    // The control: a browser whose NSS database does not hold the test CA gets nowhere.
    const bare = join(dir, 'home-untrusting');
    mkdirSync(bare, { recursive: true });
    const untrusting = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, env: { ...process.env, HOME: bare } });
    try {
      const ctx = await untrusting.newContext({ permissions: ['camera', 'microphone'] });
      const p = watchPage(await ctx.newPage(), 'untrusting');
      await login(p, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
      await until('the untrusting browser gives up its first attempt', async () => (await sessionState(p)) === 'reconnecting', 60_000);
    } finally {
      await untrusting.close();
    }
    const page = await newPage('doctor');
    doctor = page;
    await login(page, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
    await until('the doctor connects through the TLS relay', async () => (await sessionState(page)) === 'connected', 90_000);
    await expectDecoding(page, 'doctor over TURN/TLS');
    const local = await selectedLocal(page);
    t.diagnostic(`selected pair: ${JSON.stringify(local)}`);
    assert.equal(local?.type, 'relay');
    assert.equal(local?.relayProtocol, 'tls');
    await until('the link panel shows the TLS relay', async () => (await text(page, '#link-path')) === 'relay (TURN/TLS)');
    assert.ok(nftCount('turn-tcp') > 0, 'TURN over plain TCP was tried and dropped');
  });

  test('coturn refuses expired and forged credentials, and relays only to the media node', { timeout: 60_000 }, async () => {
    // A fresh client (5-tuple) per attempt: coturn ties a 5-tuple to its first username.
    const tryAllocate = async (/** @type {string} */ user, /** @type {string} */ password) => {
      const c = new TurnClient({ server: TURN_IP, port: 3478, localIp: '127.0.0.5' });
      await c.open();
      try {
        return await c.allocate(user, password);
      } finally {
        c.close();
      }
    };
    const mac = (/** @type {string} */ secret, /** @type {string} */ user) => createHmac('sha1', secret).update(user).digest('base64');
    const now = Math.floor(Date.now() / 1000);
    const expired = `${now - 60}:e2e`;
    const r1 = await tryAllocate(expired, mac(SECRET, expired));
    assert.equal(r1.ok ? 0 : r1.code, 401, `an expired username is refused (${JSON.stringify(r1)})`);
    const valid = `${now + 600}:e2e`;
    const r2 = await tryAllocate(valid, mac('a-forged-secret-0000000', valid));
    assert.equal(r2.ok ? 0 : r2.code, 401, `a forged credential is refused (${JSON.stringify(r2)})`);
    // The control: the same username with the right secret is let in.
    const r3 = await tryAllocate(valid, mac(SECRET, valid));
    assert.ok(r3.ok, `the right credential allocates (${JSON.stringify(r3)})`);

    // What the API hands out works, and reaches the media node only.
    const join = await ids.dana.call('POST', `/api/bookings/${ids.bookingId}/join`, {});
    const [ice] = join.ice_servers;
    assert.deepEqual(ice.urls, URLS);
    const d = new TurnClient({ server: TURN_IP, port: 3478, localIp: '127.0.0.5' });
    await d.open();
    try {
      const r = await d.allocate(ice.username, ice.credential);
      assert.ok(r.ok, `the API's credential allocates (${JSON.stringify(r)})`);
      assert.match(r.relayed || '', new RegExp(`^${RELAY_IP.replaceAll('.', '\\.')}:`));
      const media = await d.createPermission('127.0.0.1');
      assert.ok(media.ok, `the media node is a permitted peer (${JSON.stringify(media)})`);
      for (const peer of ['127.0.0.9', '127.0.0.4', '10.1.2.3', '192.168.1.1', '169.254.169.254']) {
        const p = await d.createPermission(peer);
        assert.equal(p.ok ? 0 : p.code, 403, `no relaying to ${peer} (${JSON.stringify(p)})`);
      }
    } finally {
      d.close();
    }
  });
}
