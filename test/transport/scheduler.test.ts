/** The scheduler over a real queue store on disk: what is due is worked on, in order of next attempt, once per queue per run. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { MinHeap } from '../../src/transport/min-heap.js';
import { QueueStore, type QueuedMessage, type StoredMessage } from '../../src/transport/queue-store.js';
import { Scheduler, WORKERS } from '../../src/transport/scheduler.js';
import { ManualClock, MINUTE } from './engine-harness.js';

function record(id: string, nextAttemptAt: number, frozen = false): QueuedMessage {
  return {
    envelope: { id, mailFrom: 'sender@remote.test', recipients: [{ address: 'alice@example.test' }], size: 10, receivedAt: 0 },
    contentId: id,
    rootId: id,
    kind: 'message',
    deliveries: [],
    attempts: 0,
    nextAttemptAt,
    ...(frozen ? { frozen } : {}),
  };
}

/** A store in a fresh directory and a scheduler whose attempt is `attempt`; `worked` lists `id@queue` in the order attempts began. */
async function setUp(attempt: (s: StoredMessage, store: QueueStore) => Promise<void>): Promise<{
  store: QueueStore;
  scheduler: Scheduler;
  clock: ManualClock;
  worked: string[];
  done: () => Promise<void>;
}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-scheduler-'));
  const store = new QueueStore(dir, false);
  await store.open();
  const clock = new ManualClock();
  const worked: string[] = [];
  const errors: Error[] = [];
  const scheduler = new Scheduler({
    store,
    clock,
    attempt: (s) => {
      worked.push(`${s.message.envelope.id}@${s.queue}`);
      return attempt(s, store);
    },
    afterRun: () => undefined,
    onError: (err) => errors.push(err),
  });
  return {
    store,
    scheduler,
    clock,
    worked,
    done: async () => {
      await scheduler.stop();
      assert.deepEqual(errors, []);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Delivers (removes) whatever it is given. */
const deliver = (s: StoredMessage, store: QueueStore): Promise<void> => store.remove(s.message.envelope.id);

test('due records are worked on in order of next attempt; records not yet due, frozen, or in a frozen queue stay', async () => {
  const t = await setUp(deliver);
  try {
    const now = t.clock.now();
    await t.store.add('deferred', record('LATE', now - 1 * MINUTE));
    await t.store.add('deferred', record('EARLY', now - 30 * MINUTE));
    await t.store.add('deferred', record('FUTURE', now + 1 * MINUTE));
    await t.store.add('pre-submission', record('NOW', 0));
    await t.store.add('deferred', record('HELD', now - 60 * MINUTE, true));
    await t.store.add('remote-delivery/remote.test', record('PAUSED', 0));
    await t.store.setFrozen('remote-delivery', true);

    await t.scheduler.runDue();
    assert.deepEqual(t.worked, ['NOW@pre-submission', 'EARLY@deferred', 'LATE@deferred']);
    assert.deepEqual(t.store.all().map((s) => s.message.envelope.id).sort(), ['FUTURE', 'HELD', 'PAUSED']);

    t.clock.advance(MINUTE);
    await t.store.setFrozen('remote-delivery', false);
    await t.scheduler.runDue();
    assert.deepEqual(t.worked.slice(3), ['PAUSED@remote-delivery/remote.test', 'FUTURE@deferred']);
  } finally {
    await t.done();
  }
});

test('what a run makes due (a record moved on to its next queue) is worked on in the same run, once per queue', async () => {
  const t = await setUp(async (s, store) => {
    // Every step moves the record on, due at once; the last queue delivers it.
    if (s.queue === 'pre-submission') await store.move({ ...s.message, nextAttemptAt: 0 }, 'awaiting-directory-lookup');
    else if (s.queue === 'awaiting-directory-lookup') await store.move({ ...s.message, nextAttemptAt: 0 }, 'local-delivery');
    else if (s.queue === 'local-delivery') await store.update({ ...s.message, nextAttemptAt: 0, attempts: 1 });
  });
  try {
    for (const id of ['A', 'B', 'C']) await t.store.add('pre-submission', record(id, 0));
    await t.scheduler.runDue();
    for (const id of ['A', 'B', 'C']) {
      assert.deepEqual(
        t.worked.filter((w) => w.startsWith(`${id}@`)),
        [`${id}@pre-submission`, `${id}@awaiting-directory-lookup`, `${id}@local-delivery`],
        'each queue once, though the last step leaves the record due at once',
      );
    }
    // A later run takes it up again.
    await t.scheduler.runDue();
    assert.equal(t.worked.filter((w) => w === 'A@local-delivery').length, 2);
  } finally {
    await t.done();
  }
});

test("a record passed over while an administrator's change holds it is worked on when the change ends, in the same run", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let change: Promise<void> | undefined;
  const t = await setUp(async (s, store) => {
    // The change on BUSY ends while the run is still working on SLOW.
    if (s.message.envelope.id === 'SLOW') {
      release();
      await change;
    }
    await store.remove(s.message.envelope.id);
  });
  try {
    await t.store.add('deferred', record('BUSY', 0));
    await t.store.add('deferred', record('SLOW', 0));
    change = t.scheduler.exclusive('BUSY', () => held);
    await t.scheduler.runDue();
    assert.deepEqual(t.worked, ['SLOW@deferred', 'BUSY@deferred']);
    assert.deepEqual(t.store.all(), []);
  } finally {
    await t.done();
  }
});

test(`records that arrive while a run works on one are taken up at once by the free workers, ${WORKERS} at a time`, async () => {
  // Every attempt waits at a barrier that opens when WORKERS are in progress together (or after a bound).
  let open!: () => void;
  const barrier = new Promise<void>((resolve) => (open = resolve));
  const bound = setTimeout(open, 3000);
  let firstStarted!: () => void;
  const first = new Promise<void>((resolve) => (firstStarted = resolve));
  let inFlight = 0;
  let most = 0;
  const t = await setUp(async (s, store) => {
    most = Math.max(most, ++inFlight);
    if (inFlight === WORKERS) open();
    firstStarted();
    await barrier;
    inFlight--;
    await store.remove(s.message.envelope.id);
  });
  try {
    // The run starts with one record due, as when the first message of a burst arrives.
    await t.store.add('pre-submission', record('FIRST', 0));
    const run = t.scheduler.runDue();
    await first;
    // The rest of the burst arrives while FIRST is in progress, each with a kick, as the receive server does.
    for (let i = 0; i < WORKERS + 2; i++) {
      await t.store.add('pre-submission', record(`NEXT${i}`, 0));
      t.scheduler.kick();
    }
    await run;
    await t.scheduler.runDue();
    assert.equal(t.store.all().length, 0);
    assert.equal(most, WORKERS, 'records worked on at once');
  } finally {
    clearTimeout(bound);
    await t.done();
  }
});

test('property: one run works on exactly the due, unfrozen records, in order of next attempt', async () => {
  const states = ['deferred', 'unreachable', 'remote-delivery/a.test', 'remote-delivery/b.test'] as const;
  const recordArb = fc.record({
    offsetMinutes: fc.integer({ min: -120, max: 120 }),
    queue: fc.constantFrom(...states),
    frozen: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(recordArb, { maxLength: 25 }), fc.subarray(['unreachable', 'remote-delivery/a.test', 'remote-delivery']), async (records, frozenQueues) => {
      const t = await setUp(deliver);
      try {
        const now = t.clock.now();
        for (const [i, r] of records.entries()) await t.store.add(r.queue, record(`R${i}`, now + r.offsetMinutes * MINUTE, r.frozen));
        for (const q of frozenQueues) await t.store.setFrozen(q, true);
        await t.scheduler.runDue();

        const queueFrozen = (q: string): boolean => frozenQueues.includes(q) || frozenQueues.includes(q.split('/')[0] ?? '');
        const due = records
          .map((r, i) => ({ ...r, id: `R${i}@${r.queue}`, at: now + r.offsetMinutes * MINUTE }))
          .filter((r) => r.at <= now && !r.frozen && !queueFrozen(r.queue));
        assert.deepEqual([...t.worked].sort(), due.map((r) => r.id).sort());
        const at = new Map(due.map((r) => [r.id, r.at]));
        for (let i = 1; i < t.worked.length; i++) {
          assert.ok((at.get(t.worked[i - 1] ?? '') ?? 0) <= (at.get(t.worked[i] ?? '') ?? 0), `in order of next attempt: ${t.worked.join(' ')}`);
        }
      } finally {
        await t.done();
      }
    }),
    { numRuns: 25 },
  );
});

test('property: the heap gives its items back least first, whatever the order of pushes, pops and resets', () => {
  const op = fc.oneof(fc.integer({ min: -50, max: 50 }).map((n) => ({ push: n })), fc.constant({ pop: true as const }), fc.array(fc.integer(), { maxLength: 20 }).map((items) => ({ reset: items })));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const heap = new MinHeap<number>((a, b) => a < b);
      let model: number[] = [];
      for (const o of ops) {
        if ('push' in o) {
          heap.push(o.push);
          model.push(o.push);
        } else if ('reset' in o) {
          heap.reset([...o.reset]);
          model = [...o.reset];
        } else {
          model.sort((a, b) => a - b);
          assert.equal(heap.pop(), model.shift());
        }
        assert.equal(heap.size, model.length);
        assert.equal(heap.peek(), model.length ? Math.min(...model) : undefined);
      }
    }),
    { numRuns: 200 },
  );
});
