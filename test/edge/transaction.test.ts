/**
 * A client's mail transaction lives from MAIL FROM to the end of DATA, RSET or EHLO, and so does the
 * back-end session it borrows: a raw client talks to the whole edge in front of a scripted back end.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';
import type { RawSmtpClient } from '../support/smtp-client.js';

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('the transaction', () => {
  let backend: ScriptedBackend;
  let h: Harness;
  before(async () => {
    backend = await startScriptedBackend();
    h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 };
    });
  });
  after(async () => {
    await h.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.script = {};
  });

  async function openTransaction(): Promise<RawSmtpClient> {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
    return c;
  }

  for (const reset of ['RSET', 'EHLO client.example']) {
    it(`ends at ${reset.split(' ')[0]}: the back end is told QUIT then, not at the next MAIL or never`, async () => {
      const c = await openTransaction();
      try {
        const borrowed = backend.connections.at(-1);
        assert.ok(borrowed);
        assert.equal((await c.cmd(reset)).code, 250);
        await within(borrowed.closed, 5000, 'the back-end session closed after the reset');
        assert.equal(borrowed.commands.at(-1), 'QUIT');
        assert.equal(borrowed.data, '', 'nothing was relayed');
        assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 503, 'no transaction is left on the client side either');
        // The next transaction borrows a back-end session of its own and goes through.
        assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
        assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
        assert.equal((await c.cmd('DATA')).code, 354);
        assert.equal((await c.cmd('Subject: t\r\n\r\nbody\r\n.')).code, 250);
        assert.notEqual(backend.connections.at(-1), borrowed);
      } finally {
        c.quit();
      }
    });
  }
});
