import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newSessionId, sessionIdOf } from '../../src/net/session-id.js';

test("session IDs keep smtp-server's form and never repeat, across the refills of their random block", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2500; i++) {
    const id = newSessionId();
    assert.match(id, /^[0-9a-v]{16}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 2500);
});

test("property: the ID of any ten bytes is smtp-server's, the bytes as a number in base 32 padded to 16 digits", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), (bytes) => {
      const smtpServers = BigInt(`0x${Buffer.from(bytes).toString('hex')}`).toString(32).padStart(16, '0');
      assert.equal(sessionIdOf(bytes), smtpServers);
    }),
    { numRuns: 5000, examples: [[new Uint8Array(10)], [new Uint8Array(10).fill(255)], [Uint8Array.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1])]] },
  );
});
