import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newSessionId } from '../../src/net/session-id.js';

test("session IDs keep smtp-server's form and never repeat, across the refills of their random block", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2500; i++) {
    const id = newSessionId();
    assert.match(id, /^[0-9a-v]{16}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 2500);
});
