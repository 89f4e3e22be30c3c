import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

const run = promisify(execFile);
let dns: TestDnsServer;
let config: string;

before(async () => {
  dns = await startDnsServer({
    records: {
      '66.2.0.192.bl.example.net': { A: ['127.0.0.2'], TXT: ['listed for spam'] },
      '2.0.0.127.bl.example.net': { A: ['127.0.0.2'] },
    },
  });
  const d = await mkdtemp(join(tmpdir(), 'portcullis-check-'));
  config = join(d, 'rules.yaml');
  await writeFile(
    config,
    `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - { name: internet, listen: "127.0.0.1:2525", ipRestrictions: { default: grant, except: [192.0.2.99] } }
connectionFilter:
  deny: [203.0.113.0/24]
  exceptions: [postmaster@example.test]
  rules:
    - { name: Example BL, zone: bl.example.net, provider: Example, message: "The IP address %0 was rejected by block list provider %2: %3" }
senderFilter: { blocked: ["*@spam.example"], action: reject }
recipientFilter: { blocked: [], rejectUnknown: true }
directory: { addresses: [alice@example.test, postmaster@example.test] }
dns: { servers: ["${dns.address}"], timeoutMs: 1000 }
`,
  );
});
after(() => dns.close());

async function check(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--json', ...args]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('check --json: a listed client reaches only the exception recipient, with real DNS and each stage', async () => {
  const r = await check('--ip', '192.0.2.66', '--from', 'someone@example.org', '--to', 'alice@example.test', '--to', 'postmaster@example.test', '--header-from', 'someone@example.org');
  assert.equal(r.client, '192.0.2.66');
  assert.equal(r.listener, 'internet');
  assert.deepEqual(r.connect, { action: 'accept', step: 2, check: 'IP restrictions', code: 220, reply: '220 mx.example.test ESMTP' });
  assert.equal((r.mail as { code: number }).code, 250);
  const rcpt = r.rcpt as { address: string; action: string; code: number; reply: string; step: number; rule?: string }[];
  assert.deepEqual(
    rcpt.map((x) => [x.address, x.action, x.code, x.step, x.rule]),
    [
      ['alice@example.test', 'reject', 550, 9, 'Example BL'],
      ['postmaster@example.test', 'accept', 250, 10, 'postmaster@example.test'],
    ],
  );
  assert.equal(rcpt[0]!.reply, '550 5.7.1 The IP address 192.0.2.66 was rejected by block list provider Example: listed for spam');
  assert.deepEqual(r.data, { action: 'relay', step: 15, check: 'sender filter (header From:)' });
  const trace = r.trace as { step: number; check: string; outcome: string }[];
  assert.ok(trace.some((t) => t.step === 9 && /127\.0\.0\.2 matches any/.test(t.outcome)));
  assert.equal((r.zones as Record<string, { state: string }>)['bl.example.net']!.state, 'healthy');
});

test('check --json: a refused client stops at connect; later stages are null', async () => {
  const r = await check('--ip', '192.0.2.99', '--from', 'a@example.org', '--to', 'alice@example.test');
  assert.equal((r.connect as { reply: string }).reply, '554 5.7.1 Access denied');
  assert.equal(r.mail, null);
  assert.equal(r.rcpt, null);
  assert.equal(r.data, null);
});

test('check --json: the deny list drops at MAIL FROM; a blocked header From: is refused at DATA', async () => {
  const denied = await check('--ip', '203.0.113.5', '--from', 'a@example.org', '--to', 'alice@example.test');
  assert.equal((denied.connect as { code: number }).code, 220);
  assert.deepEqual([(denied.mail as { action: string }).action, (denied.mail as { code: number }).code], ['drop', 550]);
  assert.equal(denied.rcpt, null);
  const hdr = await check('--ip', '198.51.100.1', '--from', 'a@example.org', '--to', 'alice@example.test', '--header-from', 'boss@spam.example');
  assert.equal((hdr.data as { reply: string }).reply, '550 5.1.0 Sender Denied');
});

test('check without --json prints the trace in the guide\'s step numbers', async () => {
  const { stdout } = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--ip', '192.0.2.66', '--from', 'a@example.org', '--to', 'alice@example.test']);
  assert.match(stdout, /step {2}9 {2}DNSBL rules: Example BL: 127\.0\.0\.2 matches/);
  assert.match(stdout, /-> 550 5\.7\.1 The IP address 192\.0\.2\.66/);
});

test('check shows a command the filters pass as relayed: the back end\'s reply, not a text of ours', async () => {
  const args = ['--ip', '192.0.2.66', '--from', 'a@example.org', '--to', 'alice@example.test', '--to', 'postmaster@example.test'];
  const { stdout } = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, ...args]);
  assert.match(stdout, /MAIL FROM:<a@example\.org>\n( {2}step .*\n)+ {2}-> 250 \(the back end's reply is passed on\)\n/);
  assert.match(stdout, /RCPT TO:<alice@example\.test>\n( {2}step .*\n)+ {2}-> 550 5\.7\.1 The IP address/);
  assert.match(stdout, /RCPT TO:<postmaster@example\.test>\n( {2}step .*\n)+ {2}-> 250 \(the back end's reply is passed on\)\n/);
  assert.doesNotMatch(stdout, /Sender OK|Recipient OK/);
  const r = await check(...args);
  assert.deepEqual(r.mail, { action: 'accept', step: 7, check: 'sender filter (envelope sender)', code: 250, relayed: true });
  const rcpt = r.rcpt as { address: string; reply?: string; relayed?: boolean }[];
  assert.deepEqual(rcpt.map((x) => [x.address, x.relayed ?? false, x.reply !== undefined]), [
    ['alice@example.test', false, true],
    ['postmaster@example.test', true, false],
  ]);
  const trace = r.trace as { stage: string; recipient?: number }[];
  assert.deepEqual([...new Set(trace.filter((t) => t.stage === 'rcpt').map((t) => t.recipient))], [0, 1]);
});

test('check refuses to run without the required flags (exit 2)', async () => {
  const e = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--ip', '192.0.2.1']).then(
    () => assert.fail('exit 0'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(e.code, 2);
  assert.match(e.stderr, /--from/);
});

test('check refuses a malformed --ip and an unknown --listener with exit 2, and takes <addr> as SMTP writes it', async () => {
  const refused = (args: string[]) =>
    run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--from', 'a@example.org', '--to', 'alice@example.test', ...args]).then(
      () => assert.fail('exit 0'),
      (err: { code: number; stderr: string }) => err,
    );
  const ip = await refused(['--ip', '010.0.0.1']);
  assert.equal(ip.code, 2);
  assert.match(ip.stderr, /--ip: .*leading zeros/);
  const listener = await refused(['--ip', '192.0.2.1', '--listener', 'nope']);
  assert.equal(listener.code, 2);
  assert.match(listener.stderr, /--listener: no listener 'nope'.*\(have: internet/);
  const r = await check('--ip', '198.51.100.1', '--from', '<a@example.org>', '--to', '<alice@example.test>');
  const [rcpt] = r.rcpt as { address: string; code: number }[];
  assert.equal(rcpt?.address, 'alice@example.test');
  assert.equal(rcpt?.code, 250);
});

test('portcullis check --helo: the HELO checks judge the name and refuse at RCPT TO; the wire tests are named as not simulated', async () => {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-check-helo-'));
  const rules = join(d, 'rules.yaml');
  await writeFile(
    rules,
    `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - { name: internet, listen: "127.0.0.1:2525", protocolTests: { greetPauseMs: 3000, pipelining: true }, heloChecks: { syntax: true, notOurs: true } }
dns: { servers: ["${dns.address}"], timeoutMs: 1000 }
`,
  );
  const check = (helo: string) =>
    run('node', ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', rules, '--ip', '192.0.2.1', '--from', 'a@b.example', '--to', 'x@example.test', '--helo', helo], { timeout: 60_000 }).catch(
      (e: { stdout: string }) => e,
    );
  const refused = (await check('localhost')).stdout;
  assert.match(refused, /step {2}1 {2}pre-greeting test: not simulated: the listener pauses 3000 ms before its greeting/);
  assert.match(refused, /step 1\.1 {2}unauthorised pipelining: not simulated/);
  assert.match(refused, /step {2}3 {2}HELO checks: 'localhost' is not a fully-qualified host name or address literal/);
  assert.match(refused, /RCPT TO:<x@example\.test>\n {2}step {2}3 {2}HELO checks: session verdict: 550 5\.5\.2 \(syntax\)\n {2}-> 550 5\.5\.2 <localhost>: Helo command rejected: need fully-qualified hostname or address literal\n/);
  const ours = (await check('mx.example.test')).stdout;
  assert.match(ours, /-> 550 5\.7\.1 <mx\.example\.test>: Helo command rejected: you are not me/);
  const fine = (await check('mail.client.example')).stdout;
  assert.match(fine, /RCPT TO:<x@example\.test>\n( {2}step .*\n)* {2}-> 250 /);
  assert.doesNotMatch(fine, /session verdict/);
});
