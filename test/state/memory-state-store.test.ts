import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';

function clockAt(start: number): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('MemoryStateStore', () => {
  it('counts within a lifetime, and starts again after it', async () => {
    const clock = clockAt(1000);
    const s = new MemoryStateStore(100, clock);
    assert.equal(await s.increment('c', 1, 60_000), 1);
    assert.equal(await s.increment('c', 2, 60_000), 3);
    clock.advance(59_999);
    assert.equal(await s.increment('c', 1, 60_000), 4);
    clock.advance(1);
    assert.equal(await s.increment('c', 1, 60_000), 1);
  });

  it('sets once with setIfAbsent, and forgets at expiry', async () => {
    const clock = clockAt(0);
    const s = new MemoryStateStore(100, clock);
    assert.equal(await s.setIfAbsent('k', 'a', 10), true);
    assert.equal(await s.setIfAbsent('k', 'b', 10), false);
    assert.equal(await s.get('k'), 'a');
    clock.advance(10);
    assert.equal(await s.get('k'), undefined);
    await s.set('k', 'c', 10);
    await s.delete('k');
    assert.equal(await s.get('k'), undefined);
  });

  it('holds no more than its bound, whatever the keys', async () => {
    const s = new MemoryStateStore(50, clockAt(0));
    for (let i = 0; i < 10_000; i++) await s.set(`k${i}`, 'v', 60_000);
    assert.equal(s.size, 50);
    assert.equal(await s.get('k9999'), 'v');
    assert.equal(await s.get('k0'), undefined);
  });
});
