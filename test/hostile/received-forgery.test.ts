/**
 * Forgery: the edge prepends its own Received: field, so a message whose first line opens with a
 * space or tab would continue it, and the client's text would become part of the trace the edge
 * vouches for. Such a message is refused with 554 5.6.0 at the end of DATA; nothing reaches the back
 * end, and the session goes on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { RawSmtpClient, sendMail, edgeRefusal } from '../support/smtp-client.js';

describe('hostile: Received: forgery', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  async function greeted(): Promise<RawSmtpClient> {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    return c;
  }

  for (const [name, opening] of [
    ['a space', ' (trusted.example [10.0.0.1]) verified by edge.test;\r\n'],
    ['a tab', '\tby trusted.example with ESMTPS;\r\n'],
  ] as const) {
    it(`a first line opening with ${name}: 554 5.6.0, nothing reaches the back end, the session goes on`, async () => {
      const c = await greeted();
      const before = h.backend.messages.length;
      const r = await sendMail(c, 'a@example.org', ['bob@example.com'], `${opening}From: a@example.org\r\nSubject: forged\r\n\r\nbody\r\n`);
      assert.match(r.end?.line ?? '', edgeRefusal('554 5.6.0 Message header section must not open with white space'));
      assert.equal(h.backend.messages.length, before);
      assert.equal((await c.cmd('NOOP')).code, 250, 'the rest was read as data, not as commands');
      const ok = await sendMail(c, 'a@example.org', ['bob@example.com'], 'From: a@example.org\r\nSubject: fine\r\n\r\nbody\r\n');
      assert.match(ok.end?.line ?? '', /^250 2\.6\.0 /);
      c.quit();
    });
  }

  it("an ordinary message: the edge's Received: field ends where the edge ended it", async () => {
    const c = await greeted();
    const r = await sendMail(c, 'a@example.org', ['bob@example.com'], 'From: a@example.org\r\nSubject: plain\r\n\r\nbody\r\n');
    assert.match(r.end?.line ?? '', /^250 2\.6\.0 /);
    const data = h.backend.messages.at(-1)?.data.toString('latin1') ?? '';
    const m = /^Received: [^]*?\r\n(?![ \t])/.exec(data);
    assert.ok(m, data);
    assert.match(m[0], /by edge\.test \(Portcullis\)/);
    assert.ok(data.slice(m[0].length).startsWith('From: a@example.org\r\n'), 'the client\'s first line follows the field, unfolded');
    c.quit();
  });
});
