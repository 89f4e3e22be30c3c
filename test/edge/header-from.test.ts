import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { headerFromAddress, parsedFromAddress } from '../../src/edge/header-from.js';

const head = (value: string): Buffer => Buffer.from(`Subject: x\r\nFrom:${value}\r\nTo: <user@example.test>\r\n\r\n`);

test('the plain From: forms are read as the full parser reads them', () => {
  for (const [value, address] of [
    [' <load@bench.test>', 'load@bench.test'],
    [' alice@example.org', 'alice@example.org'],
    [' Alice Example <alice.b+tag@example.org>', 'alice.b+tag@example.org'],
    ['<a@b>', 'a@b'],
    [' "Quoted, Name" <q@example.org>', 'q@example.org'],
    [' Mallory <m@example.org>, Eve <e@example.org>', 'm@example.org'],
    [' undisclosed-recipients:;', undefined],
  ] as const) {
    assert.equal(headerFromAddress(head(value)), address, value);
    assert.equal(parsedFromAddress(value), address, value);
  }
});

test('whatever the From: field holds, the result is the full parser\'s (property)', () => {
  const piece = fc.constantFrom('a', 'Z', '0', '.', '-', '_', '+', '@', '<', '>', ' ', '"', ',', ';', ':', '(', ')', '\\', '[', ']', 'é', '\t', '=', "'", 'b.example', 'x@y.test');
  const value = fc.array(piece, { maxLength: 24 }).map((ps) => ps.join(''));
  fc.assert(
    fc.property(value, (v) => {
      assert.equal(headerFromAddress(head(v)), parsedFromAddress(v.replace(/\r?\n(?=[ \t])/g, '')), JSON.stringify(v));
    }),
    { numRuns: 3000 },
  );
});
