/**
 * How long the transport engine takes to deliver fresh mail while a long retry backlog waits in the
 * queue: `backlog` remote parts whose next attempt is an hour away, and `fresh` local messages in
 * pre-submission, written to the queue directory before the engine starts. The time is from the
 * engine's start (its queues rebuilt from disk, its first run begun) until every fresh message is in
 * its Maildir; fsync off, so what is measured is the queue manager's own work (picking what is due)
 * rather than the disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { QueueStore, type QueuedMessage } from '../src/transport/queue-store.js';
import { engineRules, startEngine } from '../test/transport/engine-harness.js';

export interface QueueBacklogBench {
  backlog: number;
  fresh: number;
  /** Median milliseconds from the engine's start until the fresh messages are delivered. */
  deliverFreshMs: number;
  runs: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function waiting(id: string, now: number): QueuedMessage {
  const address = `user-${id}@remote.test`;
  return {
    envelope: { id, mailFrom: 'sender@remote.test', recipients: [{ address }], size: 20, receivedAt: now },
    contentId: 'BACKLOG',
    rootId: id,
    kind: 'remote',
    domain: 'remote.test',
    deliveries: [{ address, recipient: { address }, status: 'pending' }],
    attempts: 1,
    nextAttemptAt: now + 3_600_000,
  };
}

function fresh(id: string, now: number): QueuedMessage {
  return {
    envelope: { id, mailFrom: 'sender@remote.test', recipients: [{ address: 'alice@example.test' }], size: 20, receivedAt: now },
    contentId: id,
    rootId: id,
    kind: 'message',
    deliveries: [],
    attempts: 0,
    nextAttemptAt: 0,
  };
}

async function oneRun(backlog: number, freshCount: number): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-bench-backlog-'));
  try {
    const rules = engineRules(dir, {}, { fsync: false });
    const store = new QueueStore(path.join(dir, 'queue'), false);
    await store.open();
    const now = Date.now();
    await store.writeContent('BACKLOG', 'Subject: waiting\r\n\r\nx\r\n');
    for (let i = 0; i < backlog; i++) await store.add('remote-delivery/remote.test', waiting(`B${String(i).padStart(6, '0')}`, now));
    const ids = Array.from({ length: freshCount }, (_, i) => `F${String(i).padStart(6, '0')}`);
    for (const id of ids) {
      await store.writeContent(id, `Subject: ${id}\r\n\r\nbody\r\n`);
      await store.add('pre-submission', fresh(id, now));
    }
    // The poll never fires: the engine runs the queues once as it starts, and that run must deliver everything fresh.
    const engine = await startEngine(rules, { pollMs: 2 ** 30 });
    try {
      const start = process.hrtime.bigint();
      await engine.manager.runDue();
      const left = ids.filter((id) => engine.store.all().some((s) => s.message.rootId === id));
      if (left.length > 0) throw new Error(`${left.length} fresh message(s) not delivered`);
      return Number(process.hrtime.bigint() - start) / 1e6;
    } finally {
      await engine.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the benchmark: `runs` runs, each with `backlog` waiting parts and `fresh` new messages. */
export async function run(runs = 3, backlog = 10_000, freshCount = 500): Promise<QueueBacklogBench> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await oneRun(backlog, freshCount));
  return { backlog, fresh: freshCount, deliverFreshMs: Math.round(median(times)), runs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  process.stdout.write(`transport engine, ${r.fresh} fresh messages delivered past ${r.backlog} waiting: ${r.deliverFreshMs} ms (median of ${r.runs} runs, fsync off)\n`);
}
