// The console tells the truth when the server goes away (issue 17), with the real binary killed
// and started again under live pages:
// - killed mid-consult (SIGKILL: no goodbye on any connection), the driver's page says within
//   1.5 s that the connection is lost and the robot has stopped by itself, says control was lost
//   and why; an e-stop pressed meanwhile is shown as not delivered and is latched in the room
//   after the reconnect (the page sends it again on the new connection);
// - restarted with the e-stop latched, the room is still latched for everyone: the old page shows
//   the server's state, a fresh page for the same booking takes control but cannot drive (its
//   frames are dropped by the SFU as `estop_latched`), and the Rust robot agent does not move;
//   once the driver clears the e-stop the same keys do move it (so the test can fail);
// - Space presses the e-stop wherever the focus is in the consult view, "Leave" included, but
//   not in a text field.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.js';
import { startAgent } from '../lib/agent.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, text, unexpectedPageProblems,
} from '../lib/browser.js';

/**
 * A page's old session's DELETE that reaches the restarted process (which does not know it), or
 * loses the race against the SFU's own close, gets 404, as documented; so does its ICE restart
 * (PATCH) when the restarted process is up before the page gives the old session up.
 */
const OLD_SESSION = /: HTTP 404 (DELETE|PATCH) \/sessions\/[^/]+$/;
const DROPPED = 'bedside_control_frames_dropped_total';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{robotId: string, credential: string, bookingId: string}} */
let ids;
/** @type {Record<string, import('playwright-core').Page>} */
const pages = {};
/** @type {import('../lib/agent.js').Agent|null} */
let agent = null;

before(async () => {
  server = await startServer();
  const world = await seed(server, {
    users: { dana: ['Dr Dana Okafor', 'doctor'], chen: ['Dr Chen Wei', 'doctor'] },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', ''] },
    bookings: { now: { robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 60, consultants: ['chen'] } },
  });
  ids = { robotId: world.robots.r1.id, credential: world.robots.r1.credential, bookingId: world.bookings.now.id };
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems([OLD_SESSION]);
  if (agent) await agent.stop();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/**
 * A value of the consult view's live objects (`window.__bedside`), by a dotted path.
 * @param {import('playwright-core').Page} page
 * @param {string} path e.g. `session.live`
 * @returns {Promise<any>}
 */
function bedside(page, path) {
  return page.evaluate((p) => {
    /** @type {any} */
    let v = /** @type {any} */ (window).__bedside;
    for (const k of p.split('.')) v = v == null ? null : v[k];
    return v;
  }, path).catch(() => null);
}

/** @param {import('playwright-core').Page} page */
const connected = async (page) => (await bedside(page, 'session.state')) === 'connected' && (await bedside(page, 'session.live')) !== false;

/** The robot page, from a fragment link with a publish token. */
async function startRobotPage() {
  if (pages.robot) await pages.robot.context().close();
  const robot = await newPage(browser, { name: 'robot' });
  pages.robot = robot;
  const t = await server.publishToken(ids.robotId, ids.credential);
  await robot.goto(`${server.base}/robot#room=${ids.robotId}&token=${encodeURIComponent(t.token)}`);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  return robot;
}

/**
 * A consult page for `username`, logged in on the way, in the room.
 * @param {string} name page name
 * @param {string} username
 */
async function openConsult(name, username) {
  if (pages[name]) await pages[name].context().close();
  const page = await newPage(browser, { name });
  pages[name] = page;
  await login(page, server.base, username, { path: `/#/consult/${ids.bookingId}` });
  await until(`${name} is in the room`, () => connected(page), 30_000);
  return page;
}

/** @param {import('playwright-core').Page} page */
async function takeControl(page) {
  await until('the page may take control', async () => !(await page.locator('#request-control').isDisabled()), 30_000);
  await page.click('#request-control');
  await page.waitForSelector('#drive-status[data-state="you"]', { timeout: 15_000 });
  // The pressed button is gone; focus is on the next sensible control, not the page's body.
  await until('focus moves to "Release control"', () => page.evaluate(() => document.activeElement?.id === 'release-control'), 5000);
}

/** The room is latched as the page knows it from the server. @param {import('playwright-core').Page} page */
const latched = async (page) => (await bedside(page, 'room.estop')) === true;

/** Clear the room's e-stop from `page`, taking control first if needed. @param {import('playwright-core').Page} page */
async function clearEstop(page) {
  if (!(await latched(page))) return;
  if ((await page.getAttribute('#drive-status', 'data-state')) !== 'you') await takeControl(page);
  await page.click('#estop-clear');
  await until('the e-stop is clear', async () => !(await latched(page)));
}

browserTest('server killed mid-consult: the loss shows within 1.5 s, an e-stop pressed then is not delivered, then latched after the reconnect', {
  timeout: 180_000, allow: [OLD_SESSION],
}, async () => {
  const robot = await startRobotPage();
  const doctor = await openConsult('doctor', 'dana');
  await clearEstop(doctor);
  await takeControl(doctor);
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === (await bedside(doctor, 'session.participantId')));
  // The heartbeat is answered: pongs give a round trip.
  await until('a pong came back', async () => typeof (await bedside(doctor, 'session.rttMs')) === 'number');

  const killedAt = Date.now();
  await server.kill('SIGKILL');
  await doctor.waitForSelector('#state-banner[data-state="lost"], #state-banner[data-state="reconnecting"]', { timeout: 10_000 });
  const shownAt = /** @type {number} */ (await bedside(doctor, 'lossShownAt'));
  assert.ok(shownAt >= killedAt, 'the loss is shown after the kill');
  const after = shownAt - killedAt;
  diagnostic(`loss shown ${after} ms after the kill`);
  assert.ok(after <= 1500, `the page showed the loss ${after} ms after the server died (at most 1500)`);
  assert.match(await text(doctor, '#state-banner'), /Connection lost — the robot has stopped by itself/);
  // Nobody drives when nothing reaches the robot, and the page says so, with why control went.
  await doctor.waitForSelector('#drive-status[data-state="lost"]');
  assert.equal(await doctor.getAttribute('#joystick', 'aria-disabled'), 'true');
  await doctor.waitForSelector('#control-notice:visible');
  assert.match(await text(doctor, '#control-notice'), /You lost control at \d\d:\d\d:\d\d: the connection to the server was lost/);

  // The e-stop pressed now cannot arrive: it says so, not "latched".
  await doctor.click('#estop');
  await doctor.waitForSelector('#estop[data-delivery="undelivered"]');
  assert.equal(await text(doctor, '#estop'), 'E-STOP NOT DELIVERED');
  assert.match(await text(doctor, '#estop-status'), /^Not delivered: the connection is lost\./);
  assert.match(await text(doctor, '#state-banner'), /Your E-STOP was not delivered/);
  assert.equal(await latched(doctor), false, 'the page does not claim a latch the room never got');

  await server.start(); // same data dir and ports
  await until('the doctor is back in the room', () => connected(doctor), 60_000);
  await until('the robot page is back', async () => (await robot.getAttribute('#conn-state', 'data-state')) === 'connected', 60_000);
  // Delivered on the new connection: the room (and so the robot) is latched.
  await doctor.waitForSelector('#estop[data-delivery="latched"]', { timeout: 15_000 });
  assert.equal(await latched(doctor), true);
  await doctor.waitForSelector('#state-banner[data-state="estop"]');
  await until('the robot page latches', async () => (await robot.getAttribute('#estop-state', 'data-latched')) === 'true', 15_000);
  // Control is not silently gone: the page still says when and why it went.
  assert.equal(await doctor.getAttribute('#drive-status', 'data-state'), 'nobody');
  assert.match(await text(doctor, '#control-notice'), /You lost control at .*Take control again to drive\./);
  await clearEstop(doctor);
  assert.ok(await doctor.locator('#control-notice').isHidden(), 'taking control again ends the notice');
});

browserTest('restarted with the e-stop latched: latched for everyone, a fresh page cannot drive, the robot agent does not move', {
  timeout: 240_000, allow: [OLD_SESSION],
}, async () => {
  // The Rust agent is the robot this time (one robot per room: the page leaves first).
  if (pages.robot) {
    await pages.robot.context().close();
    delete pages.robot;
  }
  const robotAgent = startAgent(server.base, ids, { log: 'warn' });
  agent = robotAgent;
  const doctor = pages.doctor && (await connected(pages.doctor)) ? pages.doctor : await openConsult('doctor', 'dana');
  const consultant = await openConsult('consultant', 'chen');
  const robotIn = async (/** @type {import('playwright-core').Page} */ p) => ((await bedside(p, 'room.participants')) || []).some((/** @type {any} */ x) => x.role === 'robot');
  await until('the agent is in the room', () => robotIn(doctor), 30_000);

  // Latch it (by the consultant: nobody needs to drive to stop the robot).
  await clearEstop(doctor);
  await consultant.click('#estop');
  await until('the room latches', () => latched(doctor));
  await robotAgent.waitFor('the agent latches', (c) => c.some((l) => l.reason === 'estop'));
  // The wording: who can clear it, and no green "Driving" while latched.
  assert.match(await text(consultant, '#state-banner'), /E-STOP LATCHED .*Dr Dana Okafor.*clear it/);

  const generation = await bedside(doctor, 'session.generation');
  await server.kill();
  await server.start();
  const restartedAt = Date.now();
  await until('the old page is back in the room, on a new connection', async () => (await connected(doctor)) && (await bedside(doctor, 'session.generation')) > generation, 60_000);
  // The old page shows the server's state: latched.
  await until('the old page is latched again, by the server', () => latched(doctor), 15_000);
  await doctor.waitForSelector('#state-banner[data-state="estop"]');

  // A fresh page for the same booking: latched, takes control, cannot drive.
  await doctor.context().close();
  delete pages.doctor;
  const fresh = await openConsult('fresh', 'dana');
  await until('the fresh page is latched', () => latched(fresh), 15_000);
  await fresh.waitForSelector('#state-banner[data-state="estop"]');
  // The agent notices the lost server by its own ICE timeout and comes back.
  await until('the agent is back in the room', () => robotIn(fresh), 90_000);
  await takeControl(fresh);
  assert.equal(await text(fresh, '#drive-status .badge'), 'Stopped', 'no green "Driving" while latched');
  assert.equal(await fresh.getAttribute('#joystick', 'aria-disabled'), 'true');
  await fresh.locator('#joystick').focus();
  await fresh.keyboard.down('KeyW');
  await sleep(1000);
  await fresh.keyboard.up('KeyW');
  // Frames written on the control channel anyway are dropped by the SFU.
  const before = await server.metric(DROPPED, { reason: 'estop_latched' });
  await until('the SFU drops the fresh page\'s frames as estop_latched', async () => {
    await fresh.evaluate(() => /** @type {any} */ (window).__bedside.drive.sendAxes(16384, 0, 0));
    return (await server.metric(DROPPED, { reason: 'estop_latched' })) - before >= 3;
  });
  const moved = robotAgent.commands.filter((l) => l.at >= restartedAt && (l.linear_x || l.linear_y || l.angular_z));
  assert.deepEqual(moved, [], 'the agent did not move after the restart');

  // The same keys move it once the driver clears the e-stop: the test sees motion when it happens.
  await fresh.click('#estop-clear');
  await until('the e-stop is clear', async () => !(await latched(fresh)));
  await until('focus moves to the e-stop', () => fresh.evaluate(() => document.activeElement?.id === 'estop'), 5000);
  await fresh.waitForSelector('#drive-status .badge.driving');
  await fresh.locator('#joystick').focus();
  await fresh.keyboard.down('KeyW');
  try {
    await robotAgent.waitFor('the agent drives forward at half speed', (c) => c.some((l) => l.at >= restartedAt && l.linear_x === 16384), { timeoutMs: 15_000 });
  } finally {
    await fresh.keyboard.up('KeyW');
    diagnostic((await (await fetch(`${server.base}/metrics`)).text()).split('\n').filter((l) => l.startsWith('bedside_control')).join(' | '));
    diagnostic(`agent's last commands: ${JSON.stringify(robotAgent.commands.slice(-8))}; the page sent ${await bedside(fresh, 'drive.sent')} frames`);
  }
});

browserTest('Space presses the e-stop wherever the focus is, never "Leave"; not in a text field', {
  timeout: 120_000, allow: [OLD_SESSION],
}, async () => {
  const page = pages.fresh && (await connected(pages.fresh)) ? pages.fresh : await openConsult('fresh', 'dana');
  await clearEstop(page);
  await page.locator('#leave').focus();
  await page.keyboard.press('Space');
  await until('Space latched the e-stop', () => latched(page), 10_000);
  assert.match(page.url(), /#\/consult\//, 'still in the consult view: Space did not press "Leave"');
  await clearEstop(page);
  // Typing a space into a form field is typing. (The hand-off list is a select: Space opens it.)
  await page.evaluate(() => {
    const i = document.createElement('input');
    i.id = 'typing-test';
    document.body.append(i);
  });
  await page.locator('#typing-test').focus();
  await page.keyboard.press('Space');
  await sleep(500);
  assert.equal(await latched(page), false, 'Space in a text field does not latch');
  await page.evaluate(() => document.getElementById('typing-test')?.remove());
});

/** @param {string} s */
function diagnostic(s) {
  process.stdout.write(`# ${s}\n`);
}
