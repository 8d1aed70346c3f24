// The web client's control frame codec against the byte vectors of the Rust tests
// (proto/src/control_frame.rs and sfu/src/control_gate.rs), so both ends agree on the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_LEN, encode, decode, driveFrame, axis, timestamp, isStill, FrameError,
} from '../../../web/js/control_frame.js';

test('layout is as documented (Rust: layout_is_as_documented)', () => {
  const b = encode({
    kind: 'drive', epoch: 0x04030201, seq: 7, timestampMs: 9, linearX: -1, linearY: 2, angularZ: 3, buttons: 0x8001,
  });
  assert.equal(b.length, FRAME_LEN);
  assert.deepEqual([...b], [
    1, 1, 0, 0, // version, kind drive, flags
    1, 2, 3, 4, // epoch 0x04030201 little-endian
    7, 0, 0, 0, // seq
    9, 0, 0, 0, // timestamp_ms
    0xff, 0xff, // linear_x -1
    2, 0, // linear_y
    3, 0, // angular_z
    0x01, 0x80, // buttons 0x8001
  ]);
});

test('the SFU stop frame decodes (Rust: stop_frames_count_up: stop(5, 1, 1000))', () => {
  const bytes = new Uint8Array([1, 2, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const f = decode(bytes);
  assert.deepEqual(f, {
    kind: 'stop', epoch: 5, seq: 1, timestampMs: 1000, linearX: 0, linearY: 0, angularZ: 0, buttons: 0,
  });
  assert.ok(isStill(f));
});

test('drive frame as the control gate tests build it: drive(1, 20, 100, 0, -50)', () => {
  const b = encode(driveFrame(1, 20, 100, 0, -50));
  assert.deepEqual([...b], [1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 100, 0, 0, 0, 0xce, 0xff, 0, 0]);
  assert.deepEqual(decode(b), driveFrame(1, 20, 100, 0, -50));
});

test('round trip of extreme values', () => {
  const f = {
    kind: /** @type {'drive'} */ ('drive'), epoch: 0xffffffff, seq: 0xfffffffe, timestampMs: 0x80000000,
    linearX: -32768, linearY: 32767, angularZ: 0, buttons: 0xffff,
  };
  assert.deepEqual(decode(encode(f)), f);
  // decode accepts a view into a larger buffer (an offset DataView must not misread)
  const big = new Uint8Array(40);
  big.set(encode(f), 8);
  assert.deepEqual(decode(big.subarray(8, 32)), f);
  assert.deepEqual(decode(encode(f).buffer), f);
});

test('rejects bad input with the Rust reasons (Rust: rejects_bad_input_with_reason)', () => {
  /** @param {Uint8Array} b */
  const reason = (b) => {
    try {
      decode(b);
    } catch (e) {
      assert.ok(e instanceof FrameError);
      return e.reason;
    }
    return 'ok';
  };
  assert.equal(reason(new Uint8Array(0)), 'wrong_size');
  assert.equal(reason(new Uint8Array(25).fill(1)), 'wrong_size');
  const b = encode(driveFrame(1, 1, 0, 0, 0));
  b[0] = 9;
  assert.equal(reason(b), 'bad_version');
  b[0] = 1;
  b[1] = 0;
  assert.equal(reason(b), 'bad_kind');
  b[1] = 1;
  b[3] = 1;
  assert.equal(reason(b), 'bad_flags');
  b[3] = 0;
  assert.equal(reason(b), 'ok');
});

test('axis maps [-1, 1] to i16 and clamps', () => {
  assert.equal(axis(0), 0);
  assert.equal(axis(1), 32767);
  assert.equal(axis(-1), -32767);
  assert.equal(axis(0.5), 16384);
  assert.equal(axis(7), 32767);
  assert.equal(axis(-7), -32767);
  assert.equal(axis(Number.NaN), 0);
});

test('timestamp truncates to u32 ms and wraps', () => {
  assert.equal(timestamp(1234.9), 1234);
  assert.equal(timestamp(2 ** 32 + 5.5), 5);
});
