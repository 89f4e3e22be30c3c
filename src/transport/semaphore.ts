/** A counting semaphore: at most `max` holders at once, waiters served first come, first served. */
export class Semaphore {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Waits for a slot; the returned function gives it back (calling it twice is harmless). */
  async acquire(): Promise<() => void> {
    if (this.held >= this.max) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `held` stays as it is.
      if (next) next();
      else this.held--;
    };
  }
}

/** A semaphore per key (destination domain or connector), created on first use, dropped when idle. */
export class KeyedSemaphore {
  private readonly byKey = new Map<string, { sem: Semaphore; users: number }>();

  constructor(private readonly maxPerKey: number) {}

  /** Waits for a slot under `key`; the returned function gives it back. */
  async acquire(key: string): Promise<() => void> {
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = { sem: new Semaphore(this.maxPerKey), users: 0 };
      this.byKey.set(key, entry);
    }
    entry.users++;
    const release = await entry.sem.acquire();
    const e = entry;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (--e.users === 0) this.byKey.delete(key);
    };
  }
}
