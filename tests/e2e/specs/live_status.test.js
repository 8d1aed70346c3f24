// Live status in real browsers against the real binary: a robot page starts and the doctor's
// home page shows the robot Online with its battery; the doctor joins a consult; an admin opens
// Live rooms, sees the doctor by name, ends their session (through the confirmation dialog, by
// keyboard) and the doctor's page says an administrator ended it; the robot page goes away and
// the home page shows the robot Offline. The Live rooms page passes axe-core (WCAG 2.2 AA).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, text, unexpectedPageProblems, screenshot, layoutProblems, watchPage,
} from '../lib/browser.js';
import { expectAccessible } from '../lib/axe.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: {
      dana: ['Dr Dana Okafor', 'doctor'],
      ada: ['Ada Admin', 'admin'],
    },
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

browserTest('a robot shows online with its battery, an admin ends a doctor\'s session, the robot goes offline', { timeout: 180_000 }, async (t) => {
  const robotId = world.robots.r1.id;
  const badge = `[data-live-robot="${robotId}"]`;

  const doctor = await newPage(browser, { name: 'doctor' });
  await login(doctor, server.base, 'dana');
  await doctor.waitForSelector(`${badge} [data-state="offline"]`, { timeout: 15_000 });
  assert.match(await text(doctor, badge), /Offline/);

  const robot = await newPage(browser, { name: 'robot' });
  const pub = await server.publishToken(robotId, world.robots.r1.credential);
  await robot.goto(`${server.base}/robot#room=${robotId}&token=${encodeURIComponent(pub.token)}`);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  const online = Date.now();

  // The home page polls: Online, with the battery the robot page reports.
  await doctor.waitForSelector(`${badge} [data-state="online"]`, { timeout: 15_000 });
  const battery = await until('the battery on the home page', async () => doctor.getAttribute(`${badge} [data-battery]`, 'data-battery').catch(() => null), 15_000);
  t.diagnostic(`online with battery ${battery} shown ${Date.now() - online} ms after the robot connected`);
  assert.match(battery, /^\d{1,3}%$/);
  const words = await text(doctor, badge);
  assert.match(words, /Online/);
  assert.match(words, new RegExp(`Battery ${battery}`));
  // Said in words to whoever tabs to the robot's button.
  const described = await doctor.getAttribute(`[data-robot-id="${robotId}"]`, 'aria-describedby');
  assert.equal(described, `live-${robotId}`);

  // The doctor books from now and joins.
  await doctor.click('#book-now');
  const item = doctor.locator('#my-bookings li[data-booking-id] button.join');
  await item.first().waitFor({ timeout: 15_000 });
  await item.first().click();
  await doctor.waitForSelector('#remote-video');
  await doctor.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });

  // The admin's Live rooms page lists the doctor by name.
  // axe-core is injected as a script tag, which the page's Content-Security-Policy refuses:
  // this page's context bypasses the CSP (the others keep it).
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 720 }, timezoneId: 'UTC', locale: 'en-GB', bypassCSP: true });
  const admin = watchPage(await adminContext.newPage(), 'admin');
  await login(admin, server.base, 'ada');
  await admin.click('#nav-live');
  await admin.waitForSelector('#live-title');
  const row = admin.locator(`article[data-room="${robotId}"] tr[data-sub="${world.users.dana.id}"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.innerText(), /Dr Dana Okafor/);
  assert.match(await row.innerText(), /Doctor/);
  assert.match(await text(admin, `article[data-room="${robotId}"] .live-badge`), /Online/);
  await expectAccessible(admin, 'the Live rooms page');
  assert.deepEqual(await layoutProblems(admin, [`article[data-room="${robotId}"] button`]), []);
  await screenshot(admin, 'admin-live', { fullPage: true });

  // End the doctor's session by keyboard: the button, then the dialog (Cancel has the focus).
  const session = await row.getAttribute('data-session');
  const end = admin.locator(`#end-${robotId}-${session}`);
  assert.equal(await end.getAttribute('aria-label'), 'End session of Dr Dana Okafor in Rounds-1');
  await end.focus();
  await admin.keyboard.press('Enter');
  await admin.waitForSelector('dialog.confirm[open]');
  assert.equal(await admin.evaluate(() => document.activeElement && document.activeElement.id), 'confirm-no');
  await expectAccessible(admin, 'the end-session confirmation dialog');
  await admin.keyboard.press('Tab');
  assert.equal(await admin.evaluate(() => document.activeElement && document.activeElement.id), 'confirm-yes');
  const asked = Date.now();
  await admin.keyboard.press('Enter');

  await until('the doctor is told', async () => /administrator ended your session/.test(await text(doctor, '#state-banner')), 10_000);
  t.diagnostic(`the doctor was told ${Date.now() - asked} ms after the click`);
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  t.diagnostic(`gone from Live rooms ${Date.now() - asked} ms after the click`);
  const audit = await world.users.ada.api.call('GET', '/api/audit?kind=room.session_ended_by_admin');
  assert.equal(audit.entries.length, 1, JSON.stringify(audit));

  // The robot page goes away: offline on the doctor's home page and out of Live rooms.
  await doctor.evaluate(() => { location.hash = '#/'; });
  await doctor.waitForSelector(`${badge} [data-state="online"]`, { timeout: 15_000 });
  await robot.goto('about:blank');
  const left = Date.now();
  await doctor.waitForSelector(`${badge} [data-state="offline"]`, { timeout: 20_000 });
  t.diagnostic(`offline on the home page ${Date.now() - left} ms after the robot page left`);
  assert.doesNotMatch(await text(doctor, badge), /Battery/);
  await admin.waitForSelector('#no-live-rooms', { timeout: 15_000 });
});
