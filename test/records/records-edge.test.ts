/**
 * The edge with records on, in-process: a record log that cannot be written costs records, never
 * mail (the drop is in the metrics), and with hashed local parts `explain` still finds the session.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { edgeRefusal, RawSmtpClient, sendMail } from '../support/smtp-client.js';

const exec = promisify(execFile);
const MSG = 'From: alice@example.org\r\nSubject: records\r\n\r\nhello\r\n';

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`not within 5 s: ${what}`);
}

async function session(h: Harness, to: string[]): Promise<Awaited<ReturnType<typeof sendMail>>> {
  const c = await h.connect();
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  const r = await sendMail(c, 'alice@example.org', to, MSG);
  c.quit();
  await c.closedByServer();
  return r;
}

describe('records on the edge', () => {
  const dirs: string[] = [];
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a record log on a path that cannot be written: mail is still accepted, the drop is counted in the metrics', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-records-ro-'));
    dirs.push(dir);
    // A regular file where the directory should be: every write fails, even for root (which ignores modes).
    fs.writeFileSync(path.join(dir, 'blocked'), '');
    const h = await startHarness((r) => {
      r.records = { path: path.join(dir, 'blocked', 'records.jsonl') };
    });
    harnesses.push(h);
    const r = await session(h, ['bob@example.com']);
    assert.equal(r.end?.code, 250);
    assert.equal(h.backend.messages.length, 1);
    await until('the drop is counted', async () => sample(await h.metrics.render(), 'portcullis_records_dropped_total', { reason: 'disk' }) === 1);
    assert.equal(sample(await h.metrics.render(), 'portcullis_records_written_total'), 0);
  });

  it('under the PROXY protocol the record keeps both the reported client and the balancer it came through', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-records-proxy-'));
    dirs.push(dir);
    const file = path.join(dir, 'records.jsonl');
    const h = await startHarness((r) => {
      r.listeners = [{ name: 'main', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] } }];
      r.records = { path: file };
    });
    harnesses.push(h);
    const c = await RawSmtpClient.connect(h.port());
    c.socket.write('PROXY TCP4 192.0.2.9 192.0.2.1 40000 25\r\n');
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    c.quit();
    await c.closedByServer();
    await until('the record is written', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('192.0.2.9'));
    const rec = JSON.parse(fs.readFileSync(file, 'utf8').trim()) as { client: string; peer?: string };
    assert.deepEqual([rec.client, rec.peer], ['192.0.2.9', '127.0.0.1']);
  });

  it('hashLocalParts: no local part reaches the disk, and explain finds the session by the ID in its reply', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-records-hash-'));
    dirs.push(dir);
    const file = path.join(dir, 'records.jsonl');
    const h = await startHarness((r) => {
      r.recipientFilter = { rejectUnknown: true };
      r.directory = { addresses: ['bob@example.com'] };
      r.records = { path: file, hashLocalParts: true };
    });
    harnesses.push(h);
    const r = await session(h, ['nobody@example.com', 'bob@example.com']);
    const refusal = r.rcpts[0]?.line ?? '';
    assert.match(refusal, edgeRefusal('550 5.1.1 <nobody@example.com>... Recipient not found'));
    const id = /\[([0-9a-v]{16})\]$/.exec(refusal)?.[1] ?? '';
    await until('the record is written', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(id));
    assert.equal(sample(await h.metrics.render(), 'portcullis_records_written_total'), 1);
    const text = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /nobody@|alice@|bob@/);
    const out = await exec(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'explain', `[${id}]`, '--records', file, '--config', path.join(dir, 'absent.yaml')], { timeout: 60_000 });
    assert.match(out.stdout, new RegExp(`session ${id}: .* \\(local parts hashed\\)`));
    assert.match(out.stdout, /RCPT TO:<h\.[0-9a-f]{16}@example\.com>\n {2}step {2}8 {2}relay protection: .*\n(?: {2}step .*\n)* {2}step 12 {2}directory: .*\n {2}-> 550 5\.1\.1 <h\.[0-9a-f]{16}@example\.com>\.\.\. Recipient not found/);
  });
});
