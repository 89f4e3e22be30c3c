/** `portcullis check` with sender authentication: `--helo`, `--from` for SPF, `--message FILE` for DKIM, DMARC and ARC, on real DNS. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { signed, signingKey } from '../support/sender-auth.js';

const run = promisify(execFile);
let dns: TestDnsServer;
let dir: string;
let config: string;

const MSG = (from: string): string => `From: <${from}>\r\nTo: <alice@example.test>\r\nSubject: hi\r\n\r\nHello.\r\n`;

before(async () => {
  const key = signingKey();
  dns = await startDnsServer({
    records: {
      'good.example': { TXT: ['v=spf1 ip4:192.0.2.10 -all'] },
      'sel._domainkey.good.example': { TXT: [key.record] },
      '_dmarc.good.example': { TXT: ['v=DMARC1; p=reject'] },
      'strict.example': { TXT: ['v=spf1 -all'] },
      '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject'] },
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'portcullis-check-auth-'));
  config = join(dir, 'rules.yaml');
  await writeFile(
    config,
    `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - { name: internet, listen: "127.0.0.1:2525", senderAuth: { enforceSpf: true, enforceDmarc: true } }
directory: { addresses: [alice@example.test] }
dns: { servers: ["${dns.address}"], timeoutMs: 1000 }
`,
  );
  await writeFile(join(dir, 'signed.eml'), await signed(MSG('bob@good.example'), 'good.example', key));
  await writeFile(join(dir, 'spoofed.eml'), MSG('ceo@strict.example'));
});
after(() => dns.close());

async function check(...args: string[]): Promise<string> {
  const { stdout } = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--ip', '192.0.2.10', '--to', 'alice@example.test', ...args]);
  return stdout;
}

test('check: SPF fail at step 7.2 is the MAIL FROM reply, and the recipients are never reached', async () => {
  const r = JSON.parse(await check('--json', '--helo', 'mta.example', '--from', 'a@strict.example')) as Record<string, unknown>;
  assert.deepEqual(r.mail, { action: 'reject', step: 7.2, check: 'SPF', code: 550, reply: '550 5.7.23 SPF validation failed: strict.example does not designate 192.0.2.10 as permitted sender' });
  assert.deepEqual((r.rcpt as { code: number }[]).map((x) => x.code), [503]);
  assert.ok((r.trace as { step: number; outcome: string }[]).some((t) => t.step === 7.2 && t.outcome === 'fail (MAIL FROM strict.example)'));
});

test('check --message: a signed message shows DKIM, DMARC and ARC and the Authentication-Results it would get', async () => {
  const out = await check('--helo', 'mta.example', '--from', 'bob@good.example', '--message', join(dir, 'signed.eml'));
  assert.match(out, /step 7\.2 {2}SPF: pass \(MAIL FROM good\.example\)/);
  assert.match(out, /step 15\.1 {2}DKIM: pass \(d=good\.example\)/);
  assert.match(out, /step 15\.2 {2}DMARC: pass \(header From: good\.example, p=reject\)/);
  assert.match(out, /step 15\.3 {2}ARC: none/);
  assert.match(out, /Authentication-Results: mx\.example\.test;\n\s+dkim=pass/);
});

test('check --message: a spoofed From: under p=reject is refused at step 15.2 with the reply the client would get', async () => {
  const r = JSON.parse(await check('--json', '--from', 'bob@good.example', '--message', join(dir, 'spoofed.eml'))) as Record<string, unknown>;
  assert.deepEqual(r.data, { action: 'reject', step: 15.2, check: 'DMARC', code: 550, reply: '550 5.7.1 Message rejected: DMARC policy of strict.example' });
});

test('check without --message says DKIM, DMARC and ARC were not checked', async () => {
  const out = await check('--from', 'bob@good.example', '--header-from', 'bob@good.example');
  assert.match(out, /step 15\.1 {2}DKIM: not checked: no --message FILE/);
});
