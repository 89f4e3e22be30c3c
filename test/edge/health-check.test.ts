/** The health-check responder over real loopback sockets: any input, one well-formed reply per line, bounded. */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { answerHealthCheck, healthCheckReply, isHealthCheck } from '../../src/edge/health-check.js';

/** Starts a responder, writes `chunks` from a client, and returns everything the client read until the server closed. */
async function converse(chunks: string[]): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    answerHealthCheck(socket, 'hc.test');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  let got = '';
  client.on('data', (c: Buffer) => (got += c.toString('latin1')));
  await once(client, 'connect');
  for (const c of chunks) client.write(c, 'latin1');
  const ended = once(client, 'close');
  const bound = setTimeout(() => client.destroy(), 5000);
  await ended;
  clearTimeout(bound);
  server.close();
  return got;
}

test('any command lines, in any segmentation: a greeting, one well-formed reply per line up to QUIT, then close', async () => {
  const line = fc.string({ unit: fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0a).map((b) => String.fromCharCode(b)), maxLength: 80 });
  await fc.assert(
    fc.asyncProperty(fc.array(line, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 }), async (lines, cuts) => {
      const input = [...lines, 'QUIT'].map((l) => `${l}\r\n`).join('');
      const chunks: string[] = [];
      for (let pos = 0, i = 0; pos < input.length; i++) {
        const n = cuts[i % cuts.length] as number;
        chunks.push(input.slice(pos, pos + n));
        pos += n;
      }
      const replies = (await converse(chunks)).split('\r\n').slice(0, -1);
      assert.equal(replies[0], '220 hc.test ESMTP');
      // A line whose first word is QUIT ends the check early; a line ending in CR keeps it as written.
      const quitAt = [...lines, 'QUIT'].findIndex((l) => /^QUIT(\s|$)/i.test(l.replace(/\r$/, '')));
      assert.equal(replies.length, 1 + quitAt + 1, JSON.stringify({ lines, replies }));
      for (const r of replies) assert.match(r, /^[2-5]\d\d [^\r\n]*$/);
      assert.equal(replies.at(-1), '221 2.0.0 Bye');
    }),
    { numRuns: 40 },
  );
});

test('the reply to a line never depends on more than its first word', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 600 }), (line) => {
      const r = healthCheckReply(line, 'hc.test');
      assert.ok([250, 221, 502].includes(r.reply.code));
      assert.equal(r.close, r.reply.code === 221);
    }),
    { numRuns: 500 },
  );
});

test('a check that stays past 10 s is closed with 421 4.4.2', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const server = net.createServer((socket) => answerHealthCheck(socket, 'hc.test'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    let got = '';
    client.on('data', (c: Buffer) => (got += c.toString('latin1')));
    await once(client, 'data');
    assert.equal(got, '220 hc.test ESMTP\r\n');
    mock.timers.tick(9_999);
    client.write('NOOP\r\n');
    await once(client, 'data');
    assert.equal(got, '220 hc.test ESMTP\r\n250 2.0.0 OK\r\n', 'a command does not extend the bound');
    mock.timers.tick(1);
    await once(client, 'end');
    assert.equal(got, '220 hc.test ESMTP\r\n250 2.0.0 OK\r\n421 4.4.2 Health check timeout, closing connection\r\n');
    client.destroy();
    server.close();
  } finally {
    mock.timers.reset();
  }
});

test('which headers are checks: v2 LOCAL, or a v1 source that is the connection peer itself (IPv4-mapped or not)', () => {
  const peer = { remoteAddress: '::ffff:192.0.2.1', remotePort: 40123 } as net.Socket;
  assert.equal(isHealthCheck({ sourceAddress: '', sourcePort: 0, local: true, command: 'LOCAL' }, peer), true);
  assert.equal(isHealthCheck({ sourceAddress: '192.0.2.1', sourcePort: 40123, local: false }, peer), true);
  assert.equal(isHealthCheck({ sourceAddress: '192.0.2.1', sourcePort: 40124, local: false }, peer), false, 'another connection from the balancer host');
  assert.equal(isHealthCheck({ sourceAddress: '192.0.2.9', sourcePort: 40123, local: false }, peer), false);
  assert.equal(isHealthCheck({ sourceAddress: '192.0.2.1', sourcePort: 40123, local: true }, peer), false, 'v1 UNKNOWN relays a client');
  const v6 = { remoteAddress: '2001:DB8::1', remotePort: 7 } as net.Socket;
  assert.equal(isHealthCheck({ sourceAddress: '2001:db8::1', sourcePort: 7, local: false }, v6), true);
});
