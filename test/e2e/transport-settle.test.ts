/**
 * The engine as its own process (`portcullis transport`, fsync on) stopped while deliveries wait for
 * their batched sync of `new/`: each message is in the Maildir, its record still queued. Killed with
 * SIGKILL there, the records are still on disk, and after a restart each message is in the Maildir
 * exactly once; stopped with SIGTERM there, the stop syncs and removes them before the process ends,
 * and a restart delivers nothing again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { QueueSummary } from '../../src/transport/admin-api.js';
import { adminRequest } from '../../src/transport/admin-client.js';
import { freePort } from '../support/smtp-sink.js';
import { engineProcessConfig, queuedId, RawSmtp, waitFor } from '../transport/engine-harness.js';
import { slotFiles } from '../transport/slot-files.js';

const root = path.resolve(import.meta.dirname, '../..');
const COUNT = 10;
/**
 * Over 64 KiB with it, a message's content is not held in memory at receipt, so it is queued and
 * delivered from the queue, whose batched syncs these tests are about (small mail to one mailbox is
 * delivered at receipt, its new/ synced before the 250).
 */
const QUEUED_PADDING = `${'delivered from the queue '.repeat(2800)}\r\n`;
/** A stop must land inside a batch's window (100 ms): tried again on a fresh engine when it missed. */
const TRIES = 5;

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-settle-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Engine {
  child: ChildProcess;
  port: number;
  admin: number;
  work: string;
}

async function startEngineProcess(work: string, ports?: { port: number; admin: number }): Promise<Engine> {
  const port = ports?.port ?? (await freePort());
  const admin = ports?.admin ?? (await freePort());
  const config = path.join(work, 'rules.yaml');
  await writeFile(config, engineProcessConfig(port, admin, 'data'));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', config], {
    cwd: work,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor(async () => {
    assert.equal(child.exitCode, null, 'the engine exited');
    return RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false);
  }, 30_000, 'the engine to listen');
  return { child, port, admin, work };
}

async function stopped(e: Engine, signal: NodeJS.Signals): Promise<void> {
  if (e.child.exitCode !== null || e.child.signalCode !== null) return;
  const exited = once(e.child, 'exit');
  e.child.kill(signal);
  await exited;
}

const newDir = (e: Engine): string => path.join(e.work, 'data', 'mailboxes', 'alice@example.test', 'new');
/** The ids of the records waiting in pre-submission: in their slots, or written out beside their content. */
async function queued(e: Engine): Promise<Set<string>> {
  const queueDir = path.join(e.work, 'data', 'queue');
  const ids = new Set<string>();
  for (const slot of await slotFiles(queueDir)) if (slot.record) ids.add(slot.record.message.envelope.id);
  for (const name of await readdir(path.join(queueDir, 'content')).catch(() => [] as string[])) if (name.endsWith('.json')) ids.add(name.slice(0, -'.json'.length));
  return ids;
}

/** `COUNT` messages over one session, one after another; their queue ids. */
async function sendAtOneSession(e: Engine): Promise<string[]> {
  const { client } = await RawSmtp.connect(e.port);
  const ids: string[] = [];
  try {
    assert.equal((await client.send('EHLO settle.client.test')).code, 250);
    for (let i = 0; i < COUNT; i++) {
      assert.equal((await client.send('MAIL FROM:<sender@remote.test>')).code, 250);
      assert.equal((await client.send('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await client.send('DATA')).code, 354);
      ids.push(queuedId(await client.data(`From: sender@remote.test\r\nSubject: settle ${i}\r\n\r\nMessage ${i}.\r\n${QUEUED_PADDING}`)));
    }
    await client.send('QUIT');
  } finally {
    client.close();
  }
  return ids;
}

/** Waits (polling every 2 ms, so as not to miss the window) until every message is in the Maildir. */
async function allInMaildir(e: Engine): Promise<void> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 2))) {
    if ((await readdir(newDir(e)).catch(() => [])).length >= COUNT) return;
  }
  throw new Error('timed out waiting for every message in the Maildir');
}

async function copies(e: Engine, ids: string[]): Promise<number[]> {
  const files = await readdir(newDir(e));
  return ids.map((id) => files.filter((f) => f.includes(`_Q${id}-1.`)).length);
}

async function drained(e: Engine): Promise<void> {
  await waitFor(async () => {
    const { queues } = (await adminRequest(`127.0.0.1:${e.admin}`, 'GET', '/queues')) as { queues: QueueSummary[] };
    return queues.every((q) => q.count === 0);
  }, 30_000, 'the queues to drain');
}

test('kill -9 while deliveries wait for their new/ sync: the records are still queued, and after a restart each message is in the Maildir exactly once', async (t) => {
  for (let attempt = 1; attempt <= TRIES; attempt++) {
    const work = await mkdtemp(path.join(dir, 'kill-'));
    let engine = await startEngineProcess(work);
    try {
      const ids = await sendAtOneSession(engine);
      await allInMaildir(engine);
      await stopped(engine, 'SIGKILL');
      const atKill = await queued(engine);
      const waiting = ids.filter((id) => atKill.has(id));
      t.diagnostic(`try ${attempt}: ${waiting.length} of ${COUNT} delivered messages still queued at the kill`);
      if (waiting.length === 0) continue;

      engine = await startEngineProcess(work, engine);
      await drained(engine);
      assert.deepEqual(await copies(engine, ids), ids.map(() => 1), 'each message once: the repeated delivery found its file');
      await stopped(engine, 'SIGTERM');
      const left = await queued(engine);
      assert.deepEqual(ids.filter((id) => left.has(id)), [], 'the records removed after the restart');
      return;
    } finally {
      await stopped(engine, 'SIGTERM');
    }
  }
  assert.fail(`no kill in ${TRIES} tries landed while a delivery waited for its sync`);
});

test('SIGTERM while deliveries wait for their new/ sync: the stop syncs and removes their records; a restart delivers nothing again', async (t) => {
  for (let attempt = 1; attempt <= TRIES; attempt++) {
    const work = await mkdtemp(path.join(dir, 'term-'));
    let engine = await startEngineProcess(work);
    try {
      const ids = await sendAtOneSession(engine);
      await allInMaildir(engine);
      const before = await queued(engine);
      const waiting = ids.filter((id) => before.has(id));
      await stopped(engine, 'SIGTERM');
      t.diagnostic(`try ${attempt}: ${waiting.length} of ${COUNT} delivered messages still queued at SIGTERM`);
      if (waiting.length === 0) continue;
      assert.equal(engine.child.exitCode, 0);
      const left = await queued(engine);
      assert.deepEqual(ids.filter((id) => left.has(id)), [], 'no record left once the engine has stopped');

      engine = await startEngineProcess(work, engine);
      await drained(engine);
      assert.deepEqual(await copies(engine, ids), ids.map(() => 1), 'nothing delivered again, nothing lost');
      return;
    } finally {
      await stopped(engine, 'SIGTERM');
    }
  }
  assert.fail(`no SIGTERM in ${TRIES} tries landed while a delivery waited for its sync`);
});
