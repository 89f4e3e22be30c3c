/** The engine takes SMTP sessions on in-memory streams (serve's edge) as it takes TCP clients, and its close() waits for them. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { streamPair, type PairedSocket } from '../../src/net/stream-pair.js';
import { engineRules, startEngine, waitFor } from './engine-harness.js';

/** A client on one end of a pair: sends lines, reads the server's whole replies. */
function client(end: PairedSocket): { send(line: string): void; reply(): Promise<string> } {
  let buffer = '';
  end.setEncoding('latin1');
  end.on('data', (d: string) => (buffer += d));
  return {
    send: (line) => void end.write(`${line}\r\n`),
    async reply() {
      await waitFor(() => /(^|\r\n)\d{3} [^\r\n]*\r\n$/.test(buffer) || end.destroyed, 5000, 'a reply');
      const r = buffer;
      buffer = '';
      return r;
    },
  };
}

test('an in-memory session is a client at its remote address: allowFrom, greeting, mail queued; close() waits for it; after close a new one is closed at once', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-in-process-'));
  const engine = await startEngine(engineRules(dir));
  try {
    const listener = { address: engine.address.host, port: engine.address.port };
    const [outsider, outsiderEngine] = streamPair({ address: '192.0.2.9', port: 4000 }, listener);
    engine.accept(outsiderEngine);
    assert.match(await client(outsider).reply(), /^554 5\.7\.1 Access denied\r\n$/, 'transport.allowFrom applies to the stream\'s remote address');

    const [edgeEnd, engineEnd] = streamPair({ address: '127.0.0.1', port: 0 }, listener);
    engine.accept(engineEnd);
    const c = client(edgeEnd);
    assert.match(await c.reply(), /^220 mx\.example\.test ESMTP Portcullis transport ready\r\n$/);
    c.send('EHLO edge.example.test');
    assert.match(await c.reply(), /\r\n250[ -]XFORWARD/);
    c.send('XFORWARD ADDR=192.0.2.7 HELO=client.remote.test');
    assert.match(await c.reply(), /^250 /);
    c.send('MAIL FROM:<sender@remote.test>');
    assert.match(await c.reply(), /^250 /);
    c.send('RCPT TO:<alice@example.test>');
    assert.match(await c.reply(), /^250 /);
    c.send('DATA');
    assert.match(await c.reply(), /^354 /);
    c.send('Subject: in memory\r\n\r\nbody\r\n.');
    assert.match(await c.reply(), /^250 2\.6\.0 <[^@>]+@mx\.example\.test> Queued mail for delivery\r\n$/);

    let closed = false;
    const closing = engine.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closed, false, 'close() waits for the session still open');
    c.send('QUIT');
    await closing;
    assert.equal(edgeEnd.destroyed, true);

    const [late, lateEngine] = streamPair({ address: '127.0.0.1', port: 0 }, listener);
    engine.accept(lateEngine);
    await waitFor(() => late.destroyed, 5000, 'the late stream to close');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
