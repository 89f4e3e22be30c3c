/**
 * The edge's bound on a back end in its process that stops taking the message (no socket can show
 * this: the stall is the back end's own), and that waiting for a slow client is not counted against it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reply } from '../../src/net/smtp-reply.js';
import { BackendTimeout } from '../../src/edge/backend-unavailable.js';
import { InProcessSession, type InProcessBackend } from '../../src/edge/in-process-session.js';
import { relayed } from '../support/relayed.js';

const client = { address: '192.0.2.7', helo: 'client.test', proto: 'ESMTP' } as const;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A back end that reads the body with `read` and answers 250; `abandoned` counts its abandoned transactions. */
function backend(read: (body: AsyncIterable<Buffer>) => Promise<void>): InProcessBackend & { abandoned: number } {
  const b = {
    host: '127.0.0.1',
    port: 25,
    abandoned: 0,
    begin: () => ({
      mail: () => reply(250, '2.1.0', 'Accepted'),
      rcpt: () => reply(250, '2.1.5', 'Accepted'),
      data: async (body: AsyncIterable<Buffer>) => {
        await read(body);
        return reply(250, '2.6.0', 'queued');
      },
      abandon: () => void (b.abandoned += 1),
    }),
  };
  return b;
}

async function* slowClient(): AsyncGenerator<Buffer> {
  yield Buffer.from('Subject: slow\r\n\r\n');
  await sleep(400);
  yield Buffer.from('body\r\n');
}

test('a back end that takes no data for timeoutMs: BackendTimeout (451 4.7.0), its transaction abandoned, the session not lent again', async () => {
  const stuck = backend(() => new Promise(() => undefined));
  const s = new InProcessSession(stuck, 150);
  await s.begin(client);
  await s.mailFrom('a@remote.test');
  await s.rcptTo('b@example.test');
  const started = Date.now();
  await assert.rejects(relayed(s, slowClient()), (err) => err instanceof BackendTimeout && err.reply.code === 451 && err.reply.enhanced === '4.7.0');
  assert.ok(Date.now() - started < 2000);
  assert.equal(stuck.abandoned, 1);
  assert.equal(s.reusable, false);
});

test('a client slower than timeoutMs is not the back end stalling: the reply is the back end own', async () => {
  const reader = backend(async (body) => {
    for await (const _ of body) void _;
  });
  const s = new InProcessSession(reader, 150);
  await s.begin(client);
  await s.mailFrom('a@remote.test');
  await s.rcptTo('b@example.test');
  assert.equal((await relayed(s, slowClient())).code, 250);
  assert.equal(s.reusable, true);
});
