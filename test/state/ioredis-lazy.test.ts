/**
 * A process whose rules configure no Redis store never loads ioredis: its RESP3 `VerbatimString`
 * subclasses `String`, which leaves `String.prototype` in V8's dictionary mode for the whole process,
 * so that every string method the SMTP paths call goes through V8's generic property load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { openStateStore } from '../../src/state/open-state-store.js';
import '../../src/edge/edge.js';

test('the edge and a memory state store load no ioredis module', async () => {
  const store = openStateStore(undefined, { now: () => Date.now() }, { onState: () => undefined, onError: () => undefined });
  await store.set('k', 'v', 1000);
  assert.equal(await store.get('k'), 'v');
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('/ioredis/'));
  assert.deepEqual(loaded, []);
});
