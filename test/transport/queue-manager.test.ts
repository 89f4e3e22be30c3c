/**
 * The queue manager with an injected clock: retry schedule, 4xx then 250, 5xx at once, delay DSN, expiry NDR, Badmail, NDR copy,
 * restart, size limit and DSNs, expiry of mail that cannot be worked on, queue metrics.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TransportEngine } from '../../src/transport/engine.js';
import { rfc5322Date } from '../../src/transport/dsn.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { searchTrackingLog } from '../../src/transport/tracking-log.js';
import { engineRules, HOUR, MINUTE, ManualClock, maildirFiles, message, queuedId, sendMessage, startEngine, waitFor } from './engine-harness.js';
import { startRemotePeer, type RemotePeer } from './remote-peer.js';
import { writeOldLayout } from './slot-files.js';
import { startSmtpSink } from '../support/smtp-sink.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-qm-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An engine whose `*` connector is a smart host: the given peer. */
async function engineFor(name: string, peer: RemotePeer, clock: ManualClock, transport: Record<string, unknown> = {}): Promise<TransportEngine> {
  return startEngine(
    engineRules(path.join(dir, name), {}, { connectors: [{ name: 'outbound', addressSpaces: ['*'], smartHost: `127.0.0.1:${peer.port}` }], ...transport }),
    { clock },
  );
}

async function mailboxTexts(engine: TransportEngine, mailbox: string): Promise<string[]> {
  const files = await maildirFiles(engine.paths.mailboxDir, mailbox);
  return Promise.all(files.sort().map((f) => readFile(path.join(mailboxDir(engine.paths.mailboxDir, mailbox), 'new', f), 'utf8')));
}

async function settle(engine: TransportEngine): Promise<void> {
  await engine.manager.runDue();
  await engine.manager.runDue();
}

test('a remote host answering 4xx then 250: retried on the schedule (10, 10 minutes), delivered once, nothing early', async () => {
  const clock = new ManualClock();
  const peer = await startRemotePeer((n) => (n < 2 ? { code: 451, text: 'Try again later' } : 'accept'));
  const engine = await engineFor('4xx-then-250', peer, clock);
  try {
    const t0 = clock.now();
    const id = queuedId((await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['carol@remote.test'], content: message('Retry me') })).at(-1)!);
    await waitFor(() => peer.rcpts.length === 1 && engine.manager.messages('remote-delivery/remote.test').length === 1, 10_000, 'first attempt');
    await settle(engine);
    const [q] = engine.manager.queues().filter((x) => x.name === 'remote-delivery/remote.test');
    assert.equal(q?.state, 'retry');
    assert.equal(q?.nextRetry, new Date(t0 + 10 * MINUTE).toISOString());
    assert.match(q?.lastError ?? '', /^451 4\.\d\.\d .*Try again later/);
    const metrics = await engine.metrics.render();
    assert.match(metrics, /^portcullis_transport_queue_messages\{queue="remote-delivery"\} 1$/m, 'remote queues are summed under their state');
    assert.doesNotMatch(metrics, /queue="remote-delivery\//, 'no label per destination domain');

    clock.advance(9 * MINUTE);
    await settle(engine);
    assert.equal(peer.rcpts.length, 1, 'no attempt before the interval');
    const stuck = await engine.metrics.render();
    assert.match(stuck, /^portcullis_transport_queue_oldest_message_age_seconds\{queue="remote-delivery"\} 540$/m, 'the age of the oldest message, per state');
    assert.match(stuck, new RegExp(`^portcullis_transport_queue_next_retry_timestamp_seconds\\{queue="remote-delivery"\\} ${(t0 + 10 * MINUTE) / 1000}$`, 'm'));
    assert.doesNotMatch(stuck, /^portcullis_transport_queue_oldest_message_age_seconds\{queue="local-delivery"\}/m, 'no age for an empty state');
    assert.doesNotMatch(stuck, /queue="remote-delivery\//, 'no label per destination domain');
    clock.advance(1 * MINUTE);
    await settle(engine);
    assert.equal(peer.rcpts.length, 2);
    assert.equal(engine.manager.messages('remote-delivery/remote.test')[0]?.nextAttempt, new Date(t0 + 20 * MINUTE).toISOString());
    clock.advance(10 * MINUTE);
    await settle(engine);
    assert.equal(peer.rcpts.length, 3);
    assert.equal(peer.messages.length, 1);
    assert.match(peer.messages[0]!.content, /Subject: Retry me/);
    assert.equal(engine.store.all().length, 0, 'queue empty after delivery');
    assert.deepEqual(await maildirFiles(engine.paths.mailboxDir, 'alice@example.test'), [], 'no DSN for a plain delivery');
    await engine.tracking.flush();
    const events = (await searchTrackingLog(engine.paths.trackingLog, { id })).map((e) => e.event);
    assert.deepEqual(events, ['received', 'submitted', 'deferred', 'deferred', 'transferred']);
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('4xx forever: intervals 10, 10, 10 then 15 minutes; one delay DSN after 12 hours; expiry NDR 4.4.7 after 48 hours', async () => {
  const clock = new ManualClock();
  const peer = await startRemotePeer(() => ({ code: 451, text: 'Busy' }));
  const engine = await engineFor('expiry', peer, clock);
  try {
    const t0 = clock.now();
    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['dave@remote.test'], rcptArgs: ['NOTIFY=FAILURE,DELAY'], content: message('Never arrives') });
    await waitFor(() => peer.rcpts.length === 1 && engine.manager.messages('remote-delivery/remote.test')[0]?.attempts === 1, 10_000, 'first attempt');
    const gaps: number[] = [];
    let last = t0;
    for (let i = 0; i < 5; i++) {
      const next = Date.parse(engine.manager.messages('remote-delivery/remote.test')[0]!.nextAttempt!);
      gaps.push((next - last) / MINUTE);
      clock.t = next;
      last = next;
      await settle(engine);
    }
    assert.deepEqual(gaps, [10, 10, 10, 15, 15]);
    assert.equal(peer.rcpts.length, 6);

    clock.t = t0 + 12 * HOUR;
    await settle(engine);
    let alice = await mailboxTexts(engine, 'alice@example.test');
    assert.equal(alice.length, 1, 'one delay DSN');
    assert.match(alice[0]!, /Subject: Delivery delayed: Never arrives/);
    assert.match(alice[0]!, /Action: delayed/);
    assert.ok(alice[0]!.includes(`Will-Retry-Until: ${rfc5322Date(new Date(t0 + 48 * HOUR))}`), 'the delay DSN says when the engine gives up');
    assert.match(alice[0]!, /Final-Recipient: rfc822; ?dave@remote\.test/);

    clock.t = t0 + 24 * HOUR;
    await settle(engine);
    assert.equal((await mailboxTexts(engine, 'alice@example.test')).length, 1, 'the delay DSN is sent once');

    clock.t = t0 + 48 * HOUR;
    await settle(engine);
    alice = await mailboxTexts(engine, 'alice@example.test');
    assert.equal(alice.length, 2);
    const ndr = alice.find((t) => /Action: failed/.test(t)) ?? '';
    assert.match(ndr, /Status: 4\.4\.7/);
    assert.match(ndr, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.equal(engine.store.all().length, 0);
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('5xx fails at once with an NDR (NOTIFY=NEVER gets none); the NDR copy goes to dsn.copyNdrTo', async () => {
  const clock = new ManualClock();
  const peer = await startRemotePeer((_n, rcpt) => (rcpt.startsWith('gone') || rcpt.startsWith('quiet') ? { code: 550, text: 'No such user' } : 'accept'));
  const engine = await engineFor('5xx', peer, clock, { dsn: { copyNdrTo: 'bob@example.test' } });
  try {
    await sendMessage(engine.address.port, {
      from: 'alice@example.test', to: ['gone@remote.test', 'quiet@remote.test'], rcptArgs: ['', 'NOTIFY=NEVER'], content: message('Bounce me'),
    });
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).length === 1, 10_000, 'NDR copy');
    assert.equal(peer.rcpts.length, 2, 'one attempt only');
    const [ndr] = await mailboxTexts(engine, 'alice@example.test');
    assert.match(ndr ?? '', /Final-Recipient: rfc822; ?gone@remote\.test/);
    assert.doesNotMatch(ndr ?? '', /quiet@remote\.test/);
    assert.match(ndr ?? '', /Status: 5\.\d\.\d/);
    assert.match(ndr ?? '', /^Return-Path: <>/m);
    const [copy] = await mailboxTexts(engine, 'bob@example.test');
    assert.match(copy ?? '', /Final-Recipient: rfc822; ?gone@remote\.test/);
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('an unknown local recipient gets an NDR 5.1.1; a bounce that cannot be delivered goes to Badmail, never to <>', async () => {
  const clock = new ManualClock();
  const peer = await startRemotePeer(() => 'accept');
  const engine = await engineFor('badmail', peer, clock);
  try {
    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['nobody@example.test'], content: message('Unknown') });
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'NDR');
    assert.match((await mailboxTexts(engine, 'alice@example.test'))[0] ?? '', /Status: 5\.1\.1/);

    // From <> to nobody: no bounce possible. From a local nobody to nobody: its NDR fails in turn.
    await sendMessage(engine.address.port, { from: '', to: ['nobody@example.test'], content: message('Blank') });
    await sendMessage(engine.address.port, { from: 'ghost@example.test', to: ['nobody@example.test'], content: message('Ghost') });
    const badmail = engine.paths.badmailDir;
    const entries = async (): Promise<string[]> => (await readdir(badmail).catch(() => [])).filter((d) => !d.startsWith('.'));
    await waitFor(async () => (await entries()).length === 2, 10_000, 'two Badmail entries');
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
    const records = await Promise.all(
      (await entries()).map(async (d) => {
        assert.match(await readFile(path.join(badmail, d, 'message.eml'), 'utf8'), /Subject: /);
        return JSON.parse(await readFile(path.join(badmail, d, 'envelope.json'), 'utf8')) as { source: string; reason: string; envelope: { isDsn?: boolean } };
      }),
    );
    assert.ok(records.every((r) => r.source === 'undeliverable-bounce' && /5\.1\.1/.test(r.reason)));
    assert.ok(records.some((r) => r.envelope.isDsn === true), 'the failed NDR is in Badmail');
    assert.equal(peer.messages.length, 0, 'nothing went out');
    assert.equal((await mailboxTexts(engine, 'alice@example.test')).length, 1);
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('the queues are rebuilt from disk after a restart: attempts, next retry and frozen state kept', async () => {
  const clock = new ManualClock();
  let fail = true;
  const peer = await startRemotePeer(() => (fail ? { code: 452, text: 'Full' } : 'accept'));
  const rules = engineRules(path.join(dir, 'restart'), {}, { connectors: [{ name: 'outbound', addressSpaces: ['*'], smartHost: `127.0.0.1:${peer.port}` }] });
  let engine = await startEngine(rules, { clock });
  try {
    const id = queuedId((await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['erin@remote.test'], content: message('Survivor') })).at(-1)!);
    await waitFor(() => engine.manager.messages('remote-delivery/remote.test')[0]?.attempts === 1, 10_000, 'first attempt');
    await engine.manager.setFrozen('unreachable', true);
    await engine.close();

    engine = await startEngine(rules, { clock });
    const [m] = engine.manager.messages('remote-delivery/remote.test');
    assert.equal(m?.id, `${id}-1`);
    assert.equal(m?.attempts, 1);
    assert.equal(m?.nextAttempt, new Date(clock.now() + 10 * MINUTE).toISOString());
    assert.equal(engine.manager.queues().find((q) => q.name === 'unreachable')?.state, 'frozen');
    fail = false;
    clock.advance(10 * MINUTE);
    await settle(engine);
    assert.equal(peer.messages.length, 1);
    assert.equal(engine.store.all().length, 0);
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('a message at the size limit is delivered after its 250, and the NDR of one reaches its sender, not Badmail', async () => {
  const clock = new ManualClock();
  const engine = await startEngine(engineRules(path.join(dir, 'near-limit'), {}, { limits: { maxMessageSize: 4096 } }), { clock });
  try {
    const head = message('Near the limit');
    const line = `${'x'.repeat(62)}\r\n`;
    let content = head + line.repeat(Math.floor((4096 - head.length - 4) / line.length));
    content += `${'y'.repeat(4096 - content.length - 2)}\r\n`;
    assert.equal(Buffer.byteLength(content), 4096);

    const toBob = await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['bob@example.test'], content });
    assert.equal(toBob.at(-1)?.code, 250);
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).length === 1, 10_000, 'delivery to bob');
    // Maildir files hold LF line ends.
    const original = content.replace(/\r\n/g, '\n');
    assert.ok((await mailboxTexts(engine, 'bob@example.test'))[0]?.endsWith(original));

    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['nobody@example.test'], content });
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'NDR to alice');
    const [ndr] = await mailboxTexts(engine, 'alice@example.test');
    assert.match(ndr ?? '', /Status: 5\.1\.1/);
    assert.ok(ndr?.includes(original), 'the NDR carries the whole original, so is over the limit itself');
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
    assert.deepEqual(await readdir(engine.paths.badmailDir).catch(() => []), [], 'nothing in Badmail');
  } finally {
    await engine.close();
  }
});

test('unreadable content is retried in failed-retry until it expires, then fails 4.4.7 and leaves the queue', async () => {
  const clock = new ManualClock();
  const rules = engineRules(path.join(dir, 'unreadable'));
  const first = await startEngine(rules, { clock });
  let id: string;
  let contentPath: string;
  try {
    await first.manager.setFrozen('pre-submission', true);
    id = queuedId((await sendMessage(first.address.port, { from: 'alice@example.test', to: ['bob@example.test'], content: message('Lost content') })).at(-1)!);
    contentPath = first.store.contentPath(first.store.get(id)!.message.contentId);
  } finally {
    await first.close();
  }
  // A record written as an envelope beside its content file (as one is once changed, or by the version before slots).
  await writeOldLayout(first.paths.queueDir, id, 'content');
  // Lost while the engine was down: a running engine still holds what it received moments ago in memory.
  await unlink(contentPath);
  const engine = await startEngine(rules, { clock });
  try {
    const t0 = clock.now();
    await engine.manager.setFrozen('pre-submission', false);
    await settle(engine);
    assert.match(engine.manager.messages('failed-retry')[0]?.status ?? '', /^4\.3\.0 Message content unreadable/);

    clock.t = t0 + 47 * HOUR;
    await settle(engine);
    assert.equal(engine.manager.messages('failed-retry').length, 1, 'retried, not failed, before expiry');

    clock.t = t0 + 48 * HOUR;
    await settle(engine);
    assert.equal(engine.store.all().length, 0, 'no longer retried');
    await engine.tracking.flush();
    const failed = (await searchTrackingLog(engine.paths.trackingLog, { id })).filter((e) => e.event === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]?.reason ?? '', /^4\.4\.7 Message expired: .*last error: 4\.3\.0 Message content unreadable/);
  } finally {
    await engine.close();
  }
});

test('an unexpected error is retried until the message expires, then its recipients get an expiry NDR 4.4.7', async () => {
  const clock = new ManualClock();
  const engine = await startEngine(engineRules(path.join(dir, 'stuck')), { clock });
  // A file where a queue directory should be: every write into that queue throws.
  const awaiting = path.join(engine.paths.queueDir, 'local-delivery');
  try {
    const t0 = clock.now();
    await rm(awaiting, { recursive: true });
    await writeFile(awaiting, 'not a directory');
    // The mailbox store too, or a single local copy would go straight into its Maildir without being queued.
    await writeFile(engine.paths.mailboxDir, 'not a directory');
    const id = queuedId((await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['bob@example.test'], content: message('Stuck') })).at(-1)!);
    await settle(engine);
    const [first] = engine.manager.messages('pre-submission');
    assert.equal(first?.id, id);
    assert.equal(first?.attempts, 1);
    assert.match(first?.status ?? '', /^4\.3\.0 queue store: creating queue local-delivery: /);

    clock.t = t0 + 48 * HOUR;
    await settle(engine);
    assert.equal(engine.store.get(id), undefined, 'the expired message is gone');
    const [dsn] = engine.store.all();
    assert.equal(dsn?.message.envelope.isDsn, true, 'only its NDR is left, waiting for the queue to work again');

    await rm(awaiting);
    await mkdir(awaiting);
    await rm(engine.paths.mailboxDir);
    await engine.manager.retryNow('pre-submission');
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'NDR to alice');
    const [ndr] = await mailboxTexts(engine, 'alice@example.test');
    assert.match(ndr ?? '', /Status: 4\.4\.7/);
    assert.match(ndr ?? '', /last error: 4\.3\.0 queue store: creating queue local-delivery: /);
  } finally {
    await engine.close();
  }
});

/** A smart host that takes each connection and drops it before the greeting: it answers nobody, and counts the tries. */
async function startDeadHost(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('a dead primary connector is passed over at once for the backup; it is tried again only at its own retry time; with every route down, mail waits in unreachable until one is back', async () => {
  const clock = new ManualClock();
  const primary = await startDeadHost();
  let backup = await startRemotePeer(() => 'accept');
  const backupPort = backup.port;
  const engine = await startEngine(
    engineRules(path.join(dir, 'failover'), {}, {
      connectors: [
        { name: 'primary', addressSpaces: ['*'], cost: 1, smartHost: `127.0.0.1:${primary.port}` },
        { name: 'backup', addressSpaces: ['*'], cost: 5, smartHost: `127.0.0.1:${backupPort}` },
      ],
    }),
    { clock },
  );
  try {
    const t0 = clock.now();
    const send = async (subject: string): Promise<string> =>
      queuedId((await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['carol@remote.test'], content: message(subject) })).at(-1)!);

    const first = await send('First');
    await waitFor(() => backup.messages.length === 1, 10_000, 'the backup takes the first message without waiting for a retry');
    assert.equal(primary.connections(), 1);
    await settle(engine);
    assert.equal(engine.store.all().length, 0);
    await engine.tracking.flush();
    const events = await searchTrackingLog(engine.paths.trackingLog, { id: first });
    assert.deepEqual(events.map((e) => e.event), ['received', 'submitted', 'deferred', 'transferred']);
    assert.match(events[2]?.reason ?? '', /^451 4\.4\.1 No answer from any host/);

    clock.t = t0 + 5 * MINUTE;
    await send('Second');
    await waitFor(() => backup.messages.length === 2, 10_000, 'the second message');
    assert.equal(primary.connections(), 1, 'a connector that is down is not tried before its retry time');

    clock.t = t0 + 10 * MINUTE;
    await send('Third');
    await waitFor(() => backup.messages.length === 3, 10_000, 'the third message');
    assert.equal(primary.connections(), 2, 'at its retry time the primary is tried again, and found still down');

    // The backup dies too: every route is down, so the message waits in `unreachable`, not in a remote queue.
    await backup.close();
    clock.t = t0 + 15 * MINUTE;
    const fourth = await send('Fourth');
    await waitFor(() => engine.manager.messages('unreachable').length === 1, 10_000, 'the fourth message in unreachable');
    assert.equal(primary.connections(), 2);
    assert.deepEqual(engine.manager.messages('remote-delivery/remote.test'), []);
    const [waiting] = engine.manager.messages('unreachable');
    assert.equal(waiting?.id, `${fourth}-1`);
    // The primary is back (or tried again) at t0 + 20 min, its second failure's 10 minutes after t0 + 10 min.
    assert.equal(waiting?.nextAttempt, new Date(t0 + 20 * MINUTE).toISOString());
    assert.match(waiting?.status ?? '', /^451 4\.4\.1 No answer from any host/);

    backup = await startRemotePeer(() => 'accept', { port: backupPort });
    clock.t = t0 + 20 * MINUTE - 1;
    await settle(engine);
    assert.equal(backup.messages.length, 0, 'nothing before a route is due back');
    clock.t = t0 + 20 * MINUTE;
    await settle(engine);
    assert.equal(primary.connections(), 3, 'the primary, due back first, is tried');
    assert.equal(backup.messages.length, 0, 'the backup is not known to be back before its own retry time');
    assert.equal(engine.manager.messages('unreachable')[0]?.nextAttempt, new Date(t0 + 25 * MINUTE).toISOString());
    clock.t = t0 + 25 * MINUTE;
    await settle(engine);
    assert.equal(primary.connections(), 3, 'the primary stays down until t0 + 30 min');
    assert.equal(backup.messages.length, 1, 'the backup, back in routing, takes the message');
    assert.match(backup.messages[0]!.content, /Subject: Fourth/);
    assert.equal(engine.store.all().length, 0);
  } finally {
    await engine.close();
    await backup.close();
    await primary.close();
  }
});

/** What a mail client sees in a DSN, parsed by Python's email package: subject, and each recipient's Action and Status. */
function parseDsn(text: string): { subject: string; recipients: { action: string; status: string; finalRecipient: string }[]; returned: string } {
  const script = `
import email, json, sys
msg = email.message_from_bytes(sys.stdin.buffer.read())
parts = msg.get_payload()
status = parts[1].get_payload()
print(json.dumps({
  'subject': msg['Subject'],
  'recipients': [{'action': s['Action'], 'status': s['Status'], 'finalRecipient': s['Final-Recipient']} for s in status[1:]],
  'returned': parts[2].get_content_type(),
}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script], { input: Buffer.from(text, 'utf8'), encoding: 'utf8' })) as ReturnType<typeof parseDsn>;
}

test('NOTIFY=SUCCESS to a next hop without DSN gets a relayed report; to one with DSN the NOTIFY goes on and we report nothing', async () => {
  const clock = new ManualClock();
  const plain = await startRemotePeer(() => 'accept');
  const withDsn = await startRemotePeer(() => 'accept', { dsn: true });
  const engine = await startEngine(
    engineRules(path.join(dir, 'relayed'), {}, {
      connectors: [
        { name: 'plain', addressSpaces: ['plain.test'], smartHost: `127.0.0.1:${plain.port}` },
        { name: 'dsn', addressSpaces: ['dsn.test'], smartHost: `127.0.0.1:${withDsn.port}` },
      ],
    }),
    { clock },
  );
  try {
    await sendMessage(engine.address.port, {
      from: 'alice@example.test', to: ['carol@plain.test', 'dan@plain.test', 'erin@dsn.test'], rcptArgs: ['NOTIFY=SUCCESS', '', 'NOTIFY=SUCCESS'], content: message('Tell me'),
    });
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the relayed report');
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
    assert.deepEqual(plain.rcpts.sort(), ['carol@plain.test', 'dan@plain.test']);
    assert.deepEqual(withDsn.notify, ['SUCCESS'], 'the host that offers DSN got the NOTIFY');
    const reports = await mailboxTexts(engine, 'alice@example.test');
    assert.equal(reports.length, 1, 'one report: carol only (dan asked for none, erin\'s host reports itself)');
    const dsn = parseDsn(reports[0]!);
    assert.equal(dsn.subject, 'Relayed: Tell me');
    assert.deepEqual(dsn.recipients, [{ action: 'relayed', status: '2.6.0', finalRecipient: 'rfc822; carol@plain.test' }], 'the status the next hop gave');
    assert.equal(dsn.returned, 'text/rfc822-headers');
    assert.match(await engine.metrics.render(), /^portcullis_transport_dsns_total\{action="relayed"\} 1$/m);
  } finally {
    await engine.close();
    await plain.close();
    await withDsn.close();
  }
});

test('relayed mail keeps its local part as given: recipients differing only in case stay two, a forward target keeps its case; our mailboxes match in any case', async () => {
  const clock = new ManualClock();
  const peer = await startRemotePeer(() => 'accept');
  const engine = await startEngine(
    engineRules(path.join(dir, 'case'), {
      directory: {
        mailboxes: [{ address: 'alice@example.test' }, { address: 'bob@example.test' }],
        aliases: [{ address: 'sales@example.test', forwardTo: ['Jane.Doe@Partner.test'] }],
      },
    }, { connectors: [{ name: 'outbound', addressSpaces: ['*'], smartHost: `127.0.0.1:${peer.port}` }] }),
    { clock },
  );
  try {
    await sendMessage(engine.address.port, {
      from: 'alice@example.test', to: ['John.Smith@remote.test', 'john.smith@remote.test', 'Sales@Example.test', 'BOB@example.test'], content: message('Case'),
    });
    await waitFor(() => peer.messages.length === 2, 10_000, 'one transaction per remote domain');
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).length === 1, 10_000, 'local delivery to bob');
    assert.deepEqual(peer.rcpts.sort(), ['Jane.Doe@partner.test', 'John.Smith@remote.test', 'john.smith@remote.test']);
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
  } finally {
    await engine.close();
    await peer.close();
  }
});

test('the hop limit counts the Received: fields a message arrived with, not ours: at the limit it is delivered, over it fails 4.4.6', async () => {
  const clock = new ManualClock();
  const engine = await startEngine(engineRules(path.join(dir, 'hops')), { clock });
  try {
    const withHops = (n: number, subject: string): string =>
      Array.from({ length: n }, (_, i) => `Received: from hop${i}.remote.test by hop${i + 1}.remote.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n`).join('') + message(subject);
    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['bob@example.test'], content: withHops(15, 'Fifteen hops') });
    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['bob@example.test'], content: withHops(16, 'Sixteen hops') });
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'bob@example.test')).length === 1, 10_000, 'the one at the limit');
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the NDR of the one over it');
    await waitFor(() => engine.store.all().length === 0, 10_000, 'empty queue');
    assert.match((await mailboxTexts(engine, 'bob@example.test'))[0]!, /Subject: Fifteen hops/);
    const ndr = parseDsn((await mailboxTexts(engine, 'alice@example.test'))[0]!);
    assert.equal(ndr.subject, 'Undeliverable: Sixteen hops');
    assert.deepEqual(ndr.recipients.map((r) => r.status), ['4.4.6']);
  } finally {
    await engine.close();
  }
});

test('Postfix peers: a smart host that hangs up at connect (smtp-sink -q CONNECT) is passed over for a backup without DSN (smtp-sink -N), which gets the recipient as written; NOTIFY=SUCCESS is answered relayed', async () => {
  const clock = new ManualClock();
  const dead = await startSmtpSink(['-q', 'CONNECT']);
  const backup = await startSmtpSink(['-N']);
  const engine = await startEngine(
    engineRules(path.join(dir, 'postfix-peers'), {}, {
      connectors: [
        { name: 'primary', addressSpaces: ['remote.test'], cost: 1, smartHost: `127.0.0.1:${dead.port}` },
        { name: 'backup', addressSpaces: ['remote.test'], cost: 2, smartHost: `127.0.0.1:${backup.port}` },
      ],
    }),
    { clock },
  );
  try {
    await sendMessage(engine.address.port, { from: 'alice@example.test', to: ['John.Smith@remote.test'], rcptArgs: ['NOTIFY=SUCCESS'], content: message('Via Postfix') });
    await waitFor(async () => (await backup.transactions()).length === 1, 10_000, 'the backup smtp-sink has the message, with no retry waited for');
    const [got] = await backup.transactions();
    assert.match(got!, /^X-Rcpt-Args: <John\.Smith@remote\.test>$/m, 'the local part as given, and no NOTIFY to a host without DSN');
    assert.match(got!, /Subject: Via Postfix/);
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the relayed report');
    const dsn = parseDsn((await mailboxTexts(engine, 'alice@example.test'))[0]!);
    assert.deepEqual(dsn.recipients.map((r) => [r.action, r.finalRecipient]), [['relayed', 'rfc822; John.Smith@remote.test']]);
    assert.deepEqual(await dead.transactions(), []);
  } finally {
    await engine.close();
    await backup.stop();
    await dead.stop();
  }
});

test('an NDR returns the message as received: 8-bit Latin-1 sent by Python smtplib comes back byte for byte', async () => {
  const clock = new ManualClock();
  const engine = await startEngine(engineRules(path.join(dir, 'latin1')), { clock });
  try {
    const body = Buffer.from('Gr\xfc\xdfe aus K\xf6ln, \xe0 bient\xf4t\r\n', 'latin1');
    const content = Buffer.concat([Buffer.from('From: alice@example.test\r\nTo: nobody@example.test\r\nSubject: Latin-1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), body]);
    const script = 'import smtplib, sys\ns = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)\ns.sendmail("alice@example.test", ["nobody@example.test"], sys.stdin.buffer.read())\ns.quit()';
    // Not execFileSync: the engine answering smtplib runs in this process.
    const python = spawn('python3', ['-c', script, String(engine.address.port)], { stdio: ['pipe', 'ignore', 'inherit'], timeout: 20_000 });
    python.stdin.end(content);
    const [code] = (await once(python, 'exit')) as [number | null];
    assert.equal(code, 0, 'smtplib sent the message');
    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the NDR');
    const [file] = await maildirFiles(engine.paths.mailboxDir, 'alice@example.test');
    const ndr = await readFile(path.join(mailboxDir(engine.paths.mailboxDir, 'alice@example.test'), 'new', file!));
    // Maildir files hold LF line ends.
    assert.ok(ndr.includes(Buffer.from(body.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')), 'the 8-bit body is returned unaltered');
    assert.equal(ndr.includes(Buffer.from('\ufffd', 'utf8')), false, 'no replacement characters');
  } finally {
    await engine.close();
  }
});
