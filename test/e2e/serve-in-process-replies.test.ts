/**
 * The replies a client sees through `serve` for MAIL, RCPT and the final dot come from the bundled
 * engine, word for word as its SMTP listener gave them when the edge still spoke SMTP to it (this test
 * was written and passed against that version first, so it proves the direct hand-over kept them).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveBundled, type BundledServe, type Served } from '../support/serve-process.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { maildirFiles, waitFor } from '../transport/engine-harness.js';

const ENGINE_MAX_SIZE = 10_000;

describe("serve's replies from the bundled engine", () => {
  let b: BundledServe;
  let data: string;
  let s: Served;

  before(async () => {
    b = await serveBundled('in-process-replies', (dataDir) => ({
      // The engine's limits are below the edge's (10 MB, 5000 recipients): the engine is the one refusing.
      transport: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, dataDir, fsync: false, limits: { maxMessageSize: ENGINE_MAX_SIZE, maxRecipients: 2 } },
      directory: { addresses: ['alice@example.com', 'bob@example.com', 'carol@example.com'] },
    }));
    s = b.served;
    data = b.data;
  });
  after(async () => {
    assert.equal(await b.stop(), 0);
  });

  async function session(): Promise<RawSmtpClient> {
    const c = await RawSmtpClient.connect(s.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    return c;
  }

  it('MAIL and RCPT are answered 250 2.1.0 / 2.1.5, a recipient over the limit 452 4.5.3, an exact repeat replaces; the final dot 250 2.6.0 with the queue id', async () => {
    const c = await session();
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).line, '250 2.1.0 Accepted');
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).line, '250 2.1.5 Accepted');
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).line, '250 2.1.5 Accepted');
    assert.equal((await c.cmd('RCPT TO:<carol@example.com>')).line, '452 4.5.3 Error: too many recipients');
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).line, '250 2.1.5 Accepted', 'an exact repeat is not one more recipient');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: limits\r\n\r\nbody\r\n.\r\n');
    assert.match((await c.read()).line, /^250 2\.6\.0 <[^@>]+@edge\.test> Queued mail for delivery$/);
    c.quit();
    await waitFor(async () => (await maildirFiles(path.join(data, 'mailboxes'), 'bob@example.com')).length === 1, 10_000, 'the delivery to bob');
    assert.equal((await maildirFiles(path.join(data, 'mailboxes'), 'alice@example.com')).length, 1, 'alice got it once');
    assert.equal((await maildirFiles(path.join(data, 'mailboxes'), 'carol@example.com')).length, 0, 'carol was refused');
  });

  it('a SIZE= over the engine limit is refused at MAIL with 552 5.3.4; a message over it without SIZE= at the final dot, and nothing is queued', async () => {
    const c = await session();
    assert.equal((await c.cmd(`MAIL FROM:<sender@remote.test> SIZE=${ENGINE_MAX_SIZE + 1}`)).line, `552 5.3.4 Error: message exceeds fixed maximum message size ${ENGINE_MAX_SIZE}`);
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).line, '250 2.1.0 Accepted');
    assert.equal((await c.cmd('RCPT TO:<carol@example.com>')).line, '250 2.1.5 Accepted');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`Subject: too big\r\n\r\n${'x'.repeat(100)}\r\n`.repeat(Math.ceil(ENGINE_MAX_SIZE / 100)) + '.\r\n');
    assert.equal((await c.read()).line, `552 5.3.4 Message size exceeds the limit of ${ENGINE_MAX_SIZE} bytes`);

    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).line, '250 2.1.0 Accepted');
    assert.equal((await c.cmd('RCPT TO:<carol@example.com>')).line, '250 2.1.5 Accepted');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: small\r\n\r\nbody\r\n.\r\n');
    assert.match((await c.read()).line, /^250 2\.6\.0 /);
    c.quit();
    await waitFor(async () => (await maildirFiles(path.join(data, 'mailboxes'), 'carol@example.com')).length === 1, 10_000, 'the delivery to carol');
    const [only] = await maildirFiles(path.join(data, 'mailboxes'), 'carol@example.com');
    assert.match(fs.readFileSync(path.join(data, 'mailboxes', 'carol@example.com', 'new', only!), 'latin1'), /\nSubject: small\r?\n/);
  });
});
