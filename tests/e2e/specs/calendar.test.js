// Login, robots and the booking calendar in a real browser against the real binary: a doctor
// logs in (after a wrong password), books a slot, hits a conflict, invites a consultant and an
// observer, cancels a booking; a student sees the booking they are invited to and can book
// nothing, not even through the API; the calendar works on a phone. In plain words (issue 17):
// times in the browser's own clock (12 or 24 hours, never both), a refused booking explained by
// what to do, and a booking form that names the robot it books and remembers it across a reload.
//
// Each test starts from the seeded data only (not from what an earlier test booked), so one
// failure does not take the others with it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, iso } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, submitLogin, until, screenshot, text, layoutProblems,
  unexpectedPageProblems,
} from '../lib/browser.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;

/**
 * The day every test books on: tomorrow (UTC, like the browsers), computed once, so a run that
 * crosses midnight does not compare two different "tomorrows".
 */
const DAY = (() => {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
})();
/** "2030-01-02", the value of a date input for DAY. */
const DAY_VALUE = new Date(DAY).toISOString().slice(0, 10);

/**
 * DAY at hh:mm UTC, ms since the epoch.
 * @param {number} hh
 * @param {number} mm
 */
const at = (hh, mm) => DAY + (hh * 60 + mm) * 60_000;

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: {
      ana: ['Dr Ana Lima', 'doctor'],
      ben: ['Dr Ben Adler', 'doctor'],
      sam: ['Sam Student', 'student'],
    },
    robots: {
      r1: ['Rounds-1', 'Cardiology 3B', 'Tablet robot'],
      r2: ['Rounds-2', 'ICU', 'Wheeled robot with zoom camera'],
    },
    bookings: {
      // Someone else's booking that Ana's will collide with.
      benTen: { robot: 'r1', doctor: 'ben', from: at(10, 0), minutes: 60 },
      // The one the student is invited to.
      benEight: { robot: 'r1', doctor: 'ben', from: at(8, 0), minutes: 30, observers: ['sam'] },
    },
  });
  browser = await launch();
});

after(async () => {
  // Whatever a page did after the last test's check.
  const left = unexpectedPageProblems();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/**
 * Show the calendar week that contains DAY (tomorrow is next week on a Sunday).
 * @param {import('playwright-core').Page} page
 */
async function showWeekOfDay(page) {
  const column = page.locator(`.cal-day[data-date="${DAY_VALUE}"]`);
  await page.waitForSelector('.cal-day');
  if ((await column.count()) === 0) await page.click('#week-next');
  await column.waitFor();
}

browserTest('a doctor books, hits a conflict, invites and cancels through the calendar', {
  timeout: 90_000,
  // Provoked: the wrong password, and the booking that overlaps Ben's.
  allow: [/^ana: HTTP 401 POST \/api\/auth\/login$/, /^ana: HTTP 409 POST \/api\/bookings$/],
}, async () => {
  const { users } = world;
  const page = await newPage(browser, { name: 'ana' });

  await page.goto(`${server.base}/`);
  await submitLogin(page, 'ana', 'not-the-password');
  await until('a wrong password is explained', async () => (await text(page, '#login-error')).includes('wrong password'));
  await submitLogin(page, 'ana');
  await page.waitForSelector('#robots li');
  assert.match(await text(page, '#whoami'), /Dr Ana Lima/);
  assert.equal(await page.locator('#robots li').count(), 2);
  assert.match(await text(page, '#robots'), /Rounds-2.*ICU/s);

  // Overlaps Ben's 10:00-11:00: refused, with the reason in words.
  await page.fill('#book-date', DAY_VALUE);
  await page.selectOption('#book-time', '10:30');
  await page.selectOption('#book-duration', '60');
  await page.click('#book-submit');
  await until('the conflict is explained', async () => /overlaps another booking \(.*10:00.11:00\)/.test(await text(page, '#book-error')));

  // 13:00-14:00 works.
  await page.selectOption('#book-time', '13:00');
  await page.fill('#book-note', 'Ward round, bed 4');
  await page.click('#book-submit');
  const event = page.locator('.cal-event:not(.busy)').first();
  await event.waitFor();
  const bookingId = await event.getAttribute('data-booking-id');
  assert.ok(bookingId);
  assert.equal(await text(page, '#book-error'), '');
  await page.waitForSelector('#booking-details #invite-consultant');
  assert.match(await text(page, '#details-when'), /13:00.*14:00/);
  // The calendar now shows that day's week: Ben's bookings are anonymous busy time there.
  await until('Ben\'s two bookings show as busy', async () => (await page.locator(`.cal-day[data-date="${DAY_VALUE}"] .cal-event.busy`).count()) === 2);
  assert.doesNotMatch(await text(page, '#calendar'), /Ben/, 'no names on other people\'s bookings');

  // Invite a consultant and an observer.
  await page.selectOption('#invite-consultant', { label: 'Dr Ben Adler' });
  await page.click('#invite-consultant-submit');
  await until('the consultant is listed', async () => (await text(page, '#invitees')).includes('Dr Ben Adler'));
  await page.selectOption('#invite-observer', { label: 'Sam Student' });
  await page.click('#invite-observer-submit');
  await until('the observer is listed', async () => (await text(page, '#invitees')).includes('Sam Student'));

  const booking = await users.ana.api.call('GET', `/api/bookings/${bookingId}`);
  assert.equal(booking.starts_at, iso(at(13, 0)));
  assert.equal(booking.ends_at, iso(at(14, 0)));
  assert.equal(booking.note, 'Ward round, bed 4');
  assert.deepEqual(booking.invitations.map((/** @type {any} */ i) => [i.user_id, i.role]).sort(), [
    [users.ben.id, 'consultant'], [users.sam.id, 'observer'],
  ].sort());
  // It is in "Your bookings", not yet joinable.
  await until('listed under your bookings', async () => (await page.locator(`#my-bookings li[data-booking-id="${bookingId}"]`).count()) === 1);
  assert.match(await text(page, `#my-bookings li[data-booking-id="${bookingId}"]`), /opens /);
  assert.equal(await page.locator(`#my-bookings li[data-booking-id="${bookingId}"] button.join`).count(), 0);
  await screenshot(page, 'calendar', { fullPage: true });

  // A second booking, cancelled again.
  await page.selectOption('#book-time', '15:00');
  await page.fill('#book-note', '');
  await page.selectOption('#book-duration', '30');
  await page.click('#book-submit');
  await until('the second booking is selected', async () => (await text(page, '#details-when')).includes('15:00'));
  const secondId = await page.locator('.cal-event.selected').getAttribute('data-booking-id');
  assert.ok(secondId && secondId !== bookingId);
  await page.click('#cancel-booking');
  await page.click('#cancel-confirm');
  await until('shown as cancelled', async () => (await text(page, '#details-status')) === 'cancelled');
  assert.equal((await users.ana.api.call('GET', `/api/bookings/${secondId}`)).status, 'cancelled');
  // The slot is free again: booking it once more works.
  await page.click('#book-submit');
  await until('rebooked', async () => (await page.locator('.cal-event:not(.busy):not(.cancelled)').count()) === 2);
  const live = (await users.ana.api.call('GET', `/api/bookings?robot_id=${world.robots.r1.id}&mine=true&from=${iso(at(0, 0))}`))
    .filter((/** @type {any} */ b) => b.status === 'confirmed').map((/** @type {any} */ b) => b.starts_at).sort();
  assert.deepEqual(live, [iso(at(13, 0)), iso(at(15, 0))]);
});

browserTest('a student sees the booking they are invited to and can book nothing, not even through the API', {
  timeout: 60_000,
  // Provoked: the booking and the cancellation the student tries through the API.
  allow: [/^sam: HTTP 403 POST \/api\/bookings$/, /^sam: HTTP 403 POST \/api\/bookings\/[^/]+\/cancel$/],
}, async () => {
  const { bookings, robots } = world;
  const page = await newPage(browser, { name: 'sam' });
  await login(page, server.base, 'sam');
  const item = page.locator(`#my-bookings li[data-booking-id="${bookings.benEight.id}"]`);
  await item.waitFor();
  assert.match(await item.textContent() || '', /observer/i);
  assert.equal(await page.locator('#booking-form').count(), 0, 'no booking form for students');
  await showWeekOfDay(page);
  await page.locator(`.cal-event[data-booking-id="${bookings.benEight.id}"]`).click();
  await page.waitForSelector('#details-when');
  assert.equal(await page.locator('#cancel-booking').count(), 0, 'students cannot cancel');
  assert.equal(await page.locator('#invite-consultant').count(), 0, 'students cannot invite');

  // Without the form, the API still has to say no: the student's own access token, from the page.
  const attempt = await page.evaluate(async ({ robotId, startsAt, endsAt, bookingId }) => {
    const auth = JSON.parse(sessionStorage.getItem('bedside.auth') || 'null');
    if (!auth) return { error: 'not logged in' };
    const headers = { Authorization: `Bearer ${auth.accessToken}`, 'Content-Type': 'application/json' };
    const book = await fetch('/api/bookings', {
      method: 'POST', headers, body: JSON.stringify({ robot_id: robotId, starts_at: startsAt, ends_at: endsAt }),
    });
    const cancel = await fetch(`/api/bookings/${bookingId}/cancel`, { method: 'POST', headers });
    return { book: book.status, bookBody: await book.json(), cancel: cancel.status };
  }, { robotId: robots.r2.id, startsAt: iso(at(16, 0)), endsAt: iso(at(17, 0)), bookingId: bookings.benEight.id });
  assert.equal(attempt.book, 403, `a student's booking is refused (${JSON.stringify(attempt)})`);
  assert.equal(attempt.bookBody && attempt.bookBody.error, 'forbidden');
  assert.equal(attempt.cancel, 403, 'a student cannot cancel the booking they observe');
  // And nothing was booked or cancelled.
  const busy = await world.users.ben.api.call('GET', `/api/robots/${robots.r2.id}/busy?from=${iso(at(0, 0))}&to=${iso(at(24, 0))}`);
  assert.deepEqual(busy, [], 'the student\'s booking attempt left no booking behind');
  assert.equal((await world.users.ben.api.call('GET', `/api/bookings/${bookings.benEight.id}`)).status, 'confirmed');

  // Logging out returns to the login page.
  await page.click('#logout');
  await page.waitForSelector('#username');
});

browserTest('the calendar is usable on a phone', { timeout: 60_000 }, async () => {
  const page = await newPage(browser, { name: 'ben-phone', width: 390, height: 844 });
  await login(page, server.base, 'ben');
  await page.waitForSelector('#robots li');
  await page.waitForSelector(`#my-bookings li[data-booking-id="${world.bookings.benTen.id}"]`);
  await showWeekOfDay(page);
  const controls = [
    '#logout', '#my-bookings li', '#robots li button', 'button[aria-label="Next week"]', '#calendar',
    `.cal-event[data-booking-id="${world.bookings.benTen.id}"]`, '#book-date', '#book-time', '#book-duration', '#book-note', '#book-submit',
  ];
  assert.deepEqual(await layoutProblems(page, controls), [], 'nothing sticks out, hides or is too small on a 390 px screen');
  await screenshot(page, 'calendar-phone');

  // And it works there: a booking made with taps on the phone.
  await page.fill('#book-date', DAY_VALUE);
  await page.selectOption('#book-time', '17:00');
  await page.selectOption('#book-duration', '30');
  await page.click('#book-submit');
  await until('the phone booking is selected', async () => (await text(page, '#details-when')).includes('17:00'));
  const id = await page.locator('.cal-event.selected').getAttribute('data-booking-id');
  const b = await world.users.ben.api.call('GET', `/api/bookings/${id}`);
  assert.equal(b.starts_at, iso(at(17, 0)));
  assert.deepEqual(await layoutProblems(page, ['#booking-details', '#cancel-booking']), [], 'the details fit too');
});

/**
 * Every time of day written on the home page (your bookings, the calendar, the details).
 * @param {import('playwright-core').Page} page
 */
async function timesShown(page) {
  const all = [await text(page, '#my-bookings'), await text(page, '#calendar'), await text(page, '#booking-details'),
    ...await page.locator('#book-time option').allTextContents()].join('\n');
  return {
    times: all.match(/\b\d{1,2}:\d{2}(?:\s?[AP]M)?/g) || [],
    hours: await page.locator('.cal-hours span').allTextContents(),
  };
}

browserTest('times follow the browser\'s clock: 12 hours in en-US, 24 in en-GB, never both on one page', { timeout: 60_000 }, async (t) => {
  for (const [locale, twelve] of /** @type {const} */ ([['en-US', true], ['en-GB', false]])) {
    const page = await newPage(browser, { name: `ben-${locale}`, locale });
    await login(page, server.base, 'ben');
    await page.waitForSelector(`#my-bookings li[data-booking-id="${world.bookings.benTen.id}"]`);
    await showWeekOfDay(page);
    await page.locator(`.cal-event[data-booking-id="${world.bookings.benTen.id}"]`).click();
    await page.waitForSelector('#details-when');
    const { times, hours } = await timesShown(page);
    t.diagnostic(`${locale}: ${times.slice(0, 6).join(' | ')} …; hour column ${hours.slice(7, 10).join(', ')}, ${hours.slice(13, 15).join(', ')}`);
    assert.ok(times.length >= 6, `times are shown (${times.join(', ')})`);
    if (twelve) {
      for (const x of times) assert.match(x, /[AP]M$/, `12-hour clock everywhere (${x})`);
      assert.ok(times.some((x) => x.startsWith('10:00') && x.endsWith('AM')), `Ben's 10:00 booking as 10:00 AM (${times.join(', ')})`);
      for (const x of hours) assert.match(x, /^\d{1,2}\s?[AP]M$/, `hour column on the same clock (${x})`);
      assert.ok(hours.includes('1\u202fPM') || hours.includes('1 PM'), `13:00 is 1 PM (${hours.join(', ')})`);
    } else {
      for (const x of times) assert.match(x, /^\d\d:\d\d$/, `24-hour clock everywhere (${x})`);
      for (const x of hours) assert.match(x, /^\d\d:00$/, `hour column on the same clock (${x})`);
      assert.ok(hours.includes('13:00'));
    }
    await page.context().close();
  }
});

browserTest('a refused booking is explained by what to do, and the form names the robot it books and remembers it', {
  timeout: 60_000,
  allow: [/^ana-form: HTTP 422 POST \/api\/bookings$/],
}, async () => {
  const page = await newPage(browser, { name: 'ana-form' });
  await login(page, server.base, 'ana');
  await page.waitForSelector('#book-robot option', { state: 'attached' });
  // The form says which robot: the one chosen in the list, and choosing in the form follows.
  assert.equal(await page.inputValue('#book-robot'), world.robots.r1.id);
  assert.match(await page.locator('#book-robot option:checked').textContent() || '', /Rounds-1/);
  await page.selectOption('#book-robot', world.robots.r2.id);
  await until('the calendar follows the form', async () => (await text(page, '#calendar-title')) === 'Calendar · Rounds-2');
  assert.equal(await page.getAttribute(`#robots button[data-robot-id="${world.robots.r2.id}"]`, 'aria-pressed'), 'true');

  // Yesterday: refused, in words that say what to do, not the server's.
  const yesterday = new Date(DAY - 2 * 24 * 3600_000).toISOString().slice(0, 10);
  await page.fill('#book-date', yesterday);
  await page.selectOption('#book-time', '09:00');
  await page.click('#book-submit');
  await until('the refusal is explained', async () => (await text(page, '#book-error')) !== '');
  assert.equal(await text(page, '#book-error'), 'That start time has already passed. Choose a later time, or press Start now.');

  // Reloaded, the page still books Rounds-2; a booking made now is Rounds-2's.
  await page.reload();
  await page.waitForSelector('#book-robot option', { state: 'attached' });
  await until('the choice is remembered', async () => (await page.inputValue('#book-robot')) === world.robots.r2.id);
  assert.equal(await text(page, '#calendar-title'), 'Calendar · Rounds-2');
  await page.fill('#book-date', DAY_VALUE);
  await page.selectOption('#book-time', '19:00');
  await page.selectOption('#book-duration', '30');
  await page.click('#book-submit');
  await until('booked', async () => (await text(page, '#details-when')).includes('19:00'));
  const id = await page.locator('.cal-event.selected').getAttribute('data-booking-id');
  assert.equal((await world.users.ana.api.call('GET', `/api/bookings/${id}`)).robot_id, world.robots.r2.id);
  assert.match(await text(page, '#details-title'), /Rounds-2/);
  await page.context().close();
});
