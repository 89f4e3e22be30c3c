/**
 * Local deliveries whose `new/` sync waits for its batch (src/transport/settling.ts), in an engine
 * whose batch window the test holds: the Maildir files are there at once, the records that held the
 * messages stay queued (in progress, not worked on again, no "delivered" line yet) until the batch's
 * sync, and the engine's stop syncs and settles whatever still waits, so a restart repeats nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { searchTrackingLog } from '../../src/transport/tracking-log.js';
import { engineRules, HOUR, maildirFiles, ManualClock, ManualTimers, message, queuedId, sendMessage, startEngine, waitFor } from './engine-harness.js';

const COUNT = 5;

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-settling-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A message over 64 KiB: its content is not held in memory at receipt, so it is queued and delivered
 * from the queue, whose deliveries these tests are about (small mail to one mailbox is delivered at receipt).
 */
function queuedMessage(subject: string): string {
  return `${message(subject)}${'queued from the queue '.repeat(3200)}\r\n`;
}

/** Sends `COUNT` messages to alice one after another (as at one session) and waits until each is in her Maildir; resolves to their queue ids. */
async function deliverSome(engine: TransportEngine, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const replies = await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: queuedMessage(`${label} ${i}`) });
    ids.push(queuedId(replies.at(-1)!));
  }
  await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === COUNT, 10_000, 'every message in the Maildir');
  return ids;
}

/** How many Maildir files carry each message's part mark (`_Q<id>-1.`). */
async function copiesOf(engine: TransportEngine, ids: string[]): Promise<number[]> {
  const files = await maildirFiles(engine.paths.mailboxDir, 'alice@example.test');
  return ids.map((id) => files.filter((f) => f.includes(`_Q${id}-1.`)).length);
}

async function deliveredLines(engine: TransportEngine, ids: string[]): Promise<number[]> {
  await engine.tracking.flush();
  return Promise.all(ids.map(async (id) => (await searchTrackingLog(engine.paths.trackingLog, { id })).filter((e) => e.event === 'delivered').length));
}

/** A logger that keeps the context of each error the engine reports. */
function recordingLogger(errors: string[]): Logger {
  return createLogger({ level: 'error', destination: { write: (line: string) => void errors.push(String((JSON.parse(line) as { context?: string }).context)) } });
}

function preSubmission(engine: TransportEngine): { count: number; state: string } | undefined {
  return engine.manager.queues().find((q) => q.name === 'pre-submission');
}

test('records wait for the batch\'s sync of new/: in progress meanwhile, not delivered again, then removed with one "delivered" line each', async () => {
  const timers = new ManualTimers();
  const engine = await startEngine(engineRules(path.join(dir, 'window')), { timers });
  try {
    const ids = await deliverSome(engine, 'window');
    await waitFor(() => preSubmission(engine)?.count === COUNT && preSubmission(engine)?.state === 'active', 10_000, 'the records held in progress');
    assert.equal(timers.pending, 1, 'one batch, one window, for all five deliveries');
    assert.deepEqual(await deliveredLines(engine, ids), ids.map(() => 0), 'no "delivered" line before the copy is durable');

    for (let i = 0; i < 3; i++) engine.manager.kick();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await copiesOf(engine, ids), ids.map(() => 1), 'a record waiting for its sync is not worked on again');
    assert.equal(preSubmission(engine)?.count, COUNT);

    timers.fire();
    await waitFor(() => engine.store.all().length === 0, 10_000, 'the records removed after the sync');
    assert.deepEqual(await deliveredLines(engine, ids), ids.map(() => 1));
    assert.deepEqual(await copiesOf(engine, ids), ids.map(() => 1));
  } finally {
    await engine.close();
  }
});

test('the engine\'s stop syncs and settles what waits for its batch: nothing left queued, nothing delivered again after a restart', async () => {
  const rules = engineRules(path.join(dir, 'stop'));
  let engine = await startEngine(rules, { timers: new ManualTimers() });
  let ids: string[];
  try {
    ids = await deliverSome(engine, 'stop');
    await waitFor(() => preSubmission(engine)?.count === COUNT && preSubmission(engine)?.state === 'active', 10_000, 'the records held in progress');
  } finally {
    await engine.close();
  }
  // The window was never let run: only the stop can have synced new/ and removed the records.
  const left = (await readdir(path.join(engine.paths.queueDir, 'content'))).filter((n) => n.endsWith('.json'));
  assert.deepEqual(left, [], 'no record left on disk');
  assert.deepEqual(await deliveredLines(engine, ids), ids.map(() => 1));

  engine = await startEngine(rules, { timers: new ManualTimers() });
  try {
    await engine.manager.runDue();
    assert.equal(engine.store.all().length, 0);
    assert.deepEqual(await copiesOf(engine, ids), ids.map(() => 1), 'nothing delivered again, nothing lost');
  } finally {
    await engine.close();
  }
});

test('a batch\'s sync that fails leaves the record queued and rescheduled; its retry finds the Maildir file instead of delivering again', async () => {
  const timers = new ManualTimers();
  const clock = new ManualClock();
  const errors: string[] = [];
  const engine = await startEngine(engineRules(path.join(dir, 'failed-sync')), { timers, clock, logger: recordingLogger(errors) });
  try {
    const id = queuedId((await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: queuedMessage('failed sync') })).at(-1)!);
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the Maildir file');
    await waitFor(() => preSubmission(engine)?.state === 'active', 10_000, 'the record held in progress');
    // The Maildir is moved away under the engine: the sync of its new/ fails.
    const box = mailboxDir(engine.paths.mailboxDir, 'alice@example.test');
    await rename(box, `${box}.away`);
    timers.fire();
    await waitFor(() => errors.some((c) => c.startsWith('syncing the Maildir')) && engine.manager.messages('pre-submission')[0]?.attempts === 1, 10_000, 'the failure reported and the record rescheduled');
    assert.match(engine.manager.show(id).status, /^4\.3\.0 /);
    assert.deepEqual(await deliveredLines(engine, [id]), [0], 'not durable, not tracked');

    await rename(`${box}.away`, box);
    clock.advance(HOUR);
    await engine.manager.runDue();
    assert.equal(engine.store.all().length, 0, 'the record removed after its retry');
    assert.deepEqual(await copiesOf(engine, [id]), [1], 'the retry found the file: not delivered twice');
    assert.deepEqual(await deliveredLines(engine, [id]), [1]);
  } finally {
    await engine.close();
  }
});
