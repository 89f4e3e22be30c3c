import type { StateConfig } from '../config/limits-schema.js';
import type { Clock } from '../runtime/clock.js';
import { FallbackStateStore, type FallbackEvents } from './fallback-state-store.js';
import { MemoryStateStore } from './memory-state-store.js';
import { RedisStateStore } from './redis-state-store.js';
import type { StateStore } from './state-store.js';

/**
 * The one store of a process: memory when `state` is absent, otherwise Redis with this process's
 * memory behind it. Never fails at start-up: an unreachable server is reported through `events`
 * and the local view answers until it comes back.
 */
export function openStateStore(config: StateConfig | undefined, clock: Clock, events: FallbackEvents): StateStore {
  const local = new MemoryStateStore(undefined, clock);
  if (!config) return local;
  // ioredis reports its connection from later turns of the event loop, once `fallback` exists.
  const shared = new RedisStateStore(config.url, {
    timeoutMs: config.timeoutMs,
    onConnection: (up, reason) => fallback.connection(up, reason),
  });
  const fallback = new FallbackStateStore(shared, local, events);
  return fallback;
}
