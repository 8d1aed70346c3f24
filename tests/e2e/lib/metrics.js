// The Prometheus text format (version 0.0.4) as `GET /metrics` serves it, parsed once for every
// spec: samples by name and labels, label order and escaping taken care of.
//
//   const m = parseMetrics(await (await fetch(`${base}/metrics`)).text());
//   m.value('bedside_control_frames_dropped_total', { reason: 'observer' })   // 0 when absent
//
// Not here: fetching (server.js `metrics()`), or what the numbers mean (docs/operations.md).

/**
 * One sample line.
 * @typedef {object} Sample
 * @property {string} name
 * @property {Record<string, string>} labels
 * @property {number} value
 */

/**
 * Label block of a sample line, `{a="x",b="y \"quoted\""}` without the braces.
 * @param {string} s
 * @param {string} line for the error message
 * @returns {Record<string, string>}
 */
function parseLabels(s, line) {
  /** @type {Record<string, string>} */
  const labels = {};
  let i = 0;
  while (i < s.length) {
    while (s[i] === ',' || s[i] === ' ') i++;
    if (i >= s.length) break;
    const eq = s.indexOf('=', i);
    if (eq < 0 || s[eq + 1] !== '"') throw new Error(`bad label in metrics line: ${line}`);
    const key = s.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        j++;
        value += s[j] === 'n' ? '\n' : s[j];
      } else {
        value += s[j];
      }
    }
    if (j >= s.length) throw new Error(`unterminated label value in metrics line: ${line}`);
    labels[key] = value;
    i = j + 1;
  }
  return labels;
}

/**
 * @param {string} text the body of `GET /metrics`
 * @returns {Sample[]}
 */
export function parseSamples(text) {
  /** @type {Sample[]} */
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name;
    /** @type {Record<string, string>} */
    let labels = {};
    let rest;
    if (brace >= 0 && (space < 0 || brace < space)) {
      const close = line.lastIndexOf('}');
      if (close < brace) throw new Error(`bad metrics line: ${line}`);
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, close), line);
      rest = line.slice(close + 1).trim();
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    // "value [timestamp]"
    const word = rest.split(/\s+/)[0];
    const value = word === '+Inf' ? Infinity : word === '-Inf' ? -Infinity : Number(word);
    if (!name || (Number.isNaN(value) && word !== 'NaN')) throw new Error(`bad metrics line: ${line}`);
    out.push({ name, labels, value });
  }
  return out;
}

export class Metrics {
  /** @param {string} text */
  constructor(text) {
    this.samples = parseSamples(text);
  }

  /**
   * The sample with exactly these labels; 0 when absent (a counter nobody has touched yet).
   * @param {string} name
   * @param {Record<string, string>} [labels]
   */
  value(name, labels = {}) {
    const want = Object.entries(labels);
    for (const s of this.samples) {
      if (s.name !== name) continue;
      const have = Object.keys(s.labels);
      if (have.length === want.length && want.every(([k, v]) => s.labels[k] === v)) return s.value;
    }
    return 0;
  }

  /**
   * Sum over every sample of `name` whose labels include `labels`.
   * @param {string} name
   * @param {Record<string, string>} [labels]
   */
  sum(name, labels = {}) {
    const want = Object.entries(labels);
    return this.samples
      .filter((s) => s.name === name && want.every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
  }
}

/** @param {string} text */
export function parseMetrics(text) {
  return new Metrics(text);
}
