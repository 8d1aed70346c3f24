// Events: the presence list as snapshot plus deltas, and tolerant parsing of server messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPresence, parseServerEvent } from '../../../web/js/events.js';

test('presence: snapshot, then joined/left deltas', () => {
  /** @param {string} id */
  const p = (id) => ({ id, sub: `u-${id}`, role: /** @type {'doctor'} */ ('doctor'), can_control: false });
  let list = applyPresence([], { type: 'presence', participants: [p('s1'), p('s2')] });
  list = applyPresence(list, { type: 'joined', participant: p('s3') });
  list = applyPresence(list, { type: 'joined', participant: p('s3') }); // repeated: no duplicate
  list = applyPresence(list, { type: 'left', id: 's1' });
  list = applyPresence(list, { type: 'lease', holder: null, epoch: 1, reason: 'released' });
  assert.deepEqual(list.map((x) => x.id), ['s2', 's3']);
});

test('server events: known types parse, anything else is null', () => {
  assert.deepEqual(parseServerEvent('{"type":"lease","holder":"s1","epoch":3,"reason":"handoff"}'),
    { type: 'lease', holder: 's1', epoch: 3, reason: 'handoff' });
  assert.equal(parseServerEvent('{"type":"fly"}'), null);
  assert.equal(parseServerEvent('{'), null);
  assert.equal(parseServerEvent('null'), null);
  assert.equal(parseServerEvent(new ArrayBuffer(3)), null);
});
