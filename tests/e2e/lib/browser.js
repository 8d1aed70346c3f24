// Headless Chromium for the end-to-end tests: the system Chromium (never a downloaded one), fake
// camera and microphone, loopback WebRTC. Plus what every spec needs: `browserTest` (a test that
// fails on page errors and HTTP errors), logging in through the form, "this page decodes video",
// "wait until", layout checks, screenshots.
//
// Not here: the server (server.js), seeding (seed.js), metrics (metrics.js).

import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PASSWORD } from './seed.js';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * Where screenshots go: the git-ignored `tests/e2e/out/screenshots` by default, so a test run
 * never changes the committed pictures; `BEDSIDE_SCREENSHOTS=docs` refreshes `docs/screenshots`
 * on purpose.
 */
export const SCREENSHOTS = process.env.BEDSIDE_SCREENSHOTS === 'docs'
  ? resolve(here, '../../../docs/screenshots')
  : resolve(here, '../out/screenshots');

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/**
 * A Chromium whose pages can really be hidden, for what only happens in a hidden page (timer
 * throttling). `launch()` cannot give one, for two reasons: Playwright starts Chromium with
 * `--disable-background-timer-throttling`, `--disable-renderer-backgrounding` and
 * `--disable-backgrounding-occluded-windows`, and it turns on focus emulation
 * (`Emulation.setFocusEmulationEnabled`) for every page it attaches to, which keeps the page's
 * WebContents counted as captured, hence visible, whatever tab is in front. So this starts the
 * system Chromium itself with FLAGS only, and attaches with `connectOverCDP(…, {noDefaults:
 * true})`, which leaves the default context's pages alone. A page of `context` is hidden
 * (`document.visibilityState` 'hidden', timers throttled to about once a second) while another
 * page of the same context is in front of it, like a background tab; `bringToFront()` shows it
 * again. (`Page.setWebLifecycleState` 'frozen' is not that: it stops the page's tasks
 * altogether, which no real tablet does to a page that is merely not shown.)
 */
export async function launchHideable() {
  const dir = mkdtempSync(join(tmpdir(), 'bedside-chromium-'));
  const proc = spawn(CHROMIUM, [...FLAGS, '--remote-debugging-port=0', `--user-data-dir=${dir}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const endpoint = await new Promise((res, rej) => {
    let seen = '';
    const timer = setTimeout(() => rej(new Error(`Chromium did not open its DevTools endpoint:\n${seen.slice(-2000)}`)), 30_000);
    let found = false;
    proc.stderr.on('data', (d) => {
      if (found) return; // keep draining the pipe, nothing more to read
      seen += String(d);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (m) {
        found = true;
        clearTimeout(timer);
        res(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`Chromium exited with ${code}:\n${seen.slice(-2000)}`));
    });
  });
  const browser = await chromium.connectOverCDP(endpoint, { noDefaults: true });
  const context = browser.contexts()[0];
  // The tab Chromium opened with: the one that hides the others when brought to front.
  const blank = context.pages()[0] || (await context.newPage());
  return {
    browser,
    context,
    blank,
    async close() {
      await browser.close().catch(() => {});
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
      // Chromium's helper processes may still be writing for a moment: best effort.
      for (let i = 0; i < 25; i++) {
        try {
          rmSync(dir, { recursive: true, force: true });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
  };
}

// --- page problems --------------------------------------------------------------------------------

/**
 * Something a page should never see: an uncaught error or an HTTP status >= 400.
 * @typedef {object} PageProblem
 * @property {string} page the name given to `newPage`
 * @property {string} what e.g. `HTTP 404 DELETE /sessions/…` or `page error: …`
 */

/** @type {PageProblem[]} every problem of every page of this spec file, in order */
const problems = [];
/** Problems before this index were judged by an earlier test. */
let judged = 0;

/** @param {PageProblem} p */
const show = (p) => `${p.page}: ${p.what}`;

/**
 * The problems since the last check that `allow` does not list; marks them judged.
 * @param {RegExp[]} allow matched against `<page name>: <what>`
 */
export function unexpectedPageProblems(allow = []) {
  return judgePageProblems(allow).unexpected;
}

/**
 * The problems since the last check, split by `allow`; marks them judged.
 * @param {RegExp[]} allow matched against `<page name>: <what>`
 */
function judgePageProblems(allow) {
  const fresh = problems.slice(judged).map(show);
  judged = problems.length;
  return {
    allowed: fresh.filter((p) => allow.some((re) => re.test(p))),
    unexpected: fresh.filter((p) => !allow.some((re) => re.test(p))),
  };
}

/**
 * node:test's `test` for browser specs: the test also fails when any page of the spec raised an
 * uncaught error, crashed or got an HTTP status >= 400 while it ran (or since the previous test
 * ended), unless `opts.allow` lists it. `allow` is for what a test provokes on purpose: each
 * pattern is matched against `<page name>: HTTP <status> <METHOD> <path>` or
 * `<page name>: page error: <message>`.
 * @param {string} name
 * @param {{timeout?: number, allow?: RegExp[]}} opts
 * @param {(t: import('node:test').TestContext) => Promise<void>} fn gets the test's context
 *   (for `t.diagnostic`: measured values worth reading in the report)
 */
export function browserTest(name, opts, fn) {
  const { allow = [], ...testOpts } = opts;
  return test(name, testOpts, async (t) => {
    // Problems that came after the previous test's check are judged with this one.
    /** @type {unknown} */
    let failure = null;
    try {
      await fn(t);
    } catch (e) {
      failure = e;
    }
    const { allowed, unexpected: bad } = judgePageProblems(allow);
    for (const p of allowed) t.diagnostic(`allowed: ${p}`);
    const report = bad.length ? `browser problems during this test:\n  ${bad.join('\n  ')}` : '';
    if (failure) {
      if (report && failure instanceof Error) failure.message += `\n${report}`;
      throw failure;
    }
    if (report) throw new Error(report);
  });
}

/** A phone (iPhone 12-15 class) and a tablet, in CSS pixels, for the layout checks. */
export const PHONE = { width: 390, height: 844 };
export const TABLET = { width: 820, height: 1180 };

/**
 * `BEDSIDE_E2E_WEB=disk` (or `=<folder>`): serve `/`, `/robot`, `/js/*` and `/css/*` from this
 * checkout's `web/` (or that folder, e.g. an older `web/` to see a test fail before a fix)
 * instead of the binary's embedded copy; the server's headers, CSP included, are kept. Only for
 * working on the client without a rebuild: the suite runs on the embedded files.
 */
const WEB_FROM_DISK = !process.env.BEDSIDE_E2E_WEB ? null
  : process.env.BEDSIDE_E2E_WEB === 'disk' ? resolve(here, '../../../web') : resolve(process.env.BEDSIDE_E2E_WEB);

/**
 * A new page in its own context (own storage: one login per person). Its uncaught errors and
 * HTTP errors are recorded for `browserTest`. `touch` makes it a touch screen (a phone or tablet:
 * `pointer: coarse`); `locale` sets the browser's language and clock (default en-GB, 24 hours).
 * @param {import('playwright-core').Browser} browser
 * @param {{width?: number, height?: number, name: string, locale?: string, touch?: boolean}} opts
 */
export async function newPage(browser, opts) {
  const context = await browser.newContext({
    viewport: { width: opts.width || 1280, height: opts.height || 720 },
    timezoneId: 'UTC',
    locale: opts.locale || 'en-GB',
    permissions: ['camera', 'microphone'],
    ...(opts.touch ? { hasTouch: true, isMobile: true } : {}),
  });
  if (WEB_FROM_DISK) {
    const root = WEB_FROM_DISK;
    await context.route(/^http:\/\/127\.0\.0\.1:\d+\/(robot)?(\?.*)?$|\/(js|css)\/[^?]+/, async (route) => {
      const url = new URL(route.request().url());
      const rel = url.pathname === '/' ? 'index.html' : url.pathname === '/robot' ? 'robot.html' : url.pathname.slice(1);
      const file = resolve(root, rel);
      if (!file.startsWith(root) || !existsSync(file)) return route.continue();
      const response = await route.fetch();
      await route.fulfill({ response, body: readFileSync(file) });
    });
  }
  return watchPage(await context.newPage(), opts.name);
}

/**
 * Record `page`'s uncaught errors, crashes and HTTP errors for `browserTest` (newPage does this
 * for its pages; a page made another way needs it too).
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export function watchPage(page, name) {
  page.on('pageerror', (e) => problems.push({ page: name, what: `page error: ${e.message}` }));
  page.on('crash', () => problems.push({ page: name, what: 'page error: crashed' }));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push({ page: name, what: `HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}` });
  });
  return page;
}

// --- logging in ---------------------------------------------------------------------------------

/**
 * Fill in the login form and submit it (no waiting: the caller knows what should happen).
 * @param {import('playwright-core').Page} page
 * @param {string} username
 * @param {string} [password]
 */
export async function submitLogin(page, username, password = PASSWORD) {
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-submit');
}

/**
 * Open `path` (a consult link survives the login), log in through the form and wait until the
 * console shows who is logged in.
 * @param {import('playwright-core').Page} page
 * @param {string} base the server's URL
 * @param {string} username a seeded user (seed.js PASSWORD)
 * @param {{path?: string}} [opts]
 */
export async function login(page, base, username, opts = {}) {
  await page.goto(`${base}${opts.path || '/'}`);
  await submitLogin(page, username);
  await page.waitForSelector('#whoami', { timeout: 15_000 });
}

/**
 * Poll `f` until it returns a truthy value; fail with `what` after `timeoutMs`.
 * @template T
 * @param {string} what
 * @param {() => Promise<T>|T} f
 * @param {number} [timeoutMs]
 * @returns {Promise<NonNullable<T>>}
 */
export async function until(what, f, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return /** @type {NonNullable<T>} */ (v);
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Video decode state of a consult page: frames decoded (getStats) and the <video> size.
 * @param {import('playwright-core').Page} page
 */
export function videoState(page) {
  return page.evaluate(async () => {
    const w = /** @type {any} */ (window);
    const pc = w.__bedside && w.__bedside.session && w.__bedside.session.pc;
    let framesDecoded = 0;
    if (pc) {
      const stats = await pc.getStats();
      stats.forEach((/** @type {any} */ s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded += s.framesDecoded || 0;
      });
    }
    const v = /** @type {HTMLVideoElement|null} */ (document.querySelector('#remote-video'));
    return { framesDecoded, width: v ? v.videoWidth : 0, height: v ? v.videoHeight : 0 };
  });
}

/**
 * Wait until the page decodes real frames: `framesDecoded` rising and a picture larger than
 * Chromium's 2x2 placeholder.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 */
export async function expectDecoding(page, who) {
  const first = await until(`${who} decodes a first frame`, async () => {
    const s = await videoState(page);
    return s.framesDecoded > 0 && s.width > 2 ? s : null;
  }, 30_000);
  const later = await until(`${who} keeps decoding`, async () => {
    const s = await videoState(page);
    return s.framesDecoded > first.framesDecoded + 5 ? s : null;
  }, 20_000);
  return later;
}

/**
 * Save a PNG to SCREENSHOTS, scrolled to the top (the view a person gets first).
 * @param {import('playwright-core').Page} page
 * @param {string} name without extension
 * @param {{fullPage?: boolean}} [opts]
 */
export async function screenshot(page, name, opts = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`), fullPage: !!opts.fullPage });
}

/**
 * What is wrong with the layout at the current viewport: the page scrolls sideways, or one of
 * `selectors` is missing, not rendered, sticks out of the viewport's width, is covered by
 * something else where a tap would land (its centre, once scrolled into view), or is smaller
 * than a 24 px tap target (WCAG 2.5.8). Empty when all is well.
 * @param {import('playwright-core').Page} page
 * @param {string[]} selectors
 * @returns {Promise<string[]>}
 */
export async function layoutProblems(page, selectors) {
  const out = await page.evaluate((sels) => {
    /** @type {string[]} */
    const found = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) {
      found.push(`the page scrolls sideways (scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth})`);
    }
    /** @param {Element|null} el */
    const describe = (el) => (el ? `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}` : 'nothing');
    for (const sel of sels) {
      const el = document.querySelector(sel);
      if (!el) {
        found.push(`${sel}: missing`);
        continue;
      }
      el.scrollIntoView({ block: 'center', inline: 'nearest' });
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) {
        found.push(`${sel}: not rendered`);
        continue;
      }
      if (r.left < -0.5 || r.right > root.clientWidth + 0.5) {
        found.push(`${sel}: sticks out sideways (${Math.round(r.left)}..${Math.round(r.right)} of ${root.clientWidth})`);
      }
      if (r.top < -0.5 || r.bottom > window.innerHeight + 0.5) {
        found.push(`${sel}: cannot be brought into view (${Math.round(r.top)}..${Math.round(r.bottom)} of ${window.innerHeight})`);
      }
      if (r.width < 24 || r.height < 24) found.push(`${sel}: too small to tap (${Math.round(r.width)}x${Math.round(r.height)})`);
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      if (!hit || !(hit === el || el.contains(hit))) found.push(`${sel}: covered by ${describe(hit)}`);
    }
    window.scrollTo(0, 0);
    return found;
  }, selectors);
  return out;
}

/**
 * Text of an element, trimmed ('' if absent).
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
export async function text(page, selector) {
  const el = await page.$(selector);
  return el ? ((await el.textContent()) || '').trim() : '';
}

// --- accessibility and layout checks that axe-core does not make ---------------------------------

/**
 * Where the page, or any element matching `selectors`, is wider than its box: it scrolls (or
 * clips) sideways. Elements meant to scroll sideways (`overflow-x: auto|scroll`, e.g. the phone
 * calendar) are judged by their parent instead. Empty when all is well.
 * @param {import('playwright-core').Page} page
 * @param {string[]} selectors
 * @returns {Promise<string[]>}
 */
export async function overflowProblems(page, selectors) {
  return page.evaluate((sels) => {
    /** @type {string[]} */
    const found = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) found.push(`document: scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}`);
    if (document.body.scrollWidth > root.clientWidth) found.push(`body: scrollWidth ${document.body.scrollWidth} > ${root.clientWidth}`);
    for (const sel of sels) {
      for (const el of document.querySelectorAll(sel)) {
        const h = /** @type {HTMLElement} */ (el);
        if (!h.offsetParent && getComputedStyle(h).position !== 'fixed') continue; // not shown
        if (h.classList.contains('visually-hidden')) continue; // for screen readers only, 1 px by design
        const r = h.getBoundingClientRect();
        const name = `${sel}${h.id ? `#${h.id}` : ''}`;
        if (h.scrollWidth > h.clientWidth + 1 && !['auto', 'scroll'].includes(getComputedStyle(h).overflowX)) {
          found.push(`${name}: content ${h.scrollWidth} px wide in a box of ${h.clientWidth}`);
        }
        if (r.left < -0.5 || r.right > root.clientWidth + 0.5) {
          found.push(`${name}: sticks out of the screen (${Math.round(r.left)}..${Math.round(r.right)} of ${root.clientWidth})`);
        }
      }
    }
    return found;
  }, selectors);
}

/**
 * Buttons and links whose visible words are not part of their accessible name (WCAG 2.5.3 Label
 * in Name: speech users say what they see): the shown words must appear, in order and as whole
 * words, in the name Chromium computes (read from its accessibility tree through the DevTools
 * protocol). Compared without case and punctuation ("‹ Prev" shows the word "prev", which the
 * name "Previous week" does not contain).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
export async function labelInNameProblems(page) {
  const shown = await page.evaluate(() => {
    const all = [...document.querySelectorAll('button, a[href], [role="button"]')]
      .filter((el) => /** @type {HTMLElement} */ (el).offsetParent && /** @type {HTMLElement} */ (el).innerText.trim());
    return all.map((el, i) => {
      el.setAttribute('data-label-check', String(i));
      return { i, what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}`, text: /** @type {HTMLElement} */ (el).innerText };
    });
  });
  const cdp = await page.context().newCDPSession(page);
  /** @type {string[]} */
  const found = [];
  try {
    await cdp.send('DOM.enable');
    await cdp.send('Accessibility.enable');
    const { root } = await cdp.send('DOM.getDocument', { depth: 0 });
    const words = (/** @type {string} */ t) => t.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    for (const el of shown) {
      const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: `[data-label-check="${el.i}"]` });
      if (!nodeId) continue;
      const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
      const name = String(nodes[0]?.name?.value ?? '');
      const seen = words(el.text).join(' ');
      if (!` ${words(name).join(' ')} `.includes(` ${seen} `)) found.push(`${el.what}: shows "${el.text.replace(/\s+/g, ' ').trim()}", named "${name}"`);
    }
  } finally {
    await page.evaluate(() => { for (const el of document.querySelectorAll('[data-label-check]')) el.removeAttribute('data-label-check'); });
    await cdp.detach().catch(() => {});
  }
  return found;
}

/**
 * From now on, count every time a live region (`aria-live` polite/assertive, `role` status,
 * alert, log) is rewritten with the words it already had: a screen reader reads those out again.
 * Read the count with `liveRegionRewrites`.
 * @param {import('playwright-core').Page} page
 */
export async function watchLiveRegions(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    if (w.__liveWatch) w.__liveWatch.observer.disconnect();
    /** @type {Map<Element, string>} */
    const last = new Map();
    /** @type {string[]} */
    const rewrites = [];
    /** @param {Node|null} n */
    const regionOf = (n) => {
      let el = n instanceof Element ? n : n ? n.parentElement : null;
      for (; el; el = el.parentElement) {
        const live = el.getAttribute('aria-live');
        const role = el.getAttribute('role');
        if (live === 'off') return null;
        if (live === 'polite' || live === 'assertive' || role === 'status' || role === 'alert' || role === 'log') return el;
      }
      return null;
    };
    for (const el of document.querySelectorAll('[aria-live], [role="status"], [role="alert"], [role="log"]')) last.set(el, el.textContent || '');
    const observer = new MutationObserver((records) => {
      /** @type {Set<Element>} */
      const touched = new Set();
      for (const r of records) {
        const region = regionOf(r.target);
        if (region) touched.add(region);
      }
      for (const region of touched) {
        const text = region.textContent || '';
        if (last.has(region) && last.get(region) === text && text.trim()) {
          rewrites.push(`${region.tagName.toLowerCase()}${region.id ? `#${region.id}` : ''}: "${text.slice(0, 80)}"`);
        }
        last.set(region, text);
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    w.__liveWatch = { observer, rewrites };
  });
}

/**
 * The live-region rewrites with unchanged words since `watchLiveRegions`.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
export function liveRegionRewrites(page) {
  return page.evaluate(() => /** @type {any} */ (window).__liveWatch.rewrites.slice());
}
