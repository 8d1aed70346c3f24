// Accessibility checks for the browser tests: axe-core (the engine behind Lighthouse's and
// Deque's audits) run inside the page against WCAG 2.2 A and AA, and a contrast ratio computed
// the way WCAG defines it, for what axe cannot judge (focus rings, borders, striped blocks).
//
// Not here: the pages themselves or how a test reaches them (browser.js).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

/** The rule sets a page must pass: WCAG 2.0, 2.1 and 2.2, levels A and AA. */
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

/**
 * Run axe-core on what `page` shows now and return its violations, each as
 * `{id, impact, help, nodes: [{target, summary}]}`.
 * @param {import('playwright-core').Page} page
 * @param {{include?: string, exclude?: string[]}} [opts]
 */
export async function axeViolations(page, opts = {}) {
  if (!(await page.evaluate(() => typeof (/** @type {any} */ (window)).axe === 'object'))) {
    // Evaluated over the DevTools protocol rather than added as a <script>: the pages'
    // Content-Security-Policy (`script-src 'self'`) refuses inline scripts, and rightly so.
    await page.evaluate(readFileSync(AXE, 'utf8'));
  }
  return page.evaluate(
    async ({ tags, include, exclude }) => {
      const axe = /** @type {any} */ (window).axe;
      const context = include || exclude.length ? { include: include ? [include] : undefined, exclude } : document;
      const result = await axe.run(context, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
      return result.violations.map((/** @type {any} */ v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((/** @type {any} */ n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
      }));
    },
    { tags: WCAG_TAGS, include: opts.include, exclude: opts.exclude ?? [] },
  );
}

/**
 * Fail unless axe-core finds no WCAG 2.2 A/AA violation on what `page` shows now.
 * @param {import('playwright-core').Page} page
 * @param {string} what the page and state, for the failure message ("consult as a student")
 * @param {{include?: string, exclude?: string[]}} [opts]
 */
export async function expectAccessible(page, what, opts = {}) {
  const violations = await axeViolations(page, opts);
  const report = violations
    .map((v) => `- ${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    at ${n.target}: ${n.summary}`).join('\n')}`)
    .join('\n');
  assert.equal(violations.length, 0, `axe-core found WCAG violations on ${what}:\n${report}`);
}

/**
 * WCAG's contrast ratio of two CSS colours (`rgb(...)`/`rgba(...)` as `getComputedStyle` gives
 * them; an alpha below 1 is composited over `under`, white unless given).
 * @param {string} a
 * @param {string} b
 * @param {string} [under]
 */
export function contrastRatio(a, b, under = 'rgb(255, 255, 255)') {
  const base = parse(under);
  const la = luminance(over(parse(a), base));
  const lb = luminance(over(parse(b), base));
  const [hi, lo] = la > lb ? [la, lb] : [lb, la];
  return (hi + 0.05) / (lo + 0.05);
}

/** @param {string} css @returns {number[]} r, g, b (0-255), alpha (0-1) */
function parse(css) {
  const m = /rgba?\(([^)]+)\)/.exec(css);
  assert.ok(m, `not a computed colour: ${css}`);
  const parts = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
  return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
}

/** @param {number[]} fg @param {number[]} bg */
function over(fg, bg) {
  const a = fg[3];
  return [0, 1, 2].map((i) => fg[i] * a + bg[i] * (1 - a));
}

/** @param {number[]} rgb */
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
