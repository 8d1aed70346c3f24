// Headless Chromium for the end-to-end tests: the system Chromium (never a downloaded one), fake
// camera and microphone, loopback WebRTC. Plus the checks every spec needs: "this page decodes
// video", "wait until".
//
// Not here: the server (server.js).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = resolve(here, '../../../docs/screenshots');

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
 * A new page in its own context (own storage: one login per person).
 * @param {import('playwright-core').Browser} browser
 * @param {{width?: number, height?: number, name: string}} opts
 */
export async function newPage(browser, opts) {
  const context = await browser.newContext({
    viewport: { width: opts.width || 1280, height: opts.height || 720 },
    timezoneId: 'UTC',
    locale: 'en-GB',
    permissions: ['camera', 'microphone'],
  });
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${opts.name}: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${opts.name}: HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return Object.assign(page, { errors });
}

/**
 * Poll `f` until it returns a truthy value; fail with `what` after `timeoutMs`.
 * @template T
 * @param {string} what
 * @param {() => Promise<T>|T} f
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export async function until(what, f, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
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
 * Save a PNG to docs/screenshots, scrolled to the top (the view a person gets first).
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
 * Text of an element, trimmed ('' if absent).
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
export async function text(page, selector) {
  const el = await page.$(selector);
  return el ? ((await el.textContent()) || '').trim() : '';
}
