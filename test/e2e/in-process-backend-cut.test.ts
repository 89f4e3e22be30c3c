/**
 * `serve` with the bundled engine in its process, the edge handing transactions to it directly: when
 * the engine fails in the middle of a transaction (its slot file can grow no further: the process's
 * file-size limit, set with prlimit, makes the write fail with EFBIG) or the client goes away in the
 * middle of DATA, the client is never told 250 for mail not stored, nothing of it is delivered, and
 * the next message goes through.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../interop/peers.js';
import { serveBundled, type BundledServe, type Served } from '../support/serve-process.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { maildirFiles, waitFor } from '../transport/engine-harness.js';

/** Bytes the serve process may write into any one file: far above a small message, far below the big one. */
const FILE_SIZE_LIMIT = 256 * 1024;

describe('serve: a failure between the edge and the engine in its process', () => {
  let b: BundledServe;
  let data: string;
  let s: Served;

  before(async () => {
    b = await serveBundled('cut');
    s = b.served;
    data = b.data;
    const limited = await run('prlimit', ['--pid', String(s.child.pid), `--fsize=${FILE_SIZE_LIMIT}`], { timeoutMs: 10_000 });
    assert.equal(limited.code, 0, limited.stderr);
  });
  after(async () => {
    assert.equal(await b.stop(), 0);
  });

  async function subjects(): Promise<string[]> {
    const root = path.join(data, 'mailboxes');
    const files = await maildirFiles(root, 'alice@example.com');
    return files.map((f) => /\nSubject: ([^\r\n]*)/.exec(fs.readFileSync(path.join(mailboxDir(root, 'alice@example.com'), 'new', f), 'latin1'))?.[1] ?? '').sort();
  }

  async function transaction(c: RawSmtpClient, subject: string): Promise<void> {
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`Subject: ${subject}\r\n\r\n`);
  }

  it("the engine cannot write the message (EFBIG): the client gets the engine's 452 4.3.1, never 250, and its next message is delivered", async () => {
    const c = await RawSmtpClient.connect(s.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
    await transaction(c, 'too big to write');
    const line = `${'x'.repeat(998)}\r\n`;
    for (let i = 0; i < (2 * FILE_SIZE_LIMIT) / line.length; i++) c.write(line);
    c.write('.\r\n');
    const refused = await c.read(20_000);
    assert.equal(refused.line, '452 4.3.1 Insufficient system storage');
    await s.waitLog((l) => l.msg === 'transport receive problem' && l.kind === 'storage');

    await transaction(c, 'after the failure');
    c.write('body\r\n.\r\n');
    assert.match((await c.read()).line, /^250 2\.6\.0 /);
    c.quit();
    await waitFor(async () => (await subjects()).length === 1, 10_000, 'the delivery');
    assert.deepEqual(await subjects(), ['after the failure']);
  });

  it('the client goes away in the middle of DATA: nothing of its message is delivered, and the next message goes through', async () => {
    const c = await RawSmtpClient.connect(s.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
    await transaction(c, 'cut off');
    c.write('first half\r\n');
    await new Promise((r) => setTimeout(r, 100));
    c.kill();

    const next = await RawSmtpClient.connect(s.port);
    assert.equal((await next.read()).code, 220);
    assert.equal((await next.cmd('EHLO client.example.test')).code, 250);
    await transaction(next, 'next client');
    next.write('body\r\n.\r\n');
    assert.match((await next.read()).line, /^250 2\.6\.0 /);
    next.quit();
    await waitFor(async () => (await subjects()).length === 2, 10_000, 'the delivery');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await subjects(), ['after the failure', 'next client']);
  });
});
