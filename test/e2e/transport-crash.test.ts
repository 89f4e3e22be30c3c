/**
 * Crash safety of the transport engine: it runs as its own process (`portcullis transport`), clients
 * send a few hundred messages, the engine is killed with SIGKILL mid-stream and started again. Every
 * message answered 250 must be in the mailbox exactly once: nothing lost, nothing delivered twice.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { adminRequest } from '../../src/transport/admin-client.js';
import type { QueueSummary } from '../../src/transport/admin-api.js';
import { freePort } from '../support/smtp-sink.js';
import { engineProcessConfig, RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
// At the engine's speed since delivery at receipt: eight clients, so that the kill lands among
// concurrent deliveries into the Maildir, each before its own 250 and sharing syncs of new/.
const TOTAL = 600;
const KILL_AFTER = 200;
const CLIENTS = 8;

let dir: string;
let smtpPort: number;
let adminPort: number;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-crash-'));
  smtpPort = await freePort();
  adminPort = await freePort();
  await writeFile(path.join(dir, 'rules.yaml'), engineProcessConfig(smtpPort, adminPort, 'data'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function startEngineProcess(): ChildProcess {
  return spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, 'rules.yaml')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function waitListening(child: ChildProcess): Promise<void> {
  await waitFor(async () => {
    assert.equal(child.exitCode, null, 'the engine exited');
    return RawSmtp.connect(smtpPort).then(
      ({ client, greeting }) => {
        client.close();
        return greeting.code === 220;
      },
      () => false,
    );
  }, 20_000, 'the engine to listen');
}

interface Counts {
  sent: number;
  accepted: Set<number>;
}

/** Sends messages `next()` hands out over one connection until it runs out or the connection dies. */
async function client(next: () => number | undefined, counts: Counts, onAccepted: () => void): Promise<void> {
  let conn: RawSmtp;
  try {
    conn = (await RawSmtp.connect(smtpPort)).client;
    if ((await conn.send('EHLO crash.client.test')).code !== 250) return;
  } catch {
    return;
  }
  try {
    for (let seq = next(); seq !== undefined; seq = next()) {
      counts.sent++;
      if ((await conn.send('MAIL FROM:<sender@remote.test>')).code !== 250) return;
      if ((await conn.send('RCPT TO:<alice@example.test>')).code !== 250) return;
      if ((await conn.send('DATA')).code !== 354) return;
      const reply = await conn.data(`From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: crash ${seq}\r\nMessage-ID: <crash-${seq}@remote.test>\r\n\r\nMessage number ${seq}.\r\n`);
      if (reply.code !== 250) return;
      counts.accepted.add(seq);
      onAccepted();
    }
  } catch {
    // The engine died under the client: the message in flight was sent but never answered.
  } finally {
    conn.close();
  }
}

test('kill -9 mid-stream: every message answered 250 is delivered at least once after a restart', async (t) => {
  const counts: Counts = { sent: 0, accepted: new Set() };
  let seq = 0;
  let child = startEngineProcess();
  try {
    await waitListening(child);
    let killed = false;
    const next = (): number | undefined => (killed || seq >= TOTAL ? undefined : ++seq);
    const onAccepted = (): void => {
      if (!killed && counts.accepted.size >= KILL_AFTER) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, () => client(next, counts, onAccepted)));
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    assert.equal(child.signalCode, 'SIGKILL');
    const beforeRestart = counts.accepted.size;

    child = startEngineProcess();
    await waitListening(child);
    killed = false;
    await Promise.all(Array.from({ length: CLIENTS }, () => client(next, counts, () => undefined)));
    assert.equal(seq, TOTAL);

    // Done when every queue is empty.
    await waitFor(async () => {
      const { queues } = (await adminRequest(`127.0.0.1:${adminPort}`, 'GET', '/queues')) as { queues: QueueSummary[] };
      return queues.every((q) => q.count === 0);
    }, 120_000, 'the queues to drain');

    const newDir = path.join(dir, 'data', 'mailboxes', 'alice@example.test', 'new');
    const delivered = new Map<number, number>();
    for (const f of await readdir(newDir)) {
      const m = /^Subject: crash (\d+)$/m.exec(await readFile(path.join(newDir, f), 'utf8'));
      assert.ok(m, `${f} is one of ours`);
      delivered.set(Number(m[1]), (delivered.get(Number(m[1])) ?? 0) + 1);
    }
    const lost = [...counts.accepted].filter((s) => !delivered.has(s));
    const duplicates = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
    const report = `sent ${counts.sent}, answered 250: ${counts.accepted.size} (${beforeRestart} before the kill), delivered: ${delivered.size} distinct, duplicates: ${duplicates}, lost: ${lost.length}`;
    t.diagnostic(`crash test: ${report}`);
    assert.deepEqual(lost, [], report);
    // A delivery repeated after the kill finds the file it made before (the part's id is in its name).
    assert.equal(duplicates, 0, report);
    assert.ok(beforeRestart >= KILL_AFTER);
    assert.ok(counts.accepted.size >= TOTAL - CLIENTS, `almost every message was answered 250: ${report}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
});
