/**
 * The client's bytes count as arrived when the socket reads them, not when the parser gets to them:
 * while a command waits on the back end the parser takes nothing, yet what the client sends meanwhile
 * holds the waiting reply for its group (reply-groups.ts) and, where the client had to wait, fails the
 * pipelining test (pipelining-guard.ts). A raw client over loopback; the back end answers MAIL only
 * when the test says so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';
import { edgeRefusal, type RawSmtpClient } from '../support/smtp-client.js';

const MAIL_OK = '250 2.1.0 Ok\r\n';

/** MAIL commands the back end has been sent. */
function mails(backend: ScriptedBackend): number {
  return backend.connections.reduce((n, conn) => n + conn.commands.filter((l) => l.startsWith('MAIL')).length, 0);
}

/** A client greeted and past `greeting` (HELO or EHLO), whose MAIL the back end holds unanswered. */
async function mailPending(h: Harness, backend: ScriptedBackend, greeting: string): Promise<RawSmtpClient> {
  const c = await h.connect();
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd(greeting)).code, 250);
  backend.script = { mail: '' };
  const seen = mails(backend);
  c.write('MAIL FROM:<alice@example.org>\r\n');
  for (let i = 0; i < 200 && mails(backend) === seen; i++) await sleep(10);
  assert.ok(mails(backend) > seen, 'the back end never saw MAIL');
  return c;
}

/** An edge with the pipelining test in front of a scripted back end of its own, so that `say` reaches only this test's back-end session. */
async function withEdge(run: (h: Harness, backend: ScriptedBackend) => Promise<void>): Promise<void> {
  const backend = await startScriptedBackend();
  const h = await startHarness((input) => {
    input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 5000 };
    input.listeners = [{ name: 'main', listen: '127.0.0.1:0', protocolTests: { pipelining: true } }];
  });
  try {
    await run(h, backend);
  } finally {
    await h.close();
    await backend.close();
  }
}

describe("the client's bytes, counted as they arrive", () => {
  it('RCPT and DATA sent while MAIL waits on the back end: the three replies reach the client in one read, and the message is relayed', async () => {
    await withEdge(async (h, backend) => {
      const c = await mailPending(h, backend, 'EHLO client.example');
      let reads = 0;
      c.socket.on('data', () => (reads += 1));
      c.write('RCPT TO:<bob@example.com>\r\nDATA\r\n');
      await sleep(100);
      backend.script = {};
      backend.say(MAIL_OK);
      assert.deepEqual([(await c.read()).code, (await c.read()).code, (await c.read()).code], [250, 250, 354]);
      assert.equal(reads, 1, `MAIL, RCPT and DATA were answered in ${reads} reads`);
      assert.equal((await c.cmd('Subject: grouped\r\n\r\nbody\r\n.')).code, 250);
      assert.equal(backend.taken.length, 1);
      c.quit();
    });
  });

  it('a command sent after HELO while MAIL waits on the back end: 554 5.5.1 in place of the MAIL reply, closed', async () => {
    await withEdge(async (h, backend) => {
      const c = await mailPending(h, backend, 'HELO client.example');
      c.write('RCPT TO:<bob@example.com>\r\n');
      await sleep(100);
      backend.say(MAIL_OK);
      assert.match((await c.read()).line, edgeRefusal('554 5.5.1 Protocol error'));
      assert.equal(await c.closedByServer(), true);
      assert.equal(sample(await h.metrics.render(), 'portcullis_protocol_tests_total', { test: 'pipelining', result: 'fail' }), 1);
    });
  });
});
