/** The edge driven by clients we did not write: swaks and Python's smtplib. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/edge-harness.js';

const run = promisify(execFile);

describe('independent SMTP clients', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.senderFilter = { blocked: ['spam@bad.example'] };
      r.recipientFilter = { rejectUnknown: true };
      r.directory = { addresses: ['bob@example.com', 'carol@example.com'] };
    });
  });
  after(async () => h.close());

  it('swaks: a message is relayed, and a blocked sender sees 550 5.1.0', async () => {
    const port = String(h.port());
    const base = ['--server', '127.0.0.1', '--port', port, '--helo', 'swaks.example', '--to', 'bob@example.com', '--header', 'Subject: via swaks', '--body', 'Sent by swaks.'];
    const ok = await run('swaks', [...base, '--from', 'alice@example.org'], { timeout: 20000 });
    assert.match(ok.stdout, /<- {1,2}354 End data with/);
    assert.match(ok.stdout, /<- {1,2}250 2\.6\.0 Ok: queued as Q\d+/);
    const got = h.backend.messages.at(-1);
    assert.equal(got?.from, 'alice@example.org');
    assert.match(got?.data.toString() ?? '', /Subject: via swaks/);
    assert.equal(got?.xforward.HELO, 'swaks.example');
    const refused = await run('swaks', [...base, '--from', 'spam@bad.example'], { timeout: 20000 }).then(
      () => assert.fail('swaks should report the refusal'),
      (e: { code: number; stdout: string }) => e,
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout, /<\*\* {1,2}550 5\.1\.0 Sender Denied/);
    assert.equal(h.backend.messages.length, 1);
  });

  it("smtplib: per-recipient refusals are reported with our codes; the rest is delivered", async () => {
    const script = [
      'import json, smtplib, sys',
      's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.example", timeout=20)',
      'msg = "From: alice@example.org\\r\\nSubject: via smtplib\\r\\n\\r\\nhello\\r\\n"',
      'refused = s.sendmail("alice@example.org", ["carol@example.com", "nobody@example.com"], msg)',
      'print(json.dumps({k: [v[0], v[1].decode()] for k, v in refused.items()}))',
      's.quit()',
    ].join('\n');
    const out = await run('python3', ['-c', script, String(h.port())], { timeout: 20000 });
    const refused = JSON.parse(out.stdout) as Record<string, [number, string]>;
    assert.deepEqual(Object.keys(refused), ['nobody@example.com']);
    assert.equal(refused['nobody@example.com']?.[0], 550);
    assert.match(refused['nobody@example.com']?.[1] ?? '', /^5\.1\.1 /);
    const got = h.backend.messages.at(-1);
    assert.deepEqual(got?.to, ['carol@example.com']);
    assert.match(got?.data.toString() ?? '', /Subject: via smtplib/);
  });
});
