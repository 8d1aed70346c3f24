// The robot page's watchdog: the same cases as the Rust agent's (src/agent/watchdog.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Watchdog } from '../../../web/js/watchdog.js';
import { encode, driveFrame } from '../../../web/js/control_frame.js';

/**
 * @param {number} epoch
 * @param {number} seq
 * @param {number} x
 */
function drive(epoch, seq, x) {
  return encode({ ...driveFrame(seq, 0, x, 0, 0), epoch });
}

/**
 * @param {number} epoch
 * @param {number} seq
 */
function stop(epoch, seq) {
  return encode({ ...driveFrame(seq, 0, 0, 0, 0), kind: 'stop', epoch });
}

test('drives, then stops when the driver goes quiet (deadman)', () => {
  const w = new Watchdog(300);
  const out = w.onFrame(drive(1, 1, 500), 1000);
  assert.ok(!out.ignored && out.drive);
  assert.equal(out.drive.linearX, 500);
  assert.equal(out.drive.reason, 'frame');
  assert.equal(w.poll(1299), null);
  const d = w.poll(1300);
  assert.ok(d);
  assert.equal(d.linearX, 0);
  assert.equal(d.reason, 'deadman');
  assert.equal(w.poll(6000), null, 'already stopped: nothing more to say');
});

test('old epochs and stale sequence numbers are ignored', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(2, 10, 100), 0);
  assert.deepEqual(w.onFrame(drive(1, 99, 900), 0), { ignored: 'old_epoch' });
  assert.deepEqual(w.onFrame(drive(2, 10, 900), 0), { ignored: 'stale' });
  assert.deepEqual(w.onFrame(drive(2, 9, 900), 0), { ignored: 'stale' });
  const next = w.onFrame(drive(3, 1, 200), 0);
  assert.ok(!next.ignored && next.drive, 'a new epoch starts a new sequence space');
  assert.deepEqual(w.onFrame(new TextEncoder().encode('short'), 0), { ignored: 'malformed' });
  assert.equal(w.current.linearX, 200);
});

test('a stop frame stops at once, and older epochs stay ignored after it', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(1, 1, 100), 0);
  const out = w.onFrame(stop(2, 1), 0);
  assert.ok(!out.ignored && out.drive);
  assert.deepEqual(out.drive, { linearX: 0, linearY: 0, angularZ: 0, epoch: 2, reason: 'stop' });
  assert.deepEqual(w.onFrame(drive(1, 2, 100), 0), { ignored: 'old_epoch' });
  assert.equal(w.nextDeadline(), null, 'no deadman pending after a stop');
});

test('e-stop latches until cleared', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(1, 1, 100), 0);
  const d = w.onEstop(true);
  assert.ok(d);
  assert.equal(d.reason, 'estop');
  assert.deepEqual(w.onFrame(drive(1, 2, 100), 0), { ignored: 'estop' });
  assert.equal(w.current.linearX, 0);
  assert.equal(w.onEstop(false), null);
  const out = w.onFrame(drive(1, 3, 100), 0);
  assert.ok(!out.ignored && out.drive);
  assert.equal(out.drive.linearX, 100);
});

test('a repeated identical command is not a change, but still feeds the deadman', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(1, 1, 100), 0);
  const again = w.onFrame(drive(1, 2, 100), 250);
  assert.deepEqual(again, { drive: null });
  assert.equal(w.poll(500), null, 'the second frame moved the deadline');
  assert.ok(w.poll(550));
});

test('losing the connection stops a moving robot', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(4, 1, 300), 0);
  const d = w.connectionLost();
  assert.ok(d);
  assert.equal(d.linearX, 0);
  assert.equal(w.connectionLost(), null);
});

test('a lease event stops the robot when the stop frame was lost (Rust: a_lease_event_stops_the_robot_when_the_stop_frame_was_lost)', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(1, 1, 100), 0);
  const d = w.onLease(2);
  assert.ok(d, 'stopped');
  assert.deepEqual([d.linearX, d.epoch, d.reason], [0, 2, 'stop']);
  assert.equal(w.nextDeadline(), null, 'no deadman pending after the lease change');
  assert.deepEqual(w.onFrame(drive(1, 2, 100), 0), { ignored: 'old_epoch' });
  // The same epoch again (the new holder's frames came first) changes nothing.
  const next = w.onFrame(drive(3, 1, 100), 0);
  assert.ok(!next.ignored && next.drive);
  assert.equal(w.onLease(3), null);
  assert.equal(w.current.linearX, 100);
});

test('a reconnection keeps the latch and starts still (Rust: a_reconnection_keeps_the_latch_and_starts_still)', () => {
  const w = new Watchdog(300);
  w.onFrame(drive(5, 1, 100), 0);
  w.onEstop(true);
  const d = w.reconnected();
  assert.deepEqual([d.linearX, d.reason], [0, 'estop']);
  assert.ok(w.estopLatched(), 'the latch survives the reconnection');
  // A restarted server's epochs begin again at 1: obeyed once the latch is cleared.
  assert.deepEqual(w.onFrame(drive(1, 1, 100), 0), { ignored: 'estop' });
  w.onEstop(false);
  const out = w.onFrame(drive(1, 2, 100), 0);
  assert.ok(!out.ignored && out.drive);
  assert.equal(out.drive.linearX, 100);
});
