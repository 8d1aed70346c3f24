// The SDP text work of an ICE restart (web/js/ice_restart.js): the fragment the browser PATCHes
// and the answer it rebuilds from the server's reply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iceCredentials, restartFragment, splicedAnswer } from '../../../web/js/ice_restart.js';

const OFFER = [
  'v=0', 'o=- 4611731400430051336 3 IN IP4 127.0.0.1', 's=-', 't=0 0',
  'a=group:BUNDLE 0 1 2', 'a=extmap-allow-mixed', 'a=msid-semantic: WMS',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:NEWu', 'a=ice-pwd:newbrowserpassword0123456',
  'a=ice-options:trickle', 'a=mid:0', 'a=recvonly',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:NEWu', 'a=ice-pwd:newbrowserpassword0123456', 'a=mid:1',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=ice-ufrag:NEWu', 'a=ice-pwd:newbrowserpassword0123456', 'a=mid:2', '',
].join('\r\n');

const ANSWER = [
  'v=0', 'o=str0m-123 7 2 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2', 'a=ice-lite',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:oldS', 'a=ice-pwd:oldserverpassword01234567',
  'a=mid:0', 'a=sendonly', 'a=candidate:1 1 udp 2130706175 127.0.0.1 50000 typ host', 'a=end-of-candidates',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:oldS', 'a=ice-pwd:oldserverpassword01234567',
  'a=mid:1', 'a=candidate:1 1 udp 2130706175 127.0.0.1 50000 typ host',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=ice-ufrag:oldS', 'a=ice-pwd:oldserverpassword01234567', 'a=mid:2', '',
].join('\r\n');

test('the fragment carries the new credentials on the bundle\'s first m-line, no candidates', () => {
  const f = restartFragment(OFFER);
  assert.deepEqual(iceCredentials(f), { ufrag: 'NEWu', pwd: 'newbrowserpassword0123456' });
  assert.deepEqual(f.split('\r\n').filter(Boolean), [
    'a=group:BUNDLE 0 1 2', 'a=ice-options:trickle', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0',
    'a=ice-ufrag:NEWu', 'a=ice-pwd:newbrowserpassword0123456',
  ]);
  assert.ok(f.endsWith('\r\n'));
  assert.throws(() => restartFragment('v=0\r\nm=audio 9 X 0\r\n'), /no ICE credentials/);
});

test('the answer gets the server\'s new credentials everywhere, its candidates and a new version', () => {
  const reply = 'a=ice-ufrag:newS\r\na=ice-pwd:newserverpassword01234567\r\na=candidate:1 1 udp 2130706175 127.0.0.1 50000 typ host ufrag newS\r\n';
  const a = splicedAnswer(ANSWER, reply);
  assert.equal(a.match(/a=ice-ufrag:newS/g)?.length, 3);
  assert.equal(a.match(/a=ice-pwd:newserverpassword01234567/g)?.length, 3);
  assert.ok(!a.includes('oldS') && !a.includes('oldserverpassword'));
  assert.ok(a.includes('o=str0m-123 7 3 IN IP4 0.0.0.0'), 'the version is raised');
  const cands = a.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
  assert.deepEqual(cands, ['a=candidate:1 1 udp 2130706175 127.0.0.1 50000 typ host ufrag newS']);
  // The reply's candidates sit in the first m-line, before the second one starts.
  assert.ok(a.indexOf('ufrag newS') < a.indexOf('m=audio'));
  // A reply without candidates keeps the answer's own.
  const bare = splicedAnswer(ANSWER, 'a=ice-ufrag:newS\r\na=ice-pwd:newserverpassword01234567\r\n');
  assert.equal(bare.split('\r\n').filter((l) => l.startsWith('a=candidate:')).length, 2);
  assert.throws(() => splicedAnswer(ANSWER, 'a=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n'), /no ICE credentials/);
});
