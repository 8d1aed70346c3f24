// "Start now" in a real browser against the real binary: at a minute that is not a multiple of
// five (the booking form's time field steps by five minutes, so filling in the current minute
// made Chromium refuse the form four times out of five), one click books the robot from the
// server's now; the doctor joins at once, takes control, and a drive frame reaches the robot page.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, text, unexpectedPageProblems,
} from '../lib/browser.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: { dana: ['Dr Dana Okafor', 'doctor'] },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', 'Tablet robot'] },
  });
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/**
 * Wait until the clock's minute is not a multiple of five and at least `spare` ms of it remain.
 * @param {number} spare
 */
async function awkwardMinute(spare) {
  for (;;) {
    const now = new Date();
    const left = 60_000 - (now.getSeconds() * 1000 + now.getMilliseconds());
    if (now.getMinutes() % 5 !== 0 && left >= spare) return now;
    await sleep(Math.min(left + 50, 1000));
  }
}

browserTest('Start now books from the server\'s now in one click, and the doctor drives at once', { timeout: 150_000 }, async (t) => {
  const robotId = world.robots.r1.id;
  const robot = await newPage(browser, { name: 'robot' });
  const pub = await server.publishToken(robotId, world.robots.r1.credential);
  await robot.goto(`${server.base}/robot#room=${robotId}&token=${encodeURIComponent(pub.token)}`);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });

  const doctor = await newPage(browser, { name: 'doctor' });
  await login(doctor, server.base, 'dana');
  await doctor.waitForSelector('#book-now');

  const clicked = await awkwardMinute(15_000);
  t.diagnostic(`clicked Start now at ${clicked.toISOString()} (minute ${clicked.getMinutes()})`);
  await doctor.click('#book-now');
  const item = doctor.locator('#my-bookings li[data-booking-id]');
  await item.first().waitFor({ timeout: 15_000 });
  assert.equal(await text(doctor, '#book-error'), '', 'the form raised no error');

  const [booking] = await world.users.dana.api.call('GET', '/api/bookings?mine=true');
  const starts = Date.parse(booking.starts_at);
  assert.ok(Math.abs(starts - clicked.getTime()) < 10_000, `starts at the click (${booking.starts_at}), not rounded to a step`);
  assert.notEqual(new Date(starts).getUTCMinutes() % 5, 0, 'the start is the awkward minute itself');
  assert.equal(Date.parse(booking.ends_at) - starts, 60 * 60_000, 'the form\'s chosen length (1 h)');

  await doctor.click(`#my-bookings li[data-booking-id="${booking.id}"] button.join`);
  await doctor.waitForSelector('#remote-video');
  await until('the take-control button is ready', async () => (await text(doctor, '#request-control')) === 'Take control' && !(await doctor.isDisabled('#request-control')), 30_000);
  await doctor.click('#request-control');
  await doctor.waitForSelector('#drive-status[data-state="you"]', { timeout: 20_000 });

  await doctor.click('#remote-video'); // focus the page, not a form field
  await doctor.keyboard.down('KeyW');
  try {
    await until('a drive frame reaches the robot', async () => {
      const x = Number(await robot.getAttribute('#drive-x', 'data-value'));
      return x > 0 && (await text(robot, '#drive-reason')) === 'frame';
    }, 30_000);
  } finally {
    await doctor.keyboard.up('KeyW');
  }
  assert.match(await text(robot, '#drive-log'), /frame\s+x=16384/, 'the robot page logged the command');
});
