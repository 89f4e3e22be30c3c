/**
 * Delivery at receipt (src/transport/receipt-delivery.ts): a message whose whole delivery is one copy
 * to one local mailbox is in the Maildir when its client hears 250, over the SMTP door and over
 * `engine.open`, with nothing queued and nothing left in a slot; the tracking log and metrics say what
 * the queue path says. Anything else, or a delivery that does not make it, is queued as before. The
 * engine's batched `new/` syncs are held (ManualTimers), so a message that went through the queue is
 * still queued at the 250 and after.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TransportEngine } from '../../src/transport/engine.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { searchTrackingLog } from '../../src/transport/tracking-log.js';
import { sample } from '../support/metrics-text.js';
import { engineRules, maildirFiles, ManualTimers, message, queuedId, sendMessage, startEngine } from './engine-harness.js';
import { slotFiles } from './slot-files.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-receipt-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An engine with fsync on (as in production), its batched `new/` syncs held by the test. */
function engineIn(name: string, extra: Record<string, unknown> = {}): Promise<TransportEngine> {
  return startEngine(engineRules(path.join(dir, name), extra, { fsync: true }), { timers: new ManualTimers() });
}

async function send(engine: TransportEngine, to: string[], content: string, rcptArgs?: string[]): Promise<string> {
  return queuedId((await sendMessage(engine.address.port, { from: 'sender@remote.test', to, content, ...(rcptArgs ? { rcptArgs } : {}) })).at(-1)!);
}

/** Whether the message or a part of it is in the queue (the queue may already be working on it: its copies' syncs are held, so none is removed). */
function queued(engine: TransportEngine, id: string): boolean {
  return engine.store.all().some((s) => s.message.rootId === id);
}

/** Records in the store's slots (a restart would take each up again). */
async function slotted(engine: TransportEngine): Promise<number> {
  return (await slotFiles(engine.paths.queueDir)).reduce((n, s) => n + s.records.length, 0);
}

test('SMTP door: the message is in the Maildir (marked with its part id) when the 250 arrives, nothing is queued or left in a slot, and a restart delivers nothing again', async () => {
  let engine = await engineIn('smtp');
  try {
    const id = await send(engine, ['alice@example.test'], message('At receipt'));
    assert.deepEqual((await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).map((f) => f.includes(`_Q${id}-1.`)), [true], 'in new/ at the 250');
    assert.deepEqual(engine.store.all(), [], 'nothing queued');
    assert.ok(engine.manager.queues().every((q) => q.count === 0), 'the queue viewer shows every queue empty');
    assert.equal(await slotted(engine), 0, 'no record in a slot');
    await engine.tracking.flush();
    const events = (await searchTrackingLog(engine.paths.trackingLog, { id })).map((e) => e.event);
    assert.deepEqual(events, ['received', 'submitted', 'delivered'], 'the lines a directly delivered message gets from the queue');
    const metrics = await engine.metrics.render();
    assert.equal(sample(metrics, 'portcullis_transport_received_total', { outcome: 'queued' }), 1);
    assert.equal(sample(metrics, 'portcullis_transport_deliveries_total', { outcome: 'delivered' }), 1);
    assert.equal(sample(metrics, 'portcullis_transport_delivery_seconds_count', { outcome: 'delivered' }), 1, 'the delivery age is observed');

    await engine.close();
    engine = await engineIn('smtp');
    await engine.manager.runDue();
    assert.equal((await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length, 1, 'one copy after a restart');
  } finally {
    await engine.close();
  }
});

test('engine.open (the in-process door serve uses): the message is in the Maildir when data() answers 250', async () => {
  const engine = await engineIn('open');
  try {
    const t = engine.open({ ip: '192.0.2.7', helo: 'client.remote.test' });
    assert.equal(t.mail('sender@remote.test').code, 250);
    assert.equal(t.rcpt({ address: 'bob@example.test' }).code, 250);
    const r = await t.data((async function* () {
      yield Buffer.from(message('Open door'));
    })());
    assert.equal(r.code, 250);
    assert.match(r.lines[0] ?? '', /^<[^@>]+@mx\.example\.test> Queued mail for delivery$/, 'the spec\'s words');
    assert.equal((await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).length, 1, 'in new/ at the 250');
    assert.deepEqual(engine.store.all(), [], 'nothing queued');
  } finally {
    await engine.close();
  }
});

test('a mailbox over its quota: still 250, the message queued and deferred 4.2.2 as before', async () => {
  const engine = await engineIn('quota', { directory: { mailboxes: [{ address: 'alice@example.test', quotaBytes: 3000 }] } });
  try {
    const box = mailboxDir(engine.paths.mailboxDir, 'alice@example.test');
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(path.join(box, sub), { recursive: true });
    await writeFile(path.join(box, 'cur', '1.old,S=2900:2,S'), 'x'.repeat(2900));
    const id = await send(engine, ['alice@example.test'], message('Over quota'));
    assert.ok(queued(engine, id), 'queued at the 250');
    assert.deepEqual(await maildirFiles(engine.paths.mailboxDir, 'alice@example.test'), []);
    await engine.manager.runDue();
    const [deferred] = engine.manager.messages('deferred');
    assert.equal(deferred?.id, `${id}-1`);
    assert.match(deferred?.status ?? '', /^452 4\.2\.2 /);
  } finally {
    await engine.close();
  }
});

test('a frozen local-delivery queue: the message is queued there, not delivered', async () => {
  const engine = await engineIn('frozen');
  try {
    await engine.manager.setFrozen('local-delivery', true);
    const id = await send(engine, ['alice@example.test'], message('Held'));
    assert.ok(queued(engine, id), 'queued at the 250');
    await engine.manager.runDue();
    assert.deepEqual(engine.manager.messages('local-delivery').map((m) => m.id), [`${id}-1`]);
    assert.deepEqual(await maildirFiles(engine.paths.mailboxDir, 'alice@example.test'), []);
  } finally {
    await engine.close();
  }
});

test('queue path: a remote recipient beside the local one, two local mailboxes, NOTIFY=SUCCESS, content over 64 KiB', async () => {
  const engine = await engineIn('queue-path');
  try {
    const cases: { what: string; from?: string; to: string[]; content: string; rcptArgs?: string[] }[] = [
      { what: 'remote too', to: ['alice@example.test', 'carol@remote.test'], content: message('Remote too') },
      { what: 'two mailboxes', to: ['alice@example.test', 'bob@example.test'], content: message('Two mailboxes') },
      // From bob, so that the success DSN is delivered locally too.
      { what: 'success DSN', from: 'bob@example.test', to: ['alice@example.test'], content: message('Tell me'), rcptArgs: ['NOTIFY=SUCCESS'] },
      { what: 'large', to: ['alice@example.test'], content: `${message('Large')}${'0123456789abcdef'.repeat(4200)}\r\n` },
    ];
    for (const c of cases) {
      const replies = await sendMessage(engine.address.port, { from: c.from ?? 'sender@remote.test', to: c.to, content: c.content, ...(c.rcptArgs ? { rcptArgs: c.rcptArgs } : {}) });
      assert.ok(queued(engine, queuedId(replies.at(-1)!)), `${c.what}: queued at the 250`);
    }
    await engine.manager.runDue();
    await engine.manager.runDue();
    assert.equal((await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length, cases.length, 'a copy of each for alice');
    const bob = mailboxDir(engine.paths.mailboxDir, 'bob@example.test');
    const texts = await Promise.all((await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).map((f) => readFile(path.join(bob, 'new', f), 'utf8')));
    assert.equal(texts.length, 2, 'bob: his copy and the success DSN');
    assert.ok(texts.some((t) => /Action: delivered/.test(t)), 'the success DSN');
  } finally {
    await engine.close();
  }
});

test('a frozen pre-submission queue holds received mail: nothing is delivered at receipt', async () => {
  const engine = await engineIn('presub');
  try {
    await engine.manager.setFrozen('pre-submission', true);
    const id = await send(engine, ['alice@example.test'], message('Hold at receipt'));
    assert.equal(engine.store.get(id)?.queue, 'pre-submission');
    assert.equal(await slotted(engine), 1, 'its record in a slot');
    assert.deepEqual(await maildirFiles(engine.paths.mailboxDir, 'alice@example.test'), []);
  } finally {
    await engine.close();
  }
});
