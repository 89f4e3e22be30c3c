/**
 * Replies to a pipelined group reach the client in one write (RFC 2920 3.2; src/edge/reply-groups.ts),
 * over real sockets: the edge in-process in front of a recording back end, a raw client that counts
 * the segments it receives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from '../support/edge-harness.js';
import type { RawSmtpClient } from '../support/smtp-client.js';

/** Counts the reads the client's socket makes from now on. */
function countReads(c: RawSmtpClient): { reads: number } {
  const counter = { reads: 0 };
  c.socket.on('data', () => (counter.reads += 1));
  return counter;
}

describe('reply groups', () => {
  it('a client that pipelines MAIL, two RCPTs and DATA gets the back-end replies and the 354 in one segment, and the message is relayed', async () => {
    const h = await startHarness();
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      const counter = countReads(c);
      c.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n');
      const replies = [await c.read(), await c.read(), await c.read(), await c.read()];
      assert.deepEqual(
        replies.map((r) => r.code),
        [250, 250, 250, 354],
      );
      assert.equal(counter.reads, 1, `the group's four replies came in ${counter.reads} reads`);
      c.write('Subject: grouped\r\n\r\nhello\r\n.\r\n');
      assert.equal((await c.read()).code, 250);
      assert.equal(h.backend.messages.length, 1);
      assert.deepEqual(h.backend.messages[0]?.to, ['bob@example.com', 'carol@example.com']);
    } finally {
      await h.close();
    }
  });

  it('a reply is not held for a command line that has not fully arrived', async () => {
    const h = await startHarness();
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      c.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@exa');
      assert.equal((await c.read(2000)).code, 250, 'the MAIL reply came while the RCPT line was incomplete');
      c.write('mple.com>\r\n');
      assert.equal((await c.read()).code, 250);
    } finally {
      await h.close();
    }
  });

  it('a group too long for the socket buffer is answered in full, in parts', async () => {
    const h = await startHarness();
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      const n = 2000;
      c.write(`${'RSET\r\n'.repeat(n)}NOOP\r\n`);
      for (let i = 0; i < n; i++) assert.equal((await c.read(10_000)).code, 250);
      assert.equal((await c.read()).code, 250, 'the NOOP that ends the group is answered');
    } finally {
      await h.close();
    }
  });
});
