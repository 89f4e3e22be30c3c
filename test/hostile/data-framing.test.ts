/**
 * DATA framing over a real socket, with the edge's own decoder: the end of data is `CRLF . CRLF`
 * only, whatever the TCP segmentation, so nothing a client sends can end a message early and be
 * read as commands (SMTP smuggling), and what reaches the back end is what the client meant.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import type { RawSmtpClient } from '../support/smtp-client.js';
import { pause } from '../interop/peers.js';

describe('hostile: DATA framing', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  async function inData(): Promise<RawSmtpClient> {
    const c = await h.connect();
    c.socket.setNoDelay(true);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    return c;
  }

  /** Writes each piece as its own segment (a pause between them), then reads the reply to the end of data. */
  async function segments(c: RawSmtpClient, pieces: string[]): Promise<string> {
    for (const p of pieces) {
      c.write(Buffer.from(p, 'latin1'));
      await pause(20);
    }
    return (await c.read()).line;
  }

  function lastBody(): string {
    const data = h.backend.messages.at(-1)?.data.toString('latin1') ?? '';
    return data.slice(data.indexOf('\r\n\r\n') + 4);
  }

  for (const [name, smuggle] of [
    ['a dot line after a bare LF', 'x\n.\r\n'],
    ['a dot line before a bare LF', 'x\r\n.\n'],
    ['a dot line after a bare CR', 'x\r.\r\n'],
  ] as const) {
    it(`${name} does not end the message: the commands after it stay message text`, async () => {
      const c = await inData();
      const before = h.backend.messages.length;
      const end = await segments(c, ['Subject: s\r\n\r\n', smuggle, 'MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n', 'evil\r\n.\r\n']);
      assert.match(end, /^250 2\.6\.0 /);
      assert.equal(h.backend.messages.length, before + 1, 'one message, not two');
      assert.match(lastBody(), /\r\nMAIL FROM:<evil@example\.org>\r\n/);
      assert.equal(c.unread, '', 'no reply to the smuggled commands');
      c.quit();
    });
  }

  it('a first line of a lone dot, sent escaped in its own segment, is message text, not the end', async () => {
    const c = await inData();
    const end = await segments(c, ['..', '\r\n', 'after\r\n', '.\r\n']);
    assert.match(end, /^250 2\.6\.0 /);
    const data = h.backend.messages.at(-1)?.data.toString('latin1') ?? '';
    assert.ok(data.endsWith('\r\n.\r\nafter\r\n'), JSON.stringify(data.slice(-20)));
    c.quit();
  });

  it('the end of data cut into single bytes, and escape dots cut from their lines, are read as sent', async () => {
    const c = await inData();
    const end = await segments(c, ['Subject: s\r\n\r\n.', '.dot\r\n', '.', '.', '\r', '\n', '\r\n', '.', '\r', '\n']);
    assert.match(end, /^250 2\.6\.0 /);
    assert.equal(lastBody(), '.dot\r\n.\r\n\r\n');
    assert.equal((await c.cmd('NOOP')).code, 250, 'the next command is a command');
    c.quit();
  });
});
