// A driving doctor's network path breaks mid-consult: the page mends it by an ICE restart
// (PATCH with new ICE credentials) instead of rejoining. Same session on the server, the lease
// kept with the same epoch, the robot's video decodes again, the robot obeys the driver again,
// and the server no longer answers the old ICE credentials.
//
// The network, in a namespace of the test's own (lib/netns.js), everything on loopback:
//   127.0.0.1  bedside serve (HTTP, one media UDP port, no ICE-TCP) and the browser
//   127.0.0.2  the robot agent
//   127.0.0.5  the test's own ICE checks
// The break: nftables drops every datagram from and to the browser's current UDP port (the
// 5-tuple of the selected candidate pair), as a Wi-Fi roam or a NAT rebinding does. A restarted
// ICE agent gathers new sockets, so the new path is not blocked. ICE-TCP is off: Chromium would
// otherwise move to the TCP pair by itself and there would be nothing to mend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { NETNS, runSpecInNetns, nft, nftCount } from '../lib/netns.js';
import { iceCheck } from '../lib/turn_client.js';
import { startServer } from '../lib/server.js';
import { startAgent } from '../lib/agent.js';
import { seed } from '../lib/seed.js';
import {
  CHROMIUM, FLAGS, watchPage, browserTest, login, until, expectDecoding, videoState, unexpectedPageProblems,
} from '../lib/browser.js';

if (!NETNS) {
  test('ICE restart, in a network namespace of its own', { timeout: 300_000 }, async () => {
    const r = await runSpecInNetns(fileURLToPath(import.meta.url), 'icerestart');
    assert.equal(r.code, 0, `the run inside the namespace failed (output above)`);
  });
} else {
  inside();
}

function inside() {
  const ROBOT_IP = '127.0.0.2';
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('../lib/agent.js').Agent} */
  let agent;
  /** @type {{bookingId: string, robotId: string, credential: string}} */
  let ids;

  /**
   * The consult's session as the page sees it.
   * @param {import('playwright-core').Page} page
   */
  function session(page) {
    return page.evaluate(() => {
      const b = /** @type {any} */ (window).__bedside;
      const s = b.session;
      return {
        state: /** @type {string} */ (s.state), alive: /** @type {boolean} */ (s.alive),
        generation: /** @type {number} */ (s.generation), id: /** @type {string|null} */ (s.participantId),
        restarting: !!s.iceRestart, restarts: /** @type {number} */ (s.iceRestarts),
        epoch: /** @type {number|null} */ (b.room.epoch ?? null), holder: /** @type {string|null} */ (b.room.holder),
        detail: /** @type {string} */ (s.detail),
        connText: document.querySelector('#conn-state')?.textContent || '',
      };
    });
  }

  /**
   * The selected pair's local port, the server's ICE credentials and the browser's ufrag.
   * @param {import('playwright-core').Page} page
   */
  function path(page) {
    return page.evaluate(async () => {
      const pc = /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).__bedside.session.pc);
      const report = await pc.getStats();
      /** @type {any} */
      let pair = null;
      report.forEach((/** @type {any} */ s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      const local = pair ? report.get(pair.localCandidateId) : null;
      const answer = pc.remoteDescription ? pc.remoteDescription.sdp : '';
      const ufrag = (answer.match(/a=ice-ufrag:(\S+)/) || [])[1] || null;
      const pwd = (answer.match(/a=ice-pwd:(\S+)/) || [])[1] || null;
      const offer = pc.localDescription ? pc.localDescription.sdp : '';
      const peerUfrag = (offer.match(/a=ice-ufrag:(\S+)/) || [])[1] || null;
      return { port: local ? /** @type {number} */ (local.port) : null, ufrag, pwd, peerUfrag };
    });
  }

  before(async () => {
    server = await startServer({ args: () => ['--workers', '1', '--no-ice-tcp'] });
    const world = await seed(server, {
      users: { dana: ['Dr Dana Okafor', 'doctor'] },
      robots: { r1: ['Rounds-1', 'Cardiology 3B', ''] },
      bookings: { now: { robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 30 } },
    });
    ids = { bookingId: world.bookings.now.id, robotId: world.robots.r1.id, credential: world.robots.r1.credential };
    agent = startAgent(server.base, ids, { args: ['--local-ip', ROBOT_IP, '--sink', 'stdout'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  });

  after(async () => {
    const left = unexpectedPageProblems();
    if (browser) await browser.close();
    if (agent) await agent.stop();
    if (server) await server.stop();
    if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
  });

  browserTest('a driver whose path breaks restarts ICE: same session, same lease epoch, video and driving come back', { timeout: 150_000 }, async (t) => {
    await until('the robot agent is on air', async () => (await server.metric('bedside_sessions', { role: 'robot' })) === 1, 30_000);
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, timezoneId: 'UTC', locale: 'en-GB', permissions: ['camera', 'microphone'] });
    const page = watchPage(await context.newPage(), 'doctor');
    await login(page, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
    await until('the doctor is connected', async () => (await session(page)).state === 'connected', 30_000);
    await expectDecoding(page, 'doctor');
    await page.click('#request-control');
    await page.waitForSelector('#drive-status[data-state="you"]', { timeout: 20_000 });
    // Every lease event from now on, to show the epoch never moves.
    await page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__leaseEvents = [];
      w.__bedside.session.addEventListener('server-event', (/** @type {CustomEvent} */ e) => {
        if (e.detail.type === 'lease') w.__leaseEvents.push(e.detail);
      });
    });
    const start = await session(page);
    assert.ok(start.id && start.holder === start.id && typeof start.epoch === 'number', `the doctor drives: ${JSON.stringify(start)}`);
    const epoch = /** @type {number} */ (start.epoch);
    const old = await path(page);
    assert.ok(old.port && old.ufrag && old.pwd && old.peerUfrag, `the selected pair and the server's credentials: ${JSON.stringify(old)}`);
    t.diagnostic(`before: session ${start.id}, epoch ${epoch}, browser port ${old.port}, server ufrag ${old.ufrag}`);
    // The server answers its live credentials (the control for the refusal at the end).
    assert.ok(await iceCheck({ server: '127.0.0.1', port: server.udpPort, localIp: '127.0.0.5', ufrag: old.ufrag, pwd: old.pwd, peerUfrag: old.peerUfrag }),
      'the server answers a check with its live ufrag');
    const restartsBefore = await server.metric('bedside_ice_restarts_total');

    // The break: nothing from or to the browser's current port gets through any more.
    nft(`table inet bedside_roam {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 127.0.0.1 udp sport ${old.port} counter drop comment "old-path-out"
    ip daddr 127.0.0.1 udp dport ${old.port} counter drop comment "old-path-in"
  }
}
`);
    const broke = Date.now();
    // The impairment is in effect: the browser's datagrams are dropped and the page notices.
    await until('the old path is dropped', () => nftCount('old-path-out') > 0 && nftCount('old-path-in') > 0, 5_000);
    await until('the page says the connection is lost', async () => !(await session(page)).alive, 5_000);
    const during = await until('the page reacts', async () => {
      const s = await session(page);
      return s.restarting || s.state !== 'connected' || s.generation !== 1 ? s : null;
    }, 10_000);
    t.diagnostic(`during: ${JSON.stringify(during)}`);
    assert.ok(during.restarting && during.state === 'connected', 'the page mends the path in place (an ICE restart), not by rejoining');
    assert.match(during.connText, /^Reconnecting…/, 'the link panel says it is reconnecting');

    const back = await until('the link is back', async () => {
      const s = await session(page);
      return s.state === 'connected' && s.alive && !s.restarting && s.restarts === 1 ? s : null;
    }, 20_000);
    t.diagnostic(`back after ${Date.now() - broke} ms: ${JSON.stringify(back)}`);
    assert.equal(back.generation, 1, 'no full rejoin: still the first connection');
    assert.equal(back.id, start.id, 'the same participant id');
    assert.equal(await server.metric('bedside_ice_restarts_total'), restartsBefore + 1, 'the server restarted ICE once');
    assert.equal(await server.metric('bedside_sessions', { role: 'doctor' }), 1, 'one doctor session on the server');
    const now = await path(page);
    assert.notEqual(now.port, old.port, 'a new path');
    assert.notEqual(now.ufrag, old.ufrag, 'the server has new credentials');

    // The video decodes again on the new path.
    const frames = (await videoState(page)).framesDecoded;
    await until('video decodes again', async () => (await videoState(page)).framesDecoded > frames + 10, 10_000);

    // The lease is kept, same epoch (suspended while silent, resumed: never a new holder).
    await until('the page holds the lease again', async () => {
      const s = await session(page);
      return s.holder === start.id && s.epoch === epoch;
    }, 10_000);
    const leases = await page.evaluate(() => /** @type {any} */ (window).__leaseEvents);
    t.diagnostic(`lease events: ${JSON.stringify(leases)}`);
    for (const ev of leases) assert.equal(ev.epoch, epoch, `no lease change: ${JSON.stringify(ev)}`);
    await page.waitForSelector('#drive-status[data-state="you"]', { timeout: 10_000 });

    // The driver drives again; the robot obeys, same epoch.
    await page.click('#remote-video');
    const before = agent.commands.length;
    await page.keyboard.down('KeyW');
    try {
      await agent.waitFor('the robot receives drive frames after the restart', (c) => c
        .filter((d) => d.reason === 'frame' && d.linear_x > 0 && d.epoch === epoch).length >= 5, { from: before, timeoutMs: 15_000 });
    } finally {
      await page.keyboard.up('KeyW');
    }

    // The old credentials are retired: the server ignores them (and counts the stranger), and
    // answers the new ones.
    const unknown = await server.metric('bedside_datagrams_dropped_total', { reason: 'unknown_source' });
    assert.equal(await iceCheck({ server: '127.0.0.1', port: server.udpPort, localIp: '127.0.0.5', ufrag: old.ufrag, pwd: old.pwd, peerUfrag: old.peerUfrag }), false,
      'the old ufrag gets no answer');
    assert.ok((await server.metric('bedside_datagrams_dropped_total', { reason: 'unknown_source' })) > unknown, 'and is counted as a stranger');
    assert.ok(now.ufrag && now.pwd && now.peerUfrag);
    assert.ok(await iceCheck({ server: '127.0.0.1', port: server.udpPort, localIp: '127.0.0.5', ufrag: now.ufrag, pwd: now.pwd, peerUfrag: now.peerUfrag }),
      'the new ufrag is answered');
    await context.close();
  });
}
