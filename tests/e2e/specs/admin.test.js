// The admin console in a real browser against the real binary: an administrator adds a doctor
// (the generated first password shown once) and registers a robot (its credential shown once,
// with the robot page's start link); the doctor logs in with that password, books the robot and
// watches it; the robot page starts from that link and streams; the administrator disables the
// doctor during the consult and the doctor's page says the session ended; the administrator finds
// all of it in the audit log, filters it by person and robot, and downloads it as CSV, whose rows
// are read back. Doctors and students get no Admin link and a "not allowed" page. Every admin
// page passes axe-core (WCAG 2.2 AA) and keeps its layout on a tablet and at 200% zoom.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, ADMIN_USERNAME, ADMIN_PASSWORD } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, submitLogin, until, expectDecoding, screenshot, text,
  layoutProblems, unexpectedPageProblems,
} from '../lib/browser.js';
import { expectAccessible } from '../lib/axe.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;

/**
 * A session's DELETE can lose the race against the SFU ending it (404); a disabled doctor's
 * page gets 401 for whatever it asks afterwards.
 */
const ENDED = [/: HTTP 404 DELETE \/sessions\/[^/]+$/, /^doctor: HTTP 401 /];

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: {
      dora: ['Dr Dora Mensah', 'doctor'],
      sam: ['Sam Student', 'student'],
      lee: ['Dr Lee Park', 'doctor'],
    },
    robots: { r1: ['Rounds-1', 'Oncology 5', 'Tablet robot'] },
  });
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems(ENDED);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/** @param {import('playwright-core').Page} page */
async function adminLogin(page) {
  await page.goto(`${server.base}/`);
  await submitLogin(page, ADMIN_USERNAME, ADMIN_PASSWORD);
  await page.waitForSelector('#whoami', { timeout: 15_000 });
}

/**
 * RFC 4180 records (every field quoted, as the export writes them).
 * @param {string} csv
 */
function parseCsv(csv) {
  /** @type {string[][]} */
  const rows = [];
  /** @type {string[]} */
  let row = [];
  let i = 0;
  while (i < csv.length) {
    assert.equal(csv[i], '"', `a quoted field at ${i}`);
    i += 1;
    let field = '';
    for (;;) {
      if (csv[i] === '"' && csv[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (csv[i] === '"') {
        i += 1;
        break;
      } else {
        field += csv[i];
        i += 1;
      }
    }
    row.push(field);
    if (csv[i] === ',') {
      i += 1;
    } else {
      assert.equal(csv.slice(i, i + 2), '\r\n', 'records end in CRLF');
      i += 2;
      rows.push(row);
      row = [];
    }
  }
  return rows;
}

/**
 * The rows of the visible audit table: kind, who (text), robot (text).
 * @param {import('playwright-core').Page} page
 */
function auditRows(page) {
  return page.$$eval('#audit-rows tr', (trs) => trs.map((tr) => ({
    kind: /** @type {HTMLElement} */ (tr).dataset.kind || '',
    who: (tr.querySelector('td.who')?.textContent || '').trim(),
    robot: (tr.querySelector('td.robot')?.textContent || '').trim(),
  })));
}

browserTest('an admin adds a doctor and a robot; the doctor books and watches; disabling ends the consult; the audit log shows it all and exports it', {
  timeout: 240_000,
  allow: ENDED,
}, async (t) => {
  const admin = await newPage(browser, { name: 'admin' });
  await adminLogin(admin);
  await admin.click('#nav-admin');
  await admin.waitForSelector('#admin-people #people-rows tr');
  assert.equal(await admin.getAttribute('#admin-tab-people', 'aria-current'), 'page');
  await expectAccessible(admin, 'the People page');

  // Add a doctor: the first password is generated and shown once.
  await admin.fill('#new-username', 'dr.nia');
  await admin.fill('#new-display-name', 'Dr Nia Adeyemi');
  await admin.selectOption('#new-role', 'doctor');
  await admin.click('#new-person-submit');
  await admin.waitForSelector('#secret-dialog[open]');
  await expectAccessible(admin, 'the first-password dialog');
  assert.equal(await admin.inputValue('#secret-username'), 'dr.nia');
  const password = await admin.inputValue('#secret-password');
  assert.match(password, /^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/, 'a generated password');
  await admin.click('#secret-done');
  await admin.waitForSelector('#secret-dialog', { state: 'detached' });
  await admin.waitForSelector('#people-rows tr[data-username="dr.nia"]');
  assert.ok(!(await admin.content()).includes(password), 'the password is gone from the page');
  const nia = (await world.admin.call('GET', '/api/users?q=dr.nia'))[0];
  assert.equal(nia.display_name, 'Dr Nia Adeyemi');
  // The list as a person finds it, for the screenshot.
  await admin.fill('#people-q', '');
  await admin.click('#people-search-submit');
  await until('everyone is listed', async () => (await admin.locator('#people-rows tr').count()) >= 5);
  await screenshot(admin, 'admin-people');

  // Register a robot: the credential is shown once, with a start link (fragment only) and the
  // agent's set-up (environment, not the command line).
  await admin.click('#admin-tab-robots');
  await admin.waitForSelector('#new-robot');
  await admin.fill('#new-robot-name', 'Rounds-7');
  await admin.fill('#new-robot-ward', 'Cardiology 3B');
  await admin.fill('#new-robot-description', 'Tablet robot by bed 12');
  await admin.click('#new-robot-submit');
  await admin.waitForSelector('#secret-dialog[open]');
  const credential = await admin.inputValue('#secret-credential');
  const link = await admin.inputValue('#secret-robot-link');
  const setup = await admin.inputValue('#secret-agent-setup');
  assert.match(credential, /^bsc_/);
  const url = new URL(link);
  assert.equal(url.search, '', 'no secret in the query');
  assert.equal(url.pathname, '/robot');
  const fragment = new URLSearchParams(url.hash.slice(1));
  assert.equal(fragment.get('credential'), credential);
  assert.match(setup, new RegExp(`^BEDSIDE_ROBOT_CREDENTIAL=${credential}$`, 'm'));
  assert.match(setup, /^bedside robot$/m, 'the agent runs without the credential in its arguments');
  await expectAccessible(admin, 'the robot credential dialog');
  await admin.click('#secret-done');
  const robotRow = admin.locator('#robot-rows tr', { hasText: 'Rounds-7' });
  await robotRow.waitFor();
  const robotId = /** @type {string} */ (await robotRow.getAttribute('data-robot-id'));
  assert.equal(fragment.get('room'), robotId);
  await expectAccessible(admin, 'the Robots page');
  await screenshot(admin, 'admin-robots');

  // The robot page starts from the link and publishes; the credential leaves the address bar.
  const robot = await newPage(browser, { name: 'robot' });
  await robot.goto(link);
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  assert.ok(!robot.url().includes(credential), `the credential left the address bar: ${robot.url()}`);

  // The doctor logs in with the shown password, books the robot now and watches it.
  const doctor = await newPage(browser, { name: 'doctor' });
  await doctor.goto(`${server.base}/`);
  await submitLogin(doctor, 'dr.nia', password);
  await doctor.waitForSelector('#whoami', { timeout: 15_000 });
  assert.equal(await doctor.locator('#nav-admin').count(), 0, 'no Admin link for a doctor');
  await doctor.click(`.robot-item button[data-robot-id="${robotId}"]`);
  await doctor.click('#book-now');
  const item = doctor.locator('#my-bookings li[data-booking-id]');
  await item.first().waitFor({ timeout: 15_000 });
  await item.first().locator('button.join').click();
  await doctor.waitForSelector('#remote-video');
  const seen = await expectDecoding(doctor, 'the doctor');
  t.diagnostic(`the doctor decodes the robot: ${seen.width}x${seen.height}, ${seen.framesDecoded} frames`);

  // The admin disables the doctor during the consult: their page says so and the room is left.
  await admin.click('#admin-tab-people');
  await admin.fill('#people-q', 'dr.nia');
  await admin.click('#people-search-submit');
  await until('only Dr Nia is listed', async () => (await admin.locator('#people-rows tr').count()) === 1);
  await admin.click('#people-rows tr[data-username="dr.nia"] button.disable');
  await admin.waitForSelector('#confirm-dialog[open]');
  assert.match(await text(admin, '#confirm-dialog'), /logged out at once and any consult they are in ends/);
  const disabledAt = Date.now();
  await admin.click('#confirm-ok');
  await until('the doctor\'s page says the session ended', async () => /account was disabled/.test(await text(doctor, '#state-banner')), 15_000);
  t.diagnostic(`the doctor's page showed the end ${Date.now() - disabledAt} ms after the click (bounded above by it)`);
  await admin.waitForSelector('#people-rows tr[data-username="dr.nia"] button.enable');

  // The audit log: everything Dr Nia did, then everything about the robot, by following links.
  await admin.click('#admin-tab-audit');
  await admin.waitForSelector('#audit-rows tr');
  await admin.selectOption('#audit-kind', 'user.*');
  await admin.click('#audit-apply');
  await until('only user entries', async () => {
    const rows = await auditRows(admin);
    return rows.length > 0 && rows.every((r) => r.kind.startsWith('user.')) && rows.some((r) => r.kind === 'user.disabled');
  });
  assert.match(admin.url(), /#\/admin\/audit\?kind=user\.\*/, 'the filter is in the address');
  const disabledRow = admin.locator('#audit-rows tr[data-kind="user.disabled"]').first();
  assert.match(await disabledRow.locator('.who').innerText(), /Test admin|admin/i);
  // The detail names the person: follow it to their entries.
  await disabledRow.locator('.detail a').click();
  await until('Dr Nia\'s entries', async () => {
    const rows = await auditRows(admin);
    const kinds = new Set(rows.map((r) => r.kind));
    return rows.length > 0 && rows.every((r) => r.who.startsWith('Dr Nia Adeyemi'))
      && ['login.ok', 'booking.created', 'token.join'].every((k) => kinds.has(k));
  });
  assert.equal(await admin.inputValue('#audit-actor'), nia.id, 'the person is chosen in the filter');
  // Follow the robot of the booking.
  await admin.locator('#audit-rows tr[data-kind="booking.created"] .robot a').click();
  /** @type {any} */
  let lastRows = null;
  await until('the robot\'s entries', async () => {
    const rows = await auditRows(admin);
    lastRows = rows;
    const kinds = new Set(rows.map((r) => r.kind));
    return rows.length > 0 && rows.every((r) => r.robot === 'Rounds-7')
      && ['robot.created', 'token.publish', 'booking.created', 'token.join'].every((k) => kinds.has(k));
  }).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(lastRows)} at ${admin.url()}`); });
  await expectAccessible(admin, 'the Audit log page');
  await screenshot(admin, 'admin-audit');

  // CSV of Dr Nia's entries: downloaded as a file, and its rows are hers.
  await admin.goto(`${server.base}/#/admin/audit?actor=${nia.id}`);
  await admin.waitForSelector('#audit-rows tr');
  const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('#audit-csv')]);
  assert.match(download.suggestedFilename(), /^bedside-audit-\d{8}-\d{6}\.csv$/);
  const file = await download.path();
  const rows = parseCsv(readFileSync(/** @type {string} */ (file), 'utf8'));
  assert.deepEqual(rows[0], ['id', 'at', 'kind', 'actor_id', 'actor_name', 'actor_kind', 'robot_id', 'robot_name', 'detail']);
  const body = rows.slice(1);
  const json = await world.admin.call('GET', `/api/audit?actor=${nia.id}&limit=1000`);
  assert.equal(body.length, json.total, 'one row per entry the filter selects');
  assert.deepEqual(body.map((r) => Number(r[0])), json.entries.map((/** @type {any} */ e) => e.id), 'the same entries, newest first');
  for (const r of body) {
    assert.equal(r[3], nia.id);
    assert.equal(r[4], 'Dr Nia Adeyemi');
    assert.equal(r[5], 'doctor');
    JSON.parse(r[8]);
  }
  const kinds = new Set(body.map((r) => r[2]));
  for (const k of ['login.ok', 'booking.created', 'token.join']) assert.ok(kinds.has(k), `${k} in the CSV`);
  const booked = body.find((r) => r[2] === 'booking.created');
  assert.deepEqual([booked?.[6], booked?.[7]], [robotId, 'Rounds-7']);
  const exported = await world.admin.call('GET', '/api/audit?kind=audit.exported');
  assert.equal(exported.entries.length, 1, 'the export is itself audited');
});

browserTest('doctors and students get no Admin link and a "not allowed" page, and the API refuses them', { timeout: 60_000, allow: [/: HTTP 403 /] }, async () => {
  for (const name of ['dora', 'sam']) {
    const page = await newPage(browser, { name });
    await login(page, server.base, name);
    assert.equal(await page.locator('#nav-admin').count(), 0, `${name}: no Admin link`);
    for (const section of ['people', 'robots', 'audit']) {
      await page.goto(`${server.base}/#/admin/${section}`);
      await page.waitForSelector('#not-allowed');
      assert.match(await text(page, '#not-allowed'), /Not allowed/);
      assert.equal(await page.locator('#people-table, #robots-table, #audit-table').count(), 0);
    }
    await expectAccessible(page, `the not-allowed page (${name})`);
    for (const [method, path] of [['GET', '/api/audit'], ['GET', '/api/audit.csv'], ['POST', `/api/users/${world.users.lee.id}/password`], ['PATCH', `/api/users/${world.users.lee.id}`]]) {
      await assert.rejects(world.users[name].api.call(method, path, method === 'PATCH' ? { role: 'admin' } : undefined), (/** @type {any} */ e) => e.status === 403, `${name}: ${method} ${path}`);
    }
    await page.context().close();
  }
});

browserTest('the admin pages keep their layout on a tablet and at 200% zoom', { timeout: 60_000 }, async () => {
  for (const [label, width, height] of /** @type {const} */ ([['tablet', 820, 1180], ['200% zoom', 640, 360]])) {
    const page = await newPage(browser, { name: `admin-${label}`, width, height });
    await adminLogin(page);
    const checks = /** @type {const} */ ([
      ['people', '#people-rows tr', ['#nav-admin', '#admin-tab-audit', '#new-person-submit', '#people-search-submit', '#people-rows tr button.edit']],
      ['robots', '#robot-rows tr', ['#new-robot-submit', '#robots-show-retired', '#robot-rows tr button.rotate']],
      ['audit', '#audit-rows tr', ['#audit-csv', '#audit-apply', '#audit-older', '#audit-rows tr .who a']],
    ]);
    for (const [section, ready, selectors] of checks) {
      await page.goto(`${server.base}/#/admin/${section}`);
      await page.waitForSelector(ready);
      const problems = await layoutProblems(page, [...selectors]);
      assert.deepEqual(problems, [], `${section} page, ${label} (${width}x${height})`);
    }
    // Keyboard: the section links are reachable and followed with Enter.
    await page.focus('#admin-tab-people');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'admin-tab-robots');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#new-robot');
    await page.context().close();
  }
});
