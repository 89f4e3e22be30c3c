import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStateStore } from '../../src/state/open-state-store.js';
import { RedisStateStore } from '../../src/state/redis-state-store.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

/** Polls until `ok` holds (bounded: 10 s); the store's reconnects are real time, not the test's clock. */
async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('RedisStateStore on a real redis-server', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.close());

  it('gives the same answers as the memory store: counters with a lifetime, set, setIfAbsent, delete', async () => {
    const s = new RedisStateStore(redis.url, { timeoutMs: 1000 });
    await until(async () => (await s.get('nothing').then(() => true, () => false)), 'the connection');
    assert.equal(await s.increment('c', 1, 60_000), 1);
    assert.equal(await s.increment('c', 2, 60_000), 3);
    assert.equal(await s.increment('c', -3, 60_000), 0);
    assert.equal(await s.increment('short', 1, 50), 1);
    await until(async () => (await s.get('short')) === undefined, 'the counter to expire');
    assert.equal(await s.increment('short', 1, 50), 1, 'a new counter after expiry');
    assert.equal(await s.setIfAbsent('k', 'a', 60_000), true);
    assert.equal(await s.setIfAbsent('k', 'b', 60_000), false);
    assert.equal(await s.get('k'), 'a');
    await s.set('k', 'c', 60_000);
    assert.equal(await s.get('k'), 'c');
    await s.delete('k');
    assert.equal(await s.get('k'), undefined);
    const other = new RedisStateStore(redis.url, { timeoutMs: 1000 });
    await until(async () => (await other.increment('c', 1, 60_000).then(() => true, () => false)), 'the second connection');
    assert.equal(await s.get('c'), '1', 'two clients, one counter');
    await s.close();
    await other.close();
  });

  it('unreachable at start-up and when stopped mid-run: answers from the local view, reports each change once, and shares again once back', async () => {
    const changes: string[] = [];
    let errors = 0;
    await redis.stop();
    const s = openStateStore({ url: redis.url, timeoutMs: 300 }, { now: () => Date.now() }, {
      onState: (up, reason) => changes.push(up ? 'up' : `down${reason ? '' : ' (no reason)'}`),
      onError: () => (errors += 1),
    });
    assert.equal(await s.increment('n', 1, 60_000), 1, 'the local view counts');
    assert.equal(await s.increment('n', 1, 60_000), 2);
    assert.ok(errors >= 2);
    assert.equal(changes[0], 'down');
    await redis.start();
    await until(() => changes.includes('up'), 'the store to come back');
    await until(async () => (await s.increment('shared', 1, 60_000)) >= 1 && changes.at(-1) === 'up', 'a shared answer');
    const direct = new RedisStateStore(redis.url, { timeoutMs: 1000 });
    await until(async () => (await direct.get('shared').then((v) => v === '1', () => false)), 'the counter in redis');
    await redis.stop();
    const before = errors;
    assert.equal(await s.increment('n', 1, 60_000), 3, 'back to the local view, which kept its count');
    assert.ok(errors > before);
    assert.equal(changes.at(-1), 'down');
    assert.deepEqual(changes.filter((c, i) => c === changes[i - 1]), [], 'each change reported once');
    await redis.start();
    await s.close();
    await direct.close();
  });
});
