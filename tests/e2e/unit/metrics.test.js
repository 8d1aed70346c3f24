// The Prometheus text parser the browser specs read /metrics with (tests/e2e/lib/metrics.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetrics, parseSamples } from '../lib/metrics.js';

const TEXT = `# HELP bedside_control_frames_dropped_total Control frames dropped, by reason
# TYPE bedside_control_frames_dropped_total counter
bedside_control_frames_dropped_total{reason="observer"} 30
bedside_control_frames_dropped_total{reason="not_holder"} 4
bedside_rooms 1
bedside_sessions{role="doctor",worker="0"} 2
bedside_sessions{worker="1",role="doctor"} 1
bedside_join_seconds_bucket{role="robot",le="+Inf"} 3
odd_label{path="a \\"quoted\\" \\\\ value",x="1"} 7 1700000000000
`;

test('samples by name and exact labels, 0 when absent', () => {
  const m = parseMetrics(TEXT);
  assert.equal(m.value('bedside_control_frames_dropped_total', { reason: 'observer' }), 30);
  assert.equal(m.value('bedside_control_frames_dropped_total', { reason: 'not_holder' }), 4);
  assert.equal(m.value('bedside_control_frames_dropped_total', { reason: 'estop_latched' }), 0);
  assert.equal(m.value('bedside_control_frames_dropped_total'), 0, 'labels must match exactly');
  assert.equal(m.value('bedside_rooms'), 1);
  assert.equal(m.value('bedside_join_seconds_bucket', { le: '+Inf', role: 'robot' }), 3);
});

test('label order does not matter; sum adds the matching samples', () => {
  const m = parseMetrics(TEXT);
  assert.equal(m.value('bedside_sessions', { worker: '0', role: 'doctor' }), 2);
  assert.equal(m.sum('bedside_sessions', { role: 'doctor' }), 3);
  assert.equal(m.sum('bedside_control_frames_dropped_total'), 34);
});

test('escaped label values and timestamps', () => {
  const odd = parseSamples(TEXT).find((s) => s.name === 'odd_label');
  assert.deepEqual(odd, { name: 'odd_label', labels: { path: 'a "quoted" \\ value', x: '1' }, value: 7 });
});

test('garbage is an error, not a zero', () => {
  assert.throws(() => parseSamples('bedside_rooms{role="x} 1\n'));
  assert.throws(() => parseSamples('bedside_rooms one\n'));
});
