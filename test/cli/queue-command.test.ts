/** `portcullis queue` and `portcullis track` as subprocesses against a running engine's admin interface. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { TransportEngine } from '../../src/transport/engine.js';
import type { MessageSummary, QueueSummary } from '../../src/transport/admin-api.js';
import type { TrackingEvent } from '../../src/transport/tracking-log.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { engineRules, ManualClock, maildirFiles, message, queuedId, sendMessage, startEngine, waitFor } from '../transport/engine-harness.js';
import { startRemotePeer, type RemotePeer } from '../transport/remote-peer.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

let dir: string;
let peer: RemotePeer;
let engine: TransportEngine;
let accept = false;
const clock = new ManualClock();

/** Runs the real CLI; resolves to stdout, or rejects with the exit code and stderr. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, timeout: 60_000 });
  return stdout;
}
const queue = (...args: string[]): Promise<string> => cli('queue', ...args, '--admin', `127.0.0.1:${engine.admin.port}`);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-queue-cli-'));
  peer = await startRemotePeer(() => (accept ? 'accept' : { code: 451, text: 'Not now' }));
  engine = await startEngine(
    engineRules(dir, {}, { connectors: [{ name: 'outbound', addressSpaces: ['*'], smartHost: `127.0.0.1:${peer.port}` }] }),
    { clock },
  );
});
after(async () => {
  await engine.close();
  await peer.close();
  await rm(dir, { recursive: true, force: true });
});

async function queueOne(subject: string): Promise<string> {
  const id = queuedId((await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['frank@remote.test'], content: message(subject) })).at(-1)!);
  await waitFor(() => engine.store.get(`${id}-1`)?.message.attempts === 1, 10_000, `first attempt of ${subject}`);
  return `${id}-1`;
}

test('list, messages, show, freeze, retry, unfreeze, delete with and without NDR, and track', async () => {
  const first = await queueOne('First');
  const second = await queueOne('Second');
  const third = await queueOne('Third');

  const list = JSON.parse(await queue('list', '--json')) as { queues: QueueSummary[] };
  const remote = list.queues.find((q) => q.name === 'remote-delivery/remote.test');
  assert.equal(remote?.count, 3);
  assert.equal(remote?.state, 'retry');
  assert.match(remote?.lastError ?? '', /^451 .*Not now/);
  assert.ok(list.queues.some((q) => q.name === 'pre-submission' && q.count === 0), 'the fixed queues are always listed');
  assert.match(await queue('list'), /^remote-delivery\/remote\.test\s+retry\s+3\s+\S+\s+\S+\s+451 /m);

  assert.match(await queue('freeze', 'remote-delivery/remote.test'), /frozen: queue remote-delivery\/remote\.test/);
  const frozen = JSON.parse(await queue('messages', 'remote-delivery/remote.test', '--json')) as { messages: MessageSummary[] };
  assert.deepEqual(frozen.messages.map((m) => [m.id, m.status]), [first, second, third].map((id) => [id, '4.3.2 Frozen by the administrator']));
  assert.match(await queue('list'), /^remote-delivery\/remote\.test\s+frozen\s+3/m);

  accept = true;
  assert.match(await queue('retry', first), /retrying 1 message/);
  await engine.manager.runDue();
  assert.equal(peer.messages.length, 0, 'a frozen queue is not delivered, even on retry');

  await queue('freeze', second);
  assert.match(await queue('show', second), /^status\s+4\.3\.2 Frozen by the administrator$/m);
  await queue('unfreeze', 'remote-delivery/remote.test');
  await waitFor(() => !engine.store.get(first), 10_000, 'first delivered');
  assert.equal(peer.messages.length, 1);
  await engine.manager.runDue();
  assert.equal(engine.store.get(third)?.message.attempts, 1, 'retry of one message leaves the others on their schedule');
  assert.equal(engine.store.get(second)?.message.attempts, 1);

  assert.match(await queue('delete', second), /deleted .* \(no NDR\)/);
  assert.match(await queue('delete', third, '--ndr'), /NDR sent/);
  await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the NDR');
  const [ndrFile] = await maildirFiles(engine.paths.mailboxDir, 'alice@example.test');
  const ndr = await readFile(path.join(mailboxDir(engine.paths.mailboxDir, 'alice@example.test'), 'new', ndrFile!), 'utf8');
  assert.match(ndr, /Subject: Undeliverable: Third/);
  assert.match(ndr, /Status: 5\.0\.0/);
  assert.match(ndr, /deleted from the queue by the administrator/);
  await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queues');
  assert.equal(peer.messages.length, 1, 'deleted messages never went out');

  accept = false;
  const fourth = await queueOne('Fourth');
  accept = true;
  assert.match(await queue('retry', 'remote-delivery/remote.test'), /retrying 1 message/);
  await waitFor(() => !engine.store.get(fourth), 10_000, 'fourth delivered by the queue retry');
  assert.equal(peer.messages.length, 2);

  await assert.rejects(queue('show', second), (err: { code?: number; stderr?: string }) => err.code === 1 && /no queued message/.test(err.stderr ?? ''));

  await engine.tracking.flush();
  const log = ['--log', engine.paths.trackingLog];
  const secondRoot = second.replace(/-1$/, '');
  const events = JSON.parse(await cli('track', '--id', secondRoot, '--json', ...log)) as TrackingEvent[];
  assert.deepEqual(events.map((e) => e.event), ['received', 'submitted', 'deferred', 'failed']);
  assert.match(events.at(-1)?.reason ?? '', /no NDR/);
  assert.ok(events.every((e) => e.sender === 'alice@example.test' && e.clientIp === '127.0.0.1'));
  const byMessageId = JSON.parse(await cli('track', '--id', '<Second@client.example.test>', '--json', ...log)) as TrackingEvent[];
  assert.equal(byMessageId.length, events.length);
  const toFrank = JSON.parse(await cli('track', '--recipient', 'FRANK@remote.test', '--json', ...log)) as TrackingEvent[];
  assert.equal(toFrank.filter((e) => e.event === 'transferred').length, 2);
  assert.equal(toFrank.filter((e) => e.event === 'received').length, 4);
  const dsnToAlice = JSON.parse(await cli('track', '--sender', '', '--json', ...log)) as TrackingEvent[];
  assert.ok(dsnToAlice.some((e) => e.event === 'delivered' && e.recipients.includes('alice@example.test')), 'the NDR shows as delivered from <>');
  assert.match(await cli('track', '--sender', 'nobody@nowhere.test', ...log), /no matching events/);
});

test('queue with an unknown action, or without the id it needs, says what is wrong and exits 2', async () => {
  for (const [args, why] of [
    [['bogus'], /unknown action 'bogus'/],
    [['show'], /'show' needs a queue or message id/],
  ] as const) {
    const err = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'queue', ...args], { cwd: root }).then(
      () => assert.fail('exit 0'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2);
    assert.match(err.stderr, why);
    assert.match(err.stderr, /usage: portcullis queue list/);
  }
});

test('queue retry on a frozen message lists its next attempt as now, not 1970; queue delete --ndr of a bounce says it went to Badmail', async () => {
  accept = false;
  const id = queuedId((await sendMessage(engine.address.port, { from: '', to: ['frank@remote.test'], content: message('A bounce') })).at(-1)!);
  const part = `${id}-1`;
  await waitFor(() => engine.store.get(part)?.message.attempts === 1, 10_000, 'first attempt of the bounce');
  await queue('freeze', part);
  await queue('retry', part);
  const listed = JSON.parse(await queue('messages', 'remote-delivery/remote.test', '--json')) as { messages: MessageSummary[] };
  assert.equal(listed.messages.find((m) => m.id === part)?.nextAttempt, new Date(clock.now()).toISOString());
  assert.doesNotMatch(await queue('show', part), /1970-/);

  assert.match(await queue('delete', part, '--ndr'), new RegExp(`^deleted ${part} \\(a bounce is never bounced: kept in Badmail\\)$`, 'm'));
  const entries = (await readdir(engine.paths.badmailDir)).filter((d) => !d.startsWith('.'));
  assert.equal(entries.length, 1);
  const record = JSON.parse(await readFile(path.join(engine.paths.badmailDir, entries[0]!, 'envelope.json'), 'utf8')) as { source: string; reason: string };
  assert.equal(record.source, 'undeliverable-bounce');
  assert.match(record.reason, /deleted from the queue by the administrator/);
});
