// The states a doctor sees when things go wrong, with the real binary: the robot is offline until
// its page starts; when the server goes away both pages say they are reconnecting and come back
// by themselves (with back-off) once it is up again, with video flowing again.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, expectDecoding, videoState, text, unexpectedPageProblems,
} from '../lib/browser.js';

/**
 * A page whose old session's DELETE reaches the restarted process (it does not know the session)
 * or loses the race against the SFU's own close gets 404, as documented. Whether it happens
 * depends on timing; most runs see none. The same for an ICE restart (PATCH) of the old session
 * that reaches the restarted process: the page then rejoins.
 */
const OLD_SESSION = /^(doctor|robot): HTTP 404 (DELETE|PATCH) \/sessions\/[^/]+$/;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{robotId: string, credential: string, bookingId: string, endsAt: number}} */
let ids;
/** @type {Record<string, import('playwright-core').Page>} */
const pages = {};

before(async () => {
  server = await startServer();
  const world = await seed(server, {
    users: { dana: ['Dr Dana Okafor', 'doctor'] },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', ''] },
    bookings: { now: { robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 30 } },
  });
  const booking = world.bookings.now;
  ids = { robotId: world.robots.r1.id, credential: world.robots.r1.credential, bookingId: booking.id, endsAt: Date.parse(booking.ends_at) };
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems([OLD_SESSION]);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/** @param {import('playwright-core').Page} page */
function sessionState(page) {
  return page.evaluate(() => {
    const b = /** @type {any} */ (window).__bedside;
    return b && b.session ? /** @type {string} */ (b.session.state) : null;
  }).catch(() => null);
}

/** The robot page, started the other way: a publish token in the link's fragment. */
async function startRobot() {
  const robot = await newPage(browser, { name: 'robot' });
  pages.robot = robot;
  const t = await server.publishToken(ids.robotId, ids.credential);
  await robot.goto(`${server.base}/robot#room=${ids.robotId}&token=${encodeURIComponent(t.token)}`);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  return robot;
}

/** The doctor's consult view, opened by link and logged in on the way. */
async function openConsult() {
  const doctor = await newPage(browser, { name: 'doctor' });
  pages.doctor = doctor;
  await login(doctor, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
  await until('the doctor is in the room', async () => (await sessionState(doctor)) === 'connected', 30_000);
  return doctor;
}

browserTest('the doctor sees "robot offline" until the robot page starts', { timeout: 60_000 }, async () => {
  const doctor = await openConsult();
  // The link to the consult view survived the login.
  await doctor.waitForSelector('#state-banner[data-state="robot-offline"]', { timeout: 30_000 });
  assert.match(await text(doctor, '#state-banner'), /Robot offline/);
  // The countdown: whole minutes left, rounded up, as of its last refresh (at most 10 s ago).
  const minutesLeft = (/** @type {number} */ t) => Math.ceil((ids.endsAt - t) / 60_000);
  const readAt = Date.now();
  const shown = /^Booking ends in (\d+) min$/.exec(await text(doctor, '#countdown'));
  assert.ok(shown, `the countdown shows minutes (${await text(doctor, '#countdown')})`);
  const n = Number(shown[1]);
  assert.ok(n >= minutesLeft(Date.now()) && n <= minutesLeft(readAt - 11_000),
    `${n} min left, for a booking ending at ${new Date(ids.endsAt).toISOString()}`);

  const robot = await startRobot();
  assert.ok(!robot.url().includes('token='), 'the token is taken out of the address bar');
  await expectDecoding(doctor, 'doctor');
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached' });
});

browserTest('both pages reconnect by themselves after the server restarts', { timeout: 120_000, allow: [OLD_SESSION] }, async () => {
  const doctor = pages.doctor && (await sessionState(pages.doctor)) === 'connected' ? pages.doctor : await openConsult();
  const robot = pages.robot && (await sessionState(pages.robot)) === 'connected' ? pages.robot : await startRobot();
  await expectDecoding(doctor, 'doctor before the restart');
  const generationBefore = await doctor.evaluate(() => /** @type {number} */ (/** @type {any} */ (window).__bedside.session.generation));

  await server.kill();
  await doctor.waitForSelector('#state-banner[data-state="reconnecting"]', { timeout: 30_000 });
  await robot.waitForSelector('#conn-state[data-state="reconnecting"]', { timeout: 30_000 });
  assert.match(await text(doctor, '#conn-state'), /Reconnecting/);

  await server.start(); // same data dir and ports: same users, keys and bookings
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 60_000 });
  await until('the doctor is connected again', async () => (await sessionState(doctor)) === 'connected', 60_000);
  assert.equal(await text(doctor, '#conn-state'), 'Connected');
  const generation = await doctor.evaluate(() => /** @type {number} */ (/** @type {any} */ (window).__bedside.session.generation));
  assert.ok(generation > generationBefore, `a new connection was made (generation ${generationBefore} -> ${generation})`);
  const s = await expectDecoding(doctor, 'doctor after the restart');
  assert.ok(s.width > 2);
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached', timeout: 30_000 });
  // Control works on the new connection, and the robot sees it.
  await doctor.click('#request-control');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  const holder = await doctor.evaluate(() => /** @type {string} */ (/** @type {any} */ (window).__bedside.session.participantId));
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  assert.ok((await videoState(doctor)).framesDecoded > 0);
});
