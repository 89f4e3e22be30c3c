import type { Clock } from '../runtime/clock.js';
import { MinHeap } from './min-heap.js';
import { queueState, type QueuedMessage, type QueueStore, type StoredMessage } from './queue-store.js';

/**
 * Records worked on at once: enough to overlap slow remote hosts (the remote delivery limits connections
 * itself) and to keep pace with 32 receiving sessions. Receiving and delivering share libuv's thread
 * pool, which serves file operations in the order asked: with 8 workers against 32 sessions, delivery
 * got about a fifth of them and fell behind acceptance (0.92 of it in the benchmark's 32-session row).
 */
export const WORKERS = 32;

/** A record as one write left it; stale once the store holds a later write or has dropped it. */
interface Entry {
  queue: string;
  message: QueuedMessage;
}

/** One run's records already worked on (`id@queue`), and its workers. */
interface Run {
  done: Set<string>;
  workers: Set<Promise<void>>;
}

/** What the scheduler works with. */
export interface SchedulerOptions {
  store: QueueStore;
  clock: Clock;
  /** One attempt at a record; it handles its own failures (a rejection ends the run, reported by `kick`). */
  attempt(s: StoredMessage): Promise<void>;
  /** Work on a record that outlasts its attempt (its removal waiting for a sync): the record stays busy until it ends, its worker does not wait. */
  settling?(id: string): Promise<void> | undefined;
  /** Called at the end of every run. */
  afterRun(): void;
  onError(err: Error, context: string): void;
}

/** Whether the administrator froze a queue, or the state it belongs to (`remote-delivery` holds every destination). */
export function isQueueFrozen(store: QueueStore, queue: string): boolean {
  return store.isFrozen(queue) || store.isFrozen(queueState(queue));
}

/**
 * Runs the queues: works on every record that is due, several at once, until nothing due is left.
 * The due order is a heap keyed by next attempt, filled from the store once and then fed by its
 * writes; what a run sets aside (a record in a frozen queue, or already worked on in that run) goes
 * back on the heap at the next run, and a record passed over while busy when its work ends. So taking
 * the next due record costs O(log n), and no run copies or scans the whole queue. Time comes only
 * from the clock, so `runDue` after moving a test clock does exactly what the schedule says.
 */
export class Scheduler {
  private readonly busy = new Map<string, Promise<void>>();
  /** Records a run passed over because they were busy: due again as soon as they are not. */
  private readonly passedOver = new Set<string>();
  /** Current records a run popped without working on them (queue frozen, or done in that run): the next run looks again. */
  private setAside: Entry[] = [];
  // Records due at the same time go first come, first served: queue ids sort by time received, and a part's follows its message's.
  private readonly due = new MinHeap<Entry>(({ message: a }, { message: b }) => a.nextAttemptAt < b.nextAttemptAt || (a.nextAttemptAt === b.nextAttemptAt && a.envelope.id < b.envelope.id));
  private running: Promise<void> | null = null;
  /** The run under way, while it drains: a kick meanwhile adds workers to it. */
  private current: Run | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: SchedulerOptions) {
    this.due.reset(o.store.all().map((s) => ({ queue: s.queue, message: s.message })));
    o.store.watch((queue, message) => this.push(queue, message));
  }

  /** Starts looking for due work every `pollMs` (and at once). */
  start(pollMs: number): void {
    this.timer = setInterval(() => this.kick(), pollMs);
    this.kick();
  }

  /** Stops the timer and waits for the work in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  /** Asks for a run soon (new mail, an administrator's retry); errors are reported, not thrown. */
  kick(): void {
    this.runDue().catch((err: unknown) => this.o.onError(err as Error, 'queue run'));
  }

  /** Works on everything due now, including what that work makes due; resolves when nothing due is left. */
  runDue(): Promise<void> {
    if (this.running) {
      this.again = true;
      if (this.current) this.fill(this.current);
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.drain();
      } while (this.again);
    })().finally(() => {
      this.running = null;
      this.o.afterRun();
    });
    return this.running;
  }

  /** Whether an attempt or an administrator's change is in progress on a record. */
  isBusy(id: string): boolean {
    return this.busy.has(id);
  }

  /**
   * Runs an administrator's change to one record once no attempt is in flight for it, and holds the
   * record as busy meanwhile, so no attempt starts from the record the change is about to replace.
   */
  async exclusive<T>(id: string, change: () => Promise<T>): Promise<T> {
    // An attempt reports its own failure; here only its end matters.
    for (let inFlight = this.busy.get(id); inFlight; inFlight = this.busy.get(id)) await inFlight.catch(() => undefined);
    const run = change();
    // The caller gets the change's own outcome from `run`; the busy mark only needs its end.
    this.hold(id, run.then(() => undefined, () => undefined));
    return run;
  }

  /** Marks the record busy until `work` and whatever settling it left have ended; resolves (or rejects) with `work`. */
  private hold(id: string, work: Promise<void>): Promise<void> {
    const held = work
      .then(() => this.o.settling?.(id))
      .finally(() => {
        this.busy.delete(id);
        const s = this.o.store.get(id);
        if (this.passedOver.delete(id) && s) this.push(s.queue, s.message);
      });
    this.busy.set(id, held);
    // Whoever waits on the busy mark sees `work`'s outcome through `work` itself.
    held.catch(() => undefined);
    return work;
  }

  private push(queue: string, message: QueuedMessage): void {
    this.due.push({ queue, message });
  }

  private async drain(): Promise<void> {
    for (const e of this.setAside.splice(0)) this.due.push(e);
    // A record is worked on once per queue per run, so a run always ends.
    const run: Run = { done: new Set<string>(), workers: new Set<Promise<void>>() };
    this.current = run;
    try {
      do {
        this.fill(run);
        // Workers started meanwhile (by `fill`) join the set; a worker leaves it when it ends.
        while (run.workers.size > 0) await Promise.all(run.workers);
      } while (this.nextDue(run.done));
    } finally {
      this.current = undefined;
    }
  }

  /**
   * Starts workers up to WORKERS while work is due. Called at the start of a run, on each kick during
   * it, and after each attempt: a worker ends as soon as nothing is due, so without this a run that
   * began with one due record went on with that one worker however much arrived later.
   */
  private fill(run: Run): void {
    while (run.workers.size < WORKERS && this.nextDue(run.done)) {
      const worker: Promise<void> = this.work(run).finally(() => run.workers.delete(worker));
      run.workers.add(worker);
      // A rejection reaches `drain` through Promise.all; one started after the run already ended on another must not go unhandled.
      worker.catch(() => undefined);
    }
  }

  /** Takes due records one after another (the first synchronously, so `fill` sees it gone) until none is left. */
  private async work(run: Run): Promise<void> {
    const take = (): StoredMessage | undefined => {
      const e = this.nextDue(run.done);
      if (!e) return undefined;
      this.due.pop();
      run.done.add(`${e.message.envelope.id}@${e.queue}`);
      return e;
    };
    for (let s = take(); s; s = take()) {
      await this.hold(s.message.envelope.id, this.o.attempt(s));
      this.fill(run);
    }
  }

  /** The first entry due now that may be worked on, left on the heap; the entries before it are dropped for this run. */
  private nextDue(done: Set<string>): Entry | undefined {
    const now = this.o.clock.now();
    for (let e = this.due.peek(); e !== undefined && e.message.nextAttemptAt <= now; e = this.due.peek()) {
      const id = e.message.envelope.id;
      // A stale entry, or a frozen record (unfreezing rewrites it, which pushes it again), is dropped.
      const current = this.o.store.get(id);
      if (current?.message === e.message && current.queue === e.queue && !e.message.frozen) {
        if (isQueueFrozen(this.o.store, e.queue) || done.has(`${id}@${e.queue}`)) this.setAside.push(e);
        else if (!this.busy.has(id)) return e;
        else this.passedOver.add(id);
      }
      this.due.pop();
    }
    return undefined;
  }
}
