// The drive loop: frames only while an input is active and sending is enabled, exactly one zero
// frame on release, sequence numbers strictly increasing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DriveSender, merge } from '../../../web/js/drive.js';
import { decode } from '../../../web/js/control_frame.js';
import { backoffMs } from '../../../web/js/session.js';

function setup() {
  /** @type {import('../../../web/js/control_frame.js').ControlFrame[]} */
  const sent = [];
  const input = { name: 'test', axes: { x: 0, y: 0, z: 0, active: false }, read() { return this.axes; } };
  let t = 1000;
  const d = new DriveSender({
    send: (b) => { sent.push(decode(b)); return true; },
    inputs: [input],
    now: () => (t += 33),
  });
  return { d, sent, input };
}

test('sends while active, one zero frame on release, nothing while idle', () => {
  const { d, sent, input } = setup();
  d.setEnabled(true);
  d.tick();
  assert.equal(sent.length, 0, 'idle: nothing');
  input.axes = { x: 0.5, y: 0, z: -1, active: true };
  d.tick();
  d.tick();
  d.tick();
  assert.equal(sent.length, 3);
  assert.deepEqual(sent.map((f) => [f.linearX, f.angularZ]), [[16384, -32767], [16384, -32767], [16384, -32767]]);
  input.axes = { x: 0, y: 0, z: 0, active: false };
  d.tick();
  d.tick();
  d.tick();
  assert.equal(sent.length, 4, 'exactly one zero frame');
  const last = sent[3];
  assert.deepEqual([last.kind, last.linearX, last.linearY, last.angularZ], ['drive', 0, 0, 0]);
  assert.deepEqual(sent.map((f) => f.seq), [1, 2, 3, 4]);
  assert.ok(sent.every((f) => f.epoch === 0), 'the SFU stamps the epoch');
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i].timestampMs > sent[i - 1].timestampMs);
});

test('disabled (not the lease holder): never sends; disabling while moving sends one zero', () => {
  const { d, sent, input } = setup();
  input.axes = { x: 1, y: 0, z: 0, active: true };
  d.tick();
  assert.equal(sent.length, 0);
  d.setEnabled(true);
  d.tick();
  d.setEnabled(false);
  d.tick();
  assert.deepEqual(sent.map((f) => f.linearX), [32767, 0]);
});

test('a new connection restarts the sequence', () => {
  const { d, sent, input } = setup();
  d.setEnabled(true);
  input.axes = { x: 1, y: 0, z: 0, active: true };
  d.tick();
  d.tick();
  d.resetSequence();
  d.tick();
  assert.deepEqual(sent.map((f) => f.seq), [1, 2, 1]);
});

test('inputs merge and clamp', () => {
  assert.deepEqual(merge([
    { x: 0.8, y: 0, z: 0.5, active: true },
    { x: 0.8, y: -0.2, z: 0, active: false },
  ]), { x: 1, y: -0.2, z: 0.5, active: true });
});

test('reconnect back-off doubles up to 10 s, with jitter', () => {
  assert.equal(backoffMs(1, 0.5), 500);
  assert.equal(backoffMs(2, 0.5), 1000);
  assert.equal(backoffMs(3, 0.5), 2000);
  assert.equal(backoffMs(10, 0.5), 10000);
  assert.equal(backoffMs(1, 0), 400);
  assert.ok(backoffMs(1, 0.999) <= 600);
});
