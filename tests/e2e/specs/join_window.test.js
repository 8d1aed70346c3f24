// Opening a consult before its join window (5 minutes before the start) is not a dead end
// (issue 17): the page shows when joining opens, in local time, with a countdown, and joins by
// itself when the window opens, without a reload or a click.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import { launch, newPage, browserTest, login, until, text, unexpectedPageProblems } from '../lib/browser.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {{bookingId: string, opensAt: number}} */
let ids;

before(async () => {
  server = await startServer();
  // Starts in 5 min 25 s: joining opens in about 25 s.
  const from = Math.ceil((Date.now() + 5 * 60_000 + 25_000) / 1000) * 1000;
  const world = await seed(server, {
    users: { dana: ['Dr Dana Okafor', 'doctor'] },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', ''] },
    bookings: { soon: { robot: 'r1', doctor: 'dana', from, minutes: 30 } },
  });
  ids = { bookingId: world.bookings.soon.id, opensAt: from - 5 * 60_000 };
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

browserTest('opened before the join window: local time, a countdown, then it joins by itself', { timeout: 120_000 }, async () => {
  const page = await newPage(browser, { name: 'doctor' });
  await login(page, server.base, 'dana', { path: `/#/consult/${ids.bookingId}` });
  await page.waitForSelector('#state-banner[data-state="waiting"]', { timeout: 15_000 });
  const shown = await text(page, '#state-banner');
  // The browser runs in UTC with an en-GB locale (lib/browser.js): local time is HH:MM.
  const hhmm = new Date(ids.opensAt).toISOString().slice(11, 16);
  assert.match(shown, new RegExp(`^Joining opens at ${hhmm} \\(in \\d+ s\\): this page joins by itself then\\.$`));
  assert.doesNotMatch(shown, /T\d\d:\d\d:\d\d/, 'no raw timestamps');
  // The countdown counts.
  const seconds = async () => Number((/\(in (\d+) s\)/.exec(await text(page, '#state-banner')) || [])[1]);
  const first = await seconds();
  await until('the countdown goes down', async () => (await seconds()) < first, 10_000);
  // ... and the page joins by itself once the window opens.
  await until('the page joined by itself', () => page.evaluate(() => /** @type {any} */ (window).__bedside.session.state === 'connected'), 90_000);
  assert.ok(Date.now() >= ids.opensAt, 'not before the window opened');
  await page.waitForSelector('#state-banner[data-state="robot-offline"]', { timeout: 15_000 });
});
