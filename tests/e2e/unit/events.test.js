// Events: the presence list as snapshot plus deltas, and tolerant parsing of server messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPresence, parseServerEvent, describeError } from '../../../web/js/events.js';

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

test('two-way events parse: slots, speaking, media; participants say what they send', () => {
  assert.deepEqual(parseServerEvent('{"type":"slots","audio":["s2",null],"video":[null]}'),
    { type: 'slots', audio: ['s2', null], video: [null] });
  assert.deepEqual(parseServerEvent('{"type":"speaking","ids":["s3","s2"]}'), { type: 'speaking', ids: ['s3', 's2'] });
  assert.deepEqual(parseServerEvent('{"type":"media","id":"s2","audio_muted":true,"video_muted":false}'),
    { type: 'media', id: 's2', audio_muted: true, video_muted: false });
  const joined = parseServerEvent('{"type":"joined","participant":{"id":"s4","sub":"u","role":"doctor","can_control":false,"sends_audio":true,"sends_video":false}}');
  assert.ok(joined && joined.type === 'joined');
  assert.deepEqual([joined.participant.sends_audio, joined.participant.sends_video], [true, false]);
  assert.deepEqual(parseServerEvent('{"type":"estop","latched":true,"by":"","robot":true}'), { type: 'estop', latched: true, by: '', robot: true });
});

test('errors in words: revocations end the session, the rest do not; unknown codes keep the server\'s words', () => {
  for (const code of ['replaced', 'booking_cancelled', 'invitation_removed', 'user_disabled', 'credential_rotated', 'session_ended']) {
    assert.equal(describeError(code, 'x').ends, true, code);
  }
  for (const code of ['control_revoked', 'rate_limited', 'robot_estop', 'forbidden', 'not_holder', 'expired']) {
    assert.equal(describeError(code, 'x').ends, false, code);
  }
  assert.equal(describeError('booking_cancelled', 'the booking was cancelled').text, 'Your booking was cancelled; you have left the room.');
  assert.equal(describeError('expired', 'that participant\'s session has expired').text, 'that participant\'s session has expired');
  assert.equal(describeError('new_code', 'Something new').text, 'Something new');
});
