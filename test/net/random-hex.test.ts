import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../../src/net/random-hex.js';

test('random hex has two digits per byte asked for, never repeats across refills of its block, and serves a request larger than a block', () => {
  const seen = new Set<string>();
  // 5 bytes (a queue id's) 3,000 times is several 4 KiB blocks.
  for (let i = 0; i < 3000; i++) {
    const hex = randomHex(5);
    assert.match(hex, /^[0-9a-f]{10}$/);
    seen.add(hex);
  }
  assert.equal(seen.size, 3000);
  assert.match(randomHex(5000), /^[0-9a-f]{10000}$/);
  assert.notEqual(randomHex(16), randomHex(16));
});
