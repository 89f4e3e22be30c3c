/**
 * Directory syncs shared across time, not only among callers that happen to ask at once: a caller
 * that can let its durability wait a little (the removal of a record whose Maildir file was just
 * renamed into `new/`) joins the directory's batch, and one sync serves the whole batch. At one
 * session deliveries come one after another, so `fsyncDir`'s sharing among concurrent callers never
 * finds anyone to share with; a batch does.
 */
import type { Timers } from '../runtime/clock.js';
import { fsyncDir } from './durable-write.js';

/** Callers waiting for the next sync of one directory. */
interface Batch {
  size: number;
  timer: unknown;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class BatchedDirSync {
  private readonly batches = new Map<string, Batch>();

  constructor(
    private readonly timers: Timers,
    /** How long the first caller of a batch waits for others to join. */
    private readonly windowMs: number,
    /** A batch this large is synced at once. */
    private readonly maxBatch: number,
  ) {}

  /**
   * Resolves once a sync of `dir` that started after this call has finished, so whatever the caller
   * did in `dir` before calling is durable; rejects with that sync's error. The sync runs when the
   * batch holds `maxBatch` callers, `windowMs` after its first, or at `flush`.
   */
  after(dir: string): Promise<void> {
    let batch = this.batches.get(dir);
    if (!batch) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { size: 0, timer: this.timers.setTimeout(() => this.sync(dir), this.windowMs), done, resolve, reject };
      this.batches.set(dir, batch);
    }
    batch.size++;
    if (batch.size >= this.maxBatch) this.sync(dir);
    return batch.done;
  }

  /** Syncs every waiting batch now; resolves when each has ended (its callers see its outcome). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.batches.keys()].map((dir) => this.sync(dir)));
  }

  /** Starts the batch's sync (shared with any sync of `dir` running elsewhere, via `fsyncDir`); later callers start a new batch. */
  private sync(dir: string): Promise<void> {
    const batch = this.batches.get(dir);
    if (!batch) return Promise.resolve();
    this.batches.delete(dir);
    this.timers.clearTimeout(batch.timer);
    fsyncDir(dir).then(batch.resolve, batch.reject);
    return batch.done;
  }
}
