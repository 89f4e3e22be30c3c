/**
 * A client's mail transaction lives from MAIL FROM to the end of DATA, RSET or EHLO, and so does its
 * hold on the back-end session it borrows (pooled: reset and lent again; not pooled: closed): a raw
 * client talks to the whole edge in front of a scripted back end.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend, type ScriptedConnection } from '../support/scripted-backend.js';
import type { RawSmtpClient } from '../support/smtp-client.js';
import { sample } from '../support/metrics-text.js';

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

for (const pooled of [true, false]) {
  describe(`the transaction, ${pooled ? 'back-end sessions pooled (the default)' : 'pooling off (backend.pool.maxIdle: 0)'}`, () => {
    let backend: ScriptedBackend;
    let h: Harness;
    before(async () => {
      backend = await startScriptedBackend();
      h = await startHarness((input) => {
        input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000, ...(pooled ? {} : { pool: { maxIdle: 0 } }) };
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

    /** Resolves once `conn` has been sent `line` as its latest command and the pool holds one idle session. */
    async function resetAndIdle(conn: ScriptedConnection): Promise<void> {
      const idle = async (): Promise<number> => sample(await h.metrics.render(), 'portcullis_backend_pool_sessions', { state: 'idle' });
      for (let i = 0; i < 250 && (conn.commands.at(-1) !== 'RSET' || (await idle()) !== 1); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(conn.commands.at(-1), 'RSET');
      assert.equal(await idle(), 1, 'the session went back to the pool');
    }

    for (const reset of ['RSET', 'EHLO client.example']) {
      const verb = reset.split(' ')[0];
      const title = pooled
        ? `ends at ${verb}: the back end is told RSET then, and the clean session carries the next transaction`
        : `ends at ${verb}: the back end is told QUIT then, not at the next MAIL or never`;
      it(title, async () => {
        const c = await openTransaction();
        try {
          const borrowed = backend.connections.at(-1);
          assert.ok(borrowed);
          const opened = backend.connections.length;
          // A pooled session may have carried an earlier test's message: nothing new may arrive.
          const relayed = borrowed.data;
          assert.equal((await c.cmd(reset)).code, 250);
          if (pooled) await within(resetAndIdle(borrowed), 8000, 'the back end was told RSET after the reset');
          else {
            await within(borrowed.closed, 5000, 'the back-end session closed after the reset');
            assert.equal(borrowed.commands.at(-1), 'QUIT');
          }
          assert.equal(borrowed.data, relayed, 'nothing was relayed');
          assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 503, 'no transaction is left on the client side either');
          // The next transaction goes through: on the same, reset, session when pooled; on one of its own when not.
          assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
          assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
          assert.equal((await c.cmd('DATA')).code, 354);
          assert.equal((await c.cmd('Subject: t\r\n\r\nbody\r\n.')).code, 250);
          if (pooled) {
            assert.equal(backend.connections.length, opened, 'no new back-end connection');
            const after = borrowed.commands.slice(borrowed.commands.lastIndexOf('RSET'));
            assert.deepEqual(after.map((l) => l.split(/[ :]/)[0]), ['RSET', 'XFORWARD', 'MAIL', 'RCPT', 'DATA'], 'a fresh XFORWARD and envelope after the RSET');
            assert.match(borrowed.data, /body/);
          } else assert.notEqual(backend.connections.at(-1), borrowed);
        } finally {
          c.quit();
        }
      });
    }
  });
}
