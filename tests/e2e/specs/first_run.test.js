// The first use of a fresh install, as a new user finds it: `bedside serve` without an admin
// prints a one-time setup link (the code in a URL fragment, never a query) in its log; the page
// offers creating the first administrator with it; the code is spent by that, and a wrong code,
// a second use and a link opened after an admin exists are refused in words. The setup page
// passes axe-core (WCAG 2.2 AA), also with an error shown, and fits a phone.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { expectAccessible } from '../lib/axe.js';
import {
  launch, newPage, browserTest, submitLogin, until, screenshot, text, unexpectedPageProblems, overflowProblems, PHONE,
} from '../lib/browser.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

const NEW_PASSWORD = 'first-admin-password-1';

before(async () => {
  server = await startServer({ admin: false });
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

/** The setup link the server printed. */
async function setupLink() {
  return until('the server prints a setup link', () => {
    const m = /(http:\/\/\S+?)\/#setup=(bss_[A-Za-z0-9_-]+)/.exec(server.log());
    return m ? { url: `${m[1]}/#setup=${m[2]}`, code: m[2] } : null;
  });
}

browserTest('a fresh server prints a one-time setup link, and it creates the first administrator', {
  timeout: 90_000,
  allow: [/: HTTP 403 POST \/api\/setup$/],
}, async () => {
  const { url, code } = await setupLink();
  const log = server.log();
  assert.doesNotMatch(log, /[?&]setup=/, 'the code is never in a query string');
  assert.equal(log.split(code).length - 1, 1, 'the code is printed once');
  const api = await fetch(`${server.base}/api/setup`).then((r) => r.json());
  assert.equal(api.setup_needed, true);

  // Without the link: the page offers the setup and takes the code typed in; a wrong one is
  // refused in words.
  const typed = await newPage(browser, { name: 'typed' });
  await typed.goto(`${server.base}/`);
  await typed.waitForSelector('#setup-form');
  await expectAccessible(typed, 'the first-run setup page');
  assert.equal(await typed.locator('#login-submit').count(), 0, 'no login form while there is nobody to log in as');
  await typed.fill('#setup-code', `bss_${'A'.repeat(43)}`);
  await typed.fill('#setup-username', 'head-of-it');
  await typed.fill('#setup-display-name', 'Ines Head of IT');
  await typed.fill('#setup-password', NEW_PASSWORD);
  await typed.fill('#setup-password2', NEW_PASSWORD);
  await typed.click('#setup-submit');
  await until('the wrong code is refused', async () => /setup code is wrong/.test(await text(typed, '#setup-error')));
  await expectAccessible(typed, 'the first-run setup page with an error');

  // On a phone: it fits.
  const phone = await newPage(browser, { name: 'phone', ...PHONE, touch: true });
  await phone.goto(`${server.base}/`);
  await phone.waitForSelector('#setup-form');
  assert.deepEqual(await overflowProblems(phone, ['main', '.panel', '.topbar']), [], 'the setup page fits a phone');
  await screenshot(phone, 'phone-first-run-setup');
  await phone.context().close();

  // With the link: the code is filled in and gone from the address bar at once.
  const page = await newPage(browser, { name: 'admin' });
  await page.goto(url);
  await page.waitForSelector('#setup-form');
  assert.equal(await page.inputValue('#setup-code'), code);
  assert.ok(!page.url().includes(code), `the code left the address bar: ${page.url()}`);
  await page.fill('#setup-username', 'head-of-it');
  await page.fill('#setup-display-name', 'Ines Head of IT');
  await page.fill('#setup-password', NEW_PASSWORD);
  await page.fill('#setup-password2', 'something-else-entirely');
  await page.click('#setup-submit');
  await until('differing passwords are caught', async () => /differ/.test(await text(page, '#setup-error')));
  await page.fill('#setup-password2', NEW_PASSWORD);
  assert.equal(await text(page, '#setup-error'), '', 'fixing the password clears the message');
  await screenshot(page, 'first-run-setup');
  await page.click('#setup-submit');
  await page.waitForSelector('#whoami', { timeout: 15_000 });
  assert.match(await text(page, '#whoami'), /Ines Head of IT\s*admin/);

  // Spent: the same code again, by the API and by the link.
  const again = await fetch(`${server.base}/api/setup`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code, username: 'second', display_name: 'Second', password: NEW_PASSWORD }),
  });
  assert.equal(again.status, 409);
  assert.equal((await again.json()).error, 'setup_done');
  const late = await newPage(browser, { name: 'late' });
  await late.goto(url);
  await late.waitForSelector('#setup-done');
  await late.waitForSelector('#login-submit');
  assert.equal(await late.locator('#setup-form').count(), 0);
  await expectAccessible(late, 'the login page after a spent setup link');
  assert.ok(!late.url().includes(code));

  const state = await fetch(`${server.base}/api/setup`).then((r) => r.json());
  assert.equal(state.setup_needed, false);
  // Logging in again works with the password chosen.
  const fresh = await newPage(browser, { name: 'relogin' });
  await fresh.goto(`${server.base}/`);
  await submitLogin(fresh, 'head-of-it', NEW_PASSWORD);
  await fresh.waitForSelector('#whoami');
});
