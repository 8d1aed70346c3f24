// The contrast ratio the accessibility tests compute, against WCAG's own reference values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contrastRatio } from '../lib/axe.js';

test('black on white is 21:1, a colour on itself 1:1', () => {
  assert.equal(contrastRatio('rgb(0, 0, 0)', 'rgb(255, 255, 255)'), 21);
  assert.equal(contrastRatio('rgb(10, 20, 30)', 'rgb(10, 20, 30)'), 1);
});

test('#767676 on white is the smallest grey that passes 4.5:1', () => {
  assert.ok(Math.abs(contrastRatio('rgb(118, 118, 118)', 'rgb(255, 255, 255)') - 4.54) < 0.01);
  assert.ok(contrastRatio('rgb(119, 119, 119)', 'rgb(255, 255, 255)') < 4.5);
});

test('a translucent colour is composited over what is under it', () => {
  // Half-transparent black over white is rgb(127.5, ...): about 3.95:1 against white.
  const r = contrastRatio('rgba(0, 0, 0, 0.5)', 'rgb(255, 255, 255)');
  assert.ok(r > 3.9 && r < 4.0, String(r));
});
