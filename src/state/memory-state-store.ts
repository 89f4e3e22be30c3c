/**
 * The in-process StateStore: a map with expiry read from the Clock (so tests move time), bounded in
 * entries so that a flood of distinct keys (addresses, triplets) costs a fixed amount of memory;
 * past the bound the entries written longest ago go first.
 */
import { systemClock, type Clock } from '../runtime/clock.js';
import type { StateStore } from './state-store.js';

interface Entry {
  value: string;
  expiresAt: number;
}

export class MemoryStateStore implements StateStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = 1_000_000,
    private readonly clock: Clock = systemClock,
  ) {}

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    const e = this.live(key);
    const value = (e ? Number(e.value) : 0) + by;
    if (e) e.value = String(value);
    else this.put(key, String(value), ttlMs);
    return Promise.resolve(value);
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.live(key)?.value);
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    this.put(key, value, ttlMs);
    return Promise.resolve();
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return Promise.resolve(false);
    this.put(key, value, ttlMs);
    return Promise.resolve(true);
  }

  delete(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.entries.clear();
    return Promise.resolve();
  }

  /** How many entries are held, expired ones included until they are next touched or pushed out. */
  get size(): number {
    return this.entries.size;
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private put(key: string, value: string, ttlMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.clock.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
