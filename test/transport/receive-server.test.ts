/** The engine's SMTP listener: replies, what is on disk at the 250, DSN parameters, XFORWARD, allowFrom, size, disk failure. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { replyTexts, type SmtpReply } from '../../src/net/smtp-reply.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { engineRules, maildirFiles, message, queuedId, RawSmtp, sendMessage, startEngine, waitFor } from './engine-harness.js';
import { slotOf, writeOldLayout } from './slot-files.js';

let dir: string;
let engine: TransportEngine;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-receive-'));
  engine = await startEngine(engineRules(dir, {}, { limits: { maxMessageSize: 4096 } }));
  // Hold new mail where the receive server put it, so the test sees exactly what was on disk at the 250.
  await engine.manager.setFrozen('pre-submission', true);
});
after(async () => {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

test('EHLO advertises DSN, SIZE, XFORWARD and XCLIENT', async () => {
  const { client } = await RawSmtp.connect(engine.address.port);
  const ehlo = await client.send('EHLO edge.example.test');
  client.close();
  assert.equal(ehlo.code, 250);
  for (const ext of ['DSN', 'SIZE 4096', 'XFORWARD', 'XCLIENT', 'ENHANCEDSTATUSCODES']) assert.match(ehlo.text, new RegExp(`^${ext}`, 'm'));
});

test('250 2.6.0 <id@host> only once content and envelope are in their slot in pre-submission, with DSN parameters and the XFORWARD client', async () => {
  const replies = await sendMessage(engine.address.port, {
    before: ['XFORWARD ADDR=192.0.2.7 HELO=client.remote.test'],
    from: 'sender@remote.test',
    mailArgs: 'RET=HDRS ENVID=env+2B42',
    to: ['alice@example.test', 'bob@example.test'],
    rcptArgs: ['NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice+40example.test', 'NOTIFY=NEVER'],
    content: message('Receive test'),
  });
  assert.deepEqual(replies.map((r) => r.code), [220, 250, 250, 250, 250, 250, 354, 250]);
  assert.equal(replies[3]?.text.startsWith('2.1.0'), true, 'MAIL answered with 2.1.0');
  const id = queuedId(replies.at(-1)!);
  assert.match(replies.at(-1)!.text, /@mx\.example\.test> Queued mail for delivery$/);

  const queueDir = engine.paths.queueDir;
  // Content and envelope in one slot file, whose name was durable before the message arrived.
  const { record } = await slotOf(queueDir, id);
  const stored = record.message;
  assert.equal(stored.envelope.mailFrom, 'sender@remote.test');
  assert.equal(stored.envelope.ret, 'HDRS');
  assert.equal(stored.envelope.envid, 'env+42');
  assert.deepEqual(stored.envelope.client, { ip: '192.0.2.7', helo: 'client.remote.test' });
  assert.deepEqual(stored.envelope.recipients, [
    { address: 'alice@example.test', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;alice@example.test' },
    { address: 'bob@example.test', notify: ['NEVER'] },
  ]);
  assert.equal(stored.messageId, '<Receivetest@client.example.test>');
  const content = record.content.toString('utf8');
  assert.deepEqual(await readdir(path.join(queueDir, 'content')), [], 'nothing else written for it');
  assert.match(content, /^Received: from client\.remote\.test \(\[192\.0\.2\.7\]\)\r\n\tby mx\.example\.test \(Portcullis transport\) with ESMTP id /);
  assert.match(content, /\r\nSubject: Receive test\r\nMessage-ID: <Receivetest@client\.example\.test>\r\n\r\nBody of Receive test\.\r\n$/);
  assert.equal(stored.envelope.size, Buffer.byteLength(content));
  assert.equal(stored.envelope.sentSize, Buffer.byteLength(message('Receive test')), 'the size limit is judged on what the client sent');
  assert.equal(engine.manager.messages('pre-submission').some((m) => m.id === id && m.status === '4.3.2 Frozen by the administrator'), true);
});

test('a client outside transport.allowFrom gets 554 5.7.1 and nothing else', async () => {
  const closed = await startEngine(engineRules(path.join(dir, 'closed'), {}, { allowFrom: ['192.0.2.0/24'] }));
  try {
    const replies = await sendMessage(closed.address.port, { from: 'a@remote.test', to: ['alice@example.test'], content: message('x') });
    assert.equal(replies[0]?.code, 554);
    assert.equal(replies[0]?.text, '5.7.1 Access denied');
  } finally {
    await closed.close();
  }
});

test('size: SIZE= over the limit and content over the limit are refused 552 5.3.4, nothing stays on disk', async () => {
  const declared = await sendMessage(engine.address.port, { from: 'a@remote.test', mailArgs: 'SIZE=5000', to: ['alice@example.test'], content: message('x') });
  assert.equal(declared.at(-1)?.code, 552);
  assert.match(declared.at(-1)!.text, /^5\.3\.4 /);
  const before = engine.store.all().length;
  const big = await sendMessage(engine.address.port, { from: 'a@remote.test', to: ['alice@example.test'], content: `${message('big')}${'x'.repeat(6000)}\r\n` });
  assert.equal(big.at(-1)?.code, 552);
  assert.match(big.at(-1)!.text, /^5\.3\.4 /);
  assert.equal(engine.store.all().length, before);
});

test('a body over the limit is read to its end but not stored: the slot files stay within the limit, and the reply is 552 5.3.4', async () => {
  const slotDir = path.join(engine.paths.queueDir, 'incoming');
  const slotBytes = async (): Promise<number> => {
    let total = 0;
    for (const name of await readdir(slotDir)) total += (await stat(path.join(slotDir, name))).size;
    return total;
  };
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let most = 0;
  const body = async function* (): AsyncGenerator<Buffer> {
    yield Buffer.from(message('huge'));
    for (let i = 0; i < 64; i++) {
      yield chunk;
      most = Math.max(most, await slotBytes());
    }
  };
  const tx = engine.open({ ip: '192.0.2.9' });
  assert.equal(tx.mail('a@remote.test').code, 250);
  assert.equal(tx.rcpt({ address: 'alice@example.test' }).code, 250);
  const r = await tx.data(body());
  assert.deepEqual([r.code, r.enhanced], [552, '5.3.4']);
  // 4 MiB were sent; what reached the slots is at most the limit and the one chunk that crossed it.
  assert.ok(most <= 4096 + chunk.length, `slot files grew to ${most} bytes`);
});

test('a slot directory that cannot be written gives 452 4.3.1', async () => {
  const broken = await startEngine(engineRules(path.join(dir, 'broken')));
  try {
    const slotDir = path.join(broken.paths.queueDir, 'incoming');
    await rm(slotDir, { recursive: true });
    await writeFile(slotDir, 'not a directory');
    // To a remote address: the message must be queued (mail for one local mailbox is delivered at receipt instead).
    const replies = await sendMessage(broken.address.port, { from: 'a@remote.test', to: ['carol@remote.test'], content: message('disk') });
    assert.equal(replies.at(-1)?.code, 452);
    assert.equal(replies.at(-1)?.text, '4.3.1 Insufficient system storage');
  } finally {
    await broken.close();
  }
});

test('greets at once: ten connections in a row are greeted in less time than smtp-server\'s 100 ms pause would take alone', async () => {
  const started = performance.now();
  for (let i = 0; i < 10; i++) {
    const { client, greeting } = await RawSmtp.connect(engine.address.port);
    client.close();
    assert.equal(greeting.code, 220);
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `10 greetings took ${elapsed.toFixed(0)} ms; with the early-talker pause they take at least 1000 ms`);
});

test('a queue left by an earlier version (pre-submission/<id>.json) is taken over at start: its mail is delivered once and the old directory goes', async () => {
  const data = path.join(dir, 'legacy');
  const first = await startEngine(engineRules(data));
  let id: string;
  try {
    await first.manager.setFrozen('pre-submission', true);
    id = queuedId((await sendMessage(first.address.port, { from: 'a@remote.test', to: ['alice@example.test'], content: message('legacy') })).at(-1)!);
  } finally {
    await first.close();
  }
  // The layout before pre-submission moved beside the content.
  const queueDir = first.paths.queueDir;
  await writeOldLayout(queueDir, id, 'pre-submission');

  const second = await startEngine(engineRules(data));
  try {
    assert.equal(second.store.get(id)?.queue, 'pre-submission');
    await second.manager.setFrozen('pre-submission', false);
    await second.manager.runDue();
    await waitFor(async () => (await maildirFiles(second.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the legacy message in the Maildir');
    assert.equal((await readdir(queueDir)).includes('pre-submission'), false);
    assert.deepEqual(await readdir(path.join(queueDir, 'content')), []);
  } finally {
    await second.close();
  }
});

test('both doors, the SMTP listener and open() for a caller in this process, answer the same steps in the same words', async () => {
  const both = await startEngine(engineRules(path.join(dir, 'doors'), {}, { fsync: false, limits: { maxMessageSize: 4096, maxRecipients: 2 } }));
  try {
    const big = `Subject: big\r\n\r\n${'x'.repeat(5000)}\r\n`;
    const small = message('Doors');
    const recipients = ['alice@example.test', 'bob@example.test', 'carol@example.test', 'Alice@example.test', 'alice@example.test'];
    const shown = (r: { code: number; text: string }): string => `${r.code} ${r.text}`.replace(/<[^@>]+@/, '<ID@');

    const { client } = await RawSmtp.connect(both.address.port);
    await client.send('EHLO client.example.test');
    const tcp = [shown(await client.send('MAIL FROM:<sender@remote.test> SIZE=5000')), shown(await client.send('MAIL FROM:<sender@remote.test>'))];
    for (const to of recipients) tcp.push(shown(await client.send(`RCPT TO:<${to}>`)));
    await client.send('DATA');
    tcp.push(shown(await client.data(big)));
    await client.send('MAIL FROM:<sender@remote.test>');
    await client.send('RCPT TO:<alice@example.test>');
    await client.send('DATA');
    tcp.push(shown(await client.data(small)));
    client.close();

    const said = (r: SmtpReply): string => shown({ code: r.code, text: replyTexts(r)[0] ?? '' });
    const door = both.open({ ip: '192.0.2.7', helo: 'client.example.test' });
    const direct = [said(door.mail('sender@remote.test', { size: 5000 })), said(door.mail('sender@remote.test'))];
    for (const to of recipients) direct.push(said(door.rcpt({ address: to })));
    direct.push(said(await door.data(chunks(big))));
    const next = both.open({ ip: '192.0.2.7', helo: 'client.example.test' });
    next.mail('sender@remote.test');
    next.rcpt({ address: 'alice@example.test' });
    direct.push(said(await next.data(chunks(small))));

    assert.deepEqual(direct, tcp);
    assert.deepEqual(tcp, [
      '552 5.3.4 Error: message exceeds fixed maximum message size 4096',
      '250 2.1.0 Accepted',
      '250 2.1.5 Accepted',
      '250 2.1.5 Accepted',
      '452 4.5.3 Error: too many recipients',
      '250 2.1.5 Accepted',
      '250 2.1.5 Accepted',
      '552 5.3.4 Message size exceeds the limit of 4096 bytes',
      '250 2.6.0 <ID@mx.example.test> Queued mail for delivery',
    ]);
  } finally {
    await both.close();
  }
});

/** `text` as the body a caller in this process hands over, in two chunks. */
async function* chunks(text: string): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text, 'latin1');
  yield bytes.subarray(0, 7);
  yield bytes.subarray(7);
}
