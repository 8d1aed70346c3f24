// The path a consult takes to the media node, read from getStats()' selected candidate pair
// (web/js/stats.js): plain UDP, ICE-TCP, or a TURN relay and how the browser reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarise, describePath, describe } from '../../../web/js/stats.js';

/**
 * A stats report with one selected pair whose local candidate is `local`.
 * @param {Record<string, unknown>} local
 */
function report(local) {
  const entries = [
    { id: 'T1', type: 'transport', selectedCandidatePairId: 'P1' },
    { id: 'P0', type: 'candidate-pair', localCandidateId: 'L0', nominated: false, state: 'failed' },
    { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', nominated: true, state: 'succeeded', currentRoundTripTime: 0.02 },
    { id: 'L0', type: 'local-candidate', candidateType: 'host', protocol: 'udp' },
    { id: 'L1', type: 'local-candidate', ...local },
  ];
  const map = new Map(entries.map((e) => [e.id, e]));
  return /** @type {RTCStatsReport} */ (/** @type {unknown} */ (map));
}

test('the selected pair says udp, tcp or relay over udp/tcp/tls', () => {
  const path = (/** @type {Record<string, unknown>} */ l) => summarise(report(l), 'in').path;
  assert.deepEqual(path({ candidateType: 'host', protocol: 'udp' }), { kind: 'udp', relayProtocol: null });
  assert.deepEqual(path({ candidateType: 'host', protocol: 'tcp' }), { kind: 'tcp', relayProtocol: null });
  assert.deepEqual(path({ candidateType: 'relay', protocol: 'udp', relayProtocol: 'tls' }), { kind: 'relay', relayProtocol: 'tls' });
  assert.equal(describePath(path({ candidateType: 'relay', protocol: 'udp', relayProtocol: 'tcp' })), 'relay (TURN/TCP)');
  assert.equal(describePath(path({ candidateType: 'srflx', protocol: 'udp' })), 'UDP');
  assert.equal(describePath(null), '–');
});

test('the badge names the path only when it is not plain UDP', () => {
  const base = { rttMs: 20, lossPct: 0, kbps: 800, fps: 20, framesDecoded: 10, width: 640, height: 360, quality: /** @type {'good'} */ ('good') };
  assert.equal(describe({ ...base, path: { kind: 'udp', relayProtocol: null } }), 'RTT 20 ms · loss 0.0 % · 800 kbit/s');
  assert.equal(describe({ ...base, path: { kind: 'relay', relayProtocol: 'tls' } }), 'RTT 20 ms · loss 0.0 % · 800 kbit/s · relay (TURN/TLS)');
});
