/**
 * DMARC enforced end to end: `portcullis serve` as a process with the bundled engine behind it, real
 * DNS (the test server publishes SPF, the DKIM key and DMARC records), and swaks as the client. A
 * spoofed From: under `p=reject` gets 550 5.7.1 and reaches no mailbox; a message signed in the test
 * with a real key lands in the Maildir with the edge's Authentication-Results on top.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { signed, signingKey } from '../support/sender-auth.js';
import { freePort } from '../support/smtp-sink.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const root = path.resolve(import.meta.dirname, '../..');
const swaks = promisify(execFile);
let dir: string;
let dns: TestDnsServer;
let child: ChildProcess;
let output = '';
let edgePort: number;

const message = (from: string): string => `From: <${from}>\r\nTo: <alice@example.test>\r\nSubject: quarterly figures\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <${from.replace('@', '.')}@test>\r\n\r\nPlease find them attached.\r\n`;

before(async () => {
  const key = signingKey();
  dns = await startDnsServer({
    records: {
      'good.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
      'sel._domainkey.good.example': { TXT: [key.record] },
      '_dmarc.good.example': { TXT: ['v=DMARC1; p=reject'] },
      'bank.example': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
      '_dmarc.bank.example': { TXT: ['v=DMARC1; p=reject'] },
    },
  });
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-dmarc-'));
  [edgePort] = [await freePort()];
  const [enginePort, adminPort] = [await freePort(), await freePort()];
  await writeFile(path.join(dir, 'signed.eml'), await signed(message('ceo@good.example'), 'good.example', key));
  await writeFile(path.join(dir, 'spoofed.eml'), message('ceo@bank.example'));
  await writeFile(
    path.join(dir, 'rules.yaml'),
    [
      'hostname: mx.example.test',
      'acceptedDomains: [example.test]',
      `listeners: [{ name: edge, listen: "127.0.0.1:${edgePort}", senderAuth: { enforceDmarc: true } }]`,
      'directory: { addresses: [alice@example.test] }',
      `dns: { servers: ["${dns.address}"], timeoutMs: 1000, healthCheckIntervalSec: 0 }`,
      'log: { level: info }',
      'transport:',
      `  listen: 127.0.0.1:${enginePort}`,
      `  admin: { listen: "127.0.0.1:${adminPort}" }`,
      '  dataDir: data',
      '',
    ].join('\n'),
  );
  child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'serve', '--config', path.join(dir, 'rules.yaml')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  for (let i = 0; i < 400; i++) {
    assert.equal(child.exitCode, null, `serve exited early:\n${output}`);
    const up = await RawSmtpClient.connect(edgePort).then(
      (c) => (c.kill(), true),
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`serve did not listen:\n${output}`);
});
after(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

async function send(file: string, from: string): Promise<string> {
  const args = ['--server', `127.0.0.1:${edgePort}`, '--ehlo', 'client.good.example', '--from', from, '--to', 'alice@example.test', '--data', path.join(dir, file)];
  // swaks exits non-zero when the server refuses; its transcript is what the user sees either way.
  const r = await swaks('swaks', args, { timeout: 60_000 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return r.stdout;
}

test('DMARC p=reject through swaks and the bundled engine: the spoof is refused, the signed message delivered and stamped', async () => {
  const spoofed = await send('spoofed.eml', 'bounce@good.example');
  assert.match(spoofed, /<\*\* {1,2}550 5\.7\.1 Message rejected: DMARC policy of bank\.example/);

  const good = await send('signed.eml', 'bounce@good.example');
  assert.match(good, /<- {1,2}250 2\.6\.0 /);

  const newDir = path.join(dir, 'data', 'mailboxes', 'alice@example.test', 'new');
  let files: string[] = [];
  for (let i = 0; i < 200 && files.length === 0; i++) {
    files = await readdir(newDir).catch(() => []);
    if (files.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(files.length, 1, `only the signed message reached the mailbox\n${output}`);
  const mail = await readFile(path.join(newDir, files[0]!), 'utf8');
  assert.match(mail, /\nAuthentication-Results: mx\.example\.test;\n\tdkim=pass header\.i=@good\.example/);
  assert.match(mail, /\n\tdmarc=pass \(p=REJECT arc=none\) header\.from=good\.example/);
  assert.doesNotMatch(mail, /bank\.example/);
  assert.match(output, /"check":"DMARC".*"action":"reject"/, 'the refusal is logged as a decision');
});
