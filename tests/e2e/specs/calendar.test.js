// Login, robots and the booking calendar in a real browser against the real binary: a doctor
// logs in (after a wrong password), books a slot, hits a conflict, invites a consultant and an
// observer, cancels a booking; a student sees the booking they are invited to and cannot book.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, iso, ADMIN_USERNAME, ADMIN_PASSWORD } from '../lib/server.js';
import { launch, newPage, until, screenshot, text } from '../lib/browser.js';

const PASSWORD = 'correct-horse-battery';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Record<string, any>} */
const seed = {};
/** @type {Awaited<ReturnType<typeof newPage>>[]} */
const pages = [];

/** Tomorrow at hh:mm UTC (the browser runs in UTC too). */
function tomorrowAt(hh, mm) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + 1);
  d.setUTCHours(hh, mm, 0, 0);
  return d;
}

before(async () => {
  server = await startServer();
  const admin = await server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
  seed.ana = await admin.createUser('ana', 'Dr Ana Lima', 'doctor', PASSWORD);
  seed.ben = await admin.createUser('ben', 'Dr Ben Adler', 'doctor', PASSWORD);
  seed.sam = await admin.createUser('sam', 'Sam Student', 'student', PASSWORD);
  seed.r1 = (await admin.createRobot('Rounds-1', 'Cardiology 3B', 'Tablet robot')).robot;
  seed.r2 = (await admin.createRobot('Rounds-2', 'ICU', 'Wheeled robot with zoom camera')).robot;
  // Someone else's booking that Ana's will collide with.
  const ben = await server.login('ben', PASSWORD);
  const t = tomorrowAt(10, 0).getTime();
  seed.benBooking = await ben.call('POST', '/api/bookings', { robot_id: seed.r1.id, starts_at: iso(t), ends_at: iso(t + 3600_000) });
  browser = await launch();
});

after(async () => {
  // Expected: the wrong password (401) and the conflicting booking (409).
  const errors = pages.flatMap((p) => p.errors).filter((e) => !/HTTP (401 POST \/api\/auth\/login|409 POST \/api\/bookings)$/.test(e));
  if (errors.length) console.log(`browser errors:\n${errors.join('\n')}`);
  if (browser) await browser.close();
  if (server) await server.stop();
});

/**
 * @param {import('playwright-core').Page} page
 * @param {string} username
 * @param {string} password
 */
async function login(page, username, password) {
  await page.goto(`${server.base}/`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-submit');
}

test('a doctor books, hits a conflict, invites and cancels through the calendar', { timeout: 90_000 }, async () => {
  const page = await newPage(browser, { name: 'ana' });
  pages.push(page);

  await login(page, 'ana', 'not-the-password');
  await until('a wrong password is explained', async () => (await text(page, '#login-error')).includes('wrong password'));
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForSelector('#robots li');
  assert.match(await text(page, '#whoami'), /Dr Ana Lima/);
  assert.equal(await page.locator('#robots li').count(), 2);
  assert.match(await text(page, '#robots'), /Rounds-2.*ICU/s);

  // Overlaps Ben's 10:00-11:00: refused, with the reason in words.
  const conflict = tomorrowAt(10, 30);
  await page.fill('#book-date', conflict.toISOString().slice(0, 10));
  await page.fill('#book-time', '10:30');
  await page.selectOption('#book-duration', '60');
  await page.click('#book-submit');
  await until('the conflict is explained', async () => (await text(page, '#book-error')).includes('overlaps another booking'));
  // Ben's booking shows as anonymous busy time.
  await page.waitForSelector('.cal-event.busy');

  // 13:00-14:00 works.
  await page.fill('#book-time', '13:00');
  await page.fill('#book-note', 'Ward round, bed 4');
  await page.click('#book-submit');
  const event = page.locator('.cal-event:not(.busy)').first();
  await event.waitFor();
  const bookingId = await event.getAttribute('data-booking-id');
  assert.ok(bookingId);
  assert.equal(await text(page, '#book-error'), '');
  await page.waitForSelector('#booking-details #invite-consultant');
  assert.match(await text(page, '#details-when'), /13:00.*14:00/);

  // Invite a consultant and an observer.
  await page.selectOption('#invite-consultant', { label: 'Dr Ben Adler' });
  await page.click('#invite-consultant-submit');
  await until('the consultant is listed', async () => (await text(page, '#invitees')).includes('Dr Ben Adler'));
  await page.selectOption('#invite-observer', { label: 'Sam Student' });
  await page.click('#invite-observer-submit');
  await until('the observer is listed', async () => (await text(page, '#invitees')).includes('Sam Student'));

  const ana = await server.login('ana', PASSWORD);
  const booking = await ana.call('GET', `/api/bookings/${bookingId}`);
  assert.equal(booking.starts_at, iso(tomorrowAt(13, 0).getTime()));
  assert.equal(booking.ends_at, iso(tomorrowAt(14, 0).getTime()));
  assert.equal(booking.note, 'Ward round, bed 4');
  assert.deepEqual(booking.invitations.map((/** @type {any} */ i) => [i.user_id, i.role]).sort(), [
    [seed.ben.id, 'consultant'], [seed.sam.id, 'observer'],
  ].sort());
  // It is in "Your bookings", not yet joinable.
  await until('listed under your bookings', async () => (await page.locator(`#my-bookings li[data-booking-id="${bookingId}"]`).count()) === 1);
  assert.match(await text(page, `#my-bookings li[data-booking-id="${bookingId}"]`), /opens /);
  await screenshot(page, 'calendar', { fullPage: true });

  // A second booking, cancelled again.
  await page.fill('#book-time', '15:00');
  await page.fill('#book-note', '');
  await page.selectOption('#book-duration', '30');
  await page.click('#book-submit');
  await until('the second booking is selected', async () => (await text(page, '#details-when')).includes('15:00'));
  const secondId = await page.locator('.cal-event.selected').getAttribute('data-booking-id');
  await page.click("#cancel-booking");
  await page.click('#cancel-confirm');
  await until('shown as cancelled', async () => (await text(page, '#details-status')) === 'cancelled');
  assert.equal((await ana.call('GET', `/api/bookings/${secondId}`)).status, 'cancelled');
  // The slot is free again: booking it once more works.
  await page.click('#book-submit');
  await until('rebooked', async () => (await page.locator('.cal-event:not(.busy):not(.cancelled)').count()) === 2);
  seed.bookingId = bookingId;
});

test('a student sees the booking they are invited to and cannot book', { timeout: 60_000 }, async () => {
  const page = await newPage(browser, { name: 'sam' });
  pages.push(page);
  await login(page, 'sam', PASSWORD);
  const item = page.locator(`#my-bookings li[data-booking-id="${seed.bookingId}"]`);
  await item.waitFor();
  assert.match(await item.textContent() || '', /observer/i);
  assert.equal(await page.locator('#booking-form').count(), 0, 'no booking form for students');
  await page.locator(`.cal-event[data-booking-id="${seed.bookingId}"]`).click();
  await page.waitForSelector('#details-when');
  assert.equal(await page.locator('#cancel-booking').count(), 0, 'students cannot cancel');
  assert.equal(await page.locator('#invite-consultant').count(), 0, 'students cannot invite');
  // Logging out returns to the login page.
  await page.click('#logout');
  await page.waitForSelector('#username');
});

test('the calendar is usable on a phone', { timeout: 30_000 }, async () => {
  const page = await newPage(browser, { name: 'ana-phone', width: 390, height: 844 });
  pages.push(page);
  await login(page, 'ana', PASSWORD);
  await page.waitForSelector('#robots li');
  await page.waitForSelector('#my-bookings li[data-booking-id]');
  await screenshot(page, 'calendar-phone');
});
