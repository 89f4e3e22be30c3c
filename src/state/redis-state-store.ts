/**
 * The StateStore on Redis or Valkey, shared by every worker and node that names the same server.
 * Commands fail fast while the server is unreachable (no offline queue, a bounded wait) so that the
 * FallbackStateStore in front answers from the local view at once; ioredis reconnects by itself.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { StateStore } from './state-store.js';

/**
 * ioredis, loaded by the first store made rather than with this module: its RESP3 `VerbatimString`
 * subclasses `String`, which leaves `String.prototype` in V8's dictionary mode for the life of the
 * process, and then every string method a hot path calls (`charCodeAt`, `slice`, `indexOf`, …) is
 * looked up through V8's generic load (`Builtins_LoadIC`) instead of being inlined. A process with no
 * Redis store (the default) never loads it.
 */
function loadIoredis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}

/** INCRBY, and a lifetime for a counter that has none yet (a new one), in one atomic step. */
const INCREMENT_WITH_TTL = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

export interface RedisStoreOptions {
  /** Bound on each command, and on each connection attempt. */
  timeoutMs: number;
  /** Told when the connection is up or lost, so the owner can log and count it. */
  onConnection?(up: boolean, reason?: string): void;
}

export class RedisStateStore implements StateStore {
  private readonly redis: Redis;

  constructor(url: string, options: RedisStoreOptions) {
    const { Redis: Client } = loadIoredis();
    this.redis = new Client(url, {
      keyPrefix: 'portcullis:',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: options.timeoutMs,
      // Reconnect for ever, at most every two seconds: the store coming back ends the degraded mode.
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.defineCommand('incrementWithTtl', { numberOfKeys: 1, lua: INCREMENT_WITH_TTL });
    this.redis.on('ready', () => options.onConnection?.(true));
    this.redis.on('error', (err: Error) => options.onConnection?.(false, err.message));
    this.redis.on('close', () => options.onConnection?.(false, 'connection closed'));
  }

  async increment(key: string, by: number, ttlMs: number): Promise<number> {
    const r = (this.redis as Redis & { incrementWithTtl(k: string, by: number, ttl: number): Promise<number> }).incrementWithTtl(key, by, Math.max(1, Math.ceil(ttlMs)));
    return Number(await r);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(key);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }
}
