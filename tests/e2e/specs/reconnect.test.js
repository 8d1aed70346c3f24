// The states a doctor sees when things go wrong, with the real binary: the robot is offline until
// its page starts; when the server goes away both pages say they are reconnecting and come back
// by themselves (with back-off) once it is up again, with video flowing again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, iso, ADMIN_USERNAME, ADMIN_PASSWORD } from '../lib/server.js';
import { launch, newPage, until, expectDecoding, videoState } from '../lib/browser.js';

const PASSWORD = 'correct-horse-battery';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{robotId: string, credential: string, bookingId: string}} */
let seed;
/** @type {Record<string, Awaited<ReturnType<typeof newPage>>>} */
const pages = {};

before(async () => {
  server = await startServer();
  const admin = await server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
  await admin.createUser('dana', 'Dr Dana Okafor', 'doctor', PASSWORD);
  const { robot, credential } = await admin.createRobot('Rounds-1', 'Cardiology 3B', '');
  const dana = await server.login('dana', PASSWORD);
  const now = Date.now();
  const booking = await dana.call('POST', '/api/bookings', {
    robot_id: robot.id, starts_at: iso(now - 30_000), ends_at: iso(now + 30 * 60_000),
  });
  seed = { robotId: robot.id, credential, bookingId: booking.id };
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the doctor sees "robot offline" until the robot page starts', { timeout: 60_000 }, async () => {
  const doctor = await newPage(browser, { name: 'doctor' });
  pages.doctor = doctor;
  await doctor.goto(`${server.base}/#/consult/${seed.bookingId}`);
  await doctor.fill('#username', 'dana');
  await doctor.fill('#password', PASSWORD);
  await doctor.click('#login-submit');
  // The link to the consult view survives the login.
  await doctor.waitForSelector('#state-banner[data-state="robot-offline"]', { timeout: 30_000 });
  assert.match(await doctor.locator('#state-banner').textContent() || '', /Robot offline/);
  assert.match(await doctor.locator('#countdown').textContent() || '', /Booking ends in (29|30) min/);

  const robot = await newPage(browser, { name: 'robot' });
  pages.robot = robot;
  // The other way to start a robot page: a publish token in the URL.
  const t = await (await fetch(`${server.base}/api/robots/${seed.robotId}/publish-token`, {
    method: 'POST', headers: { Authorization: `Robot ${seed.credential}` },
  })).json();
  await robot.goto(`${server.base}/robot?room=${seed.robotId}&token=${encodeURIComponent(t.token)}`);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  assert.ok(!robot.url().includes('token='), 'the token is taken out of the address bar');
  await expectDecoding(doctor, 'doctor');
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached' });
});

test('both pages reconnect by themselves after the server restarts', { timeout: 120_000 }, async () => {
  const { doctor, robot } = pages;
  await server.kill();
  await doctor.waitForSelector('#state-banner[data-state="reconnecting"]', { timeout: 30_000 });
  await robot.waitForSelector('#conn-state[data-state="reconnecting"]', { timeout: 30_000 });
  assert.match(await doctor.locator('#conn-state').textContent() || '', /Reconnecting/);

  await server.start(); // same data dir and ports: same users, keys and bookings
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 60_000 });
  await doctor.waitForSelector('#conn-state', { timeout: 1000 });
  await until('the doctor is connected again', async () => (await doctor.evaluate(() => /** @type {any} */ (window).__bedside.session.state)) === 'connected', 60_000);
  const generation = await doctor.evaluate(() => /** @type {any} */ (window).__bedside.session.generation);
  assert.ok(generation >= 2, `a new connection was made (generation ${generation})`);
  const s = await expectDecoding(doctor, 'doctor after the restart');
  assert.ok(s.width > 2);
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached', timeout: 30_000 });
  // Control works on the new connection.
  await doctor.click('#request-control');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  assert.ok((await videoState(doctor)).framesDecoded > 0);
});
