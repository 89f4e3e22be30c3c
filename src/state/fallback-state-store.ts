/**
 * A shared store with a local one behind it: while the shared store (Redis) answers, every call goes
 * there; when a call fails, it is answered from the local memory store instead, so an unreachable
 * store degrades every limit to this process's own view and never refuses mail. Each change between
 * the two is reported once, for the warning log and the metric.
 */
import type { StateStore } from './state-store.js';

export interface FallbackEvents {
  /** The shared store answered again (true) or failed (false, with why). Called on changes only. */
  onState(up: boolean, reason?: string): void;
  /** One call the shared store failed, answered locally. */
  onError(): void;
}

export class FallbackStateStore implements StateStore {
  private up: boolean | undefined;

  constructor(
    private readonly shared: StateStore,
    private readonly local: StateStore,
    private readonly events: FallbackEvents,
  ) {}

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    return this.run((s) => s.increment(key, by, ttlMs));
  }

  get(key: string): Promise<string | undefined> {
    return this.run((s) => s.get(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.run((s) => s.set(key, value, ttlMs));
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.run((s) => s.setIfAbsent(key, value, ttlMs));
  }

  delete(key: string): Promise<void> {
    return this.run((s) => s.delete(key));
  }

  async close(): Promise<void> {
    await Promise.all([this.shared.close(), this.local.close()]);
  }

  /** Marks the shared store's state as its connection reports it (before any call has failed). */
  connection(up: boolean, reason?: string): void {
    this.note(up, reason);
  }

  private async run<T>(op: (s: StateStore) => Promise<T>): Promise<T> {
    try {
      const r = await op(this.shared);
      this.note(true);
      return r;
    } catch (err) {
      this.events.onError();
      this.note(false, (err as Error).message);
      return op(this.local);
    }
  }

  private note(up: boolean, reason?: string): void {
    if (this.up === up) return;
    this.up = up;
    this.events.onState(up, reason);
  }
}
