/**
 * How the edge ends a connection: after its last reply (QUIT's 221) it closes the socket at once,
 * with no half-open wait for the client, so a sender's reset after 221 (SO_LINGER 0, as Postfix's
 * smtp-source closes) reports nothing and changes no metric, and every reply before it still arrives.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, sendMail } from '../support/smtp-client.js';

describe('the end of a session', () => {
  let h: Harness;
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    h = await startHarness(() => undefined, { logger: createLogger({ level: 'info', destination: sink }) });
  });
  after(async () => {
    await h.close();
  });

  async function greeted(options: { halfOpen?: boolean } = {}): Promise<RawSmtpClient> {
    const c = await RawSmtpClient.connect(h.port(), '127.0.0.1', options);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    return c;
  }

  async function openConnections(): Promise<number> {
    return sample(await h.metrics.render(), 'portcullis_open_connections', { listener: 'main' });
  }

  async function settled(what: () => Promise<boolean>, label: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (await what()) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(label);
  }

  it('a client that resets after 221 (SO_LINGER 0) leaves no log line and no open connection; its message reached the back end', async () => {
    await settled(async () => (await openConnections()) === 0, 'no connection open before');
    const before = await h.metrics.render();
    const received = h.backend.messages.length;
    const logged = logs.length;
    const c = await greeted();
    const r = await sendMail(c, 'a@example.org', ['bob@example.com'], 'Subject: reset after QUIT\r\n\r\nbody\r\n');
    assert.match(r.end?.line ?? '', /^250 /);
    assert.equal((await c.cmd('QUIT')).line, '221 2.0.0 Bye');
    c.kill();
    await settled(async () => (await openConnections()) === 0, 'the connection counted as closed');
    // Let any report of the reset arrive before looking for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(logs.slice(logged).filter((l) => l.msg === 'client connection error'), []);
    assert.equal(h.backend.messages.length, received + 1);
    const now = await h.metrics.render();
    assert.equal(sample(now, 'portcullis_sessions_total', { listener: 'main' }), sample(before, 'portcullis_sessions_total', { listener: 'main' }) + 1);
    for (const cls of ['2xx', '3xx', '4xx', '5xx']) {
      const more = cls === '2xx' ? 6 : cls === '3xx' ? 1 : 0; // greeting, EHLO, MAIL, RCPT, end of data, 221; 354
      assert.equal(sample(now, 'portcullis_replies_total', { class: cls }), sample(before, 'portcullis_replies_total', { class: cls }) + more, cls);
    }
  });

  it('after QUIT the edge closes the connection at once: a client keeping its side open is reset when it writes again', async () => {
    const c = await greeted({ halfOpen: true });
    assert.equal((await c.cmd('QUIT')).line, '221 2.0.0 Bye');
    assert.equal(await c.closedByServer(), true, 'EOF after the 221');
    // A half-closed socket (smtp-server's own way) swallows writes for up to 5 s; a closed one resets.
    assert.equal(await c.resetOnWrite(2500), true, 'the connection was reset within 2.5 s');
    c.kill();
  });

  it('a command pipelined behind QUIT is never answered nor run: the client reads 221 and the close; the back end hears nothing of it', async () => {
    const offered = h.backend.mailFroms.length;
    const c = await greeted();
    c.write('QUIT\r\nMAIL FROM:<behind-quit@example.org>\r\n');
    assert.equal((await c.read()).line, '221 2.0.0 Bye');
    assert.equal(await c.closedByServer(), true, 'EOF after the 221');
    assert.equal(c.unread, '');
    await settled(async () => (await openConnections()) === 0, 'the connection counted as closed');
    assert.equal(h.backend.mailFroms.length, offered);
  });
});
