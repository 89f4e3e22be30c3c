import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { DENY_TXT, folder, GOOD } from './fixture.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run('node', ['--import', 'tsx', 'src/cli/main.ts', 'config', 'check', ...args], { timeout: 60_000 });
const failed = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail('exit 0 on a broken rule set'),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

test('portcullis config check: exit 0 and a summary for a good rule set', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const ok = await cli('--config', join(d, 'rules.yaml'));
  assert.equal(ok.stderr, '');
  assert.equal(
    ok.stdout,
    `OK: ${join(d, 'rules.yaml')}: 1 listener, 0 DNSBL rules, 0 accept entries, 3 deny entries, 0 exceptions, 1 blocked sender, ` +
      '0 blocked recipients, 0 directory addresses, 1 accepted domain\n',
  );
});

test('portcullis config check: exit 1 and file:line: key: reason on standard error for a broken set', async () => {
  const d = await folder({ 'rules.yaml': GOOD.replace('192.0.2.99', '192.0.2.999'), 'lists/deny.txt': 'bogus\n' });
  const bad = await failed(cli('--config', join(d, 'rules.yaml')));
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  const lines = bad.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, bad.stderr);
  assert.equal(lines[0], `${join(d, 'rules.yaml')}:6: listeners[0].ipRestrictions.except[0]: '192.0.2.999': not an IP address, CIDR block (198.51.100.0/24) or "address mask" pair (192.0.2.0 255.255.255.0)`);
  assert.match(lines[1]!, /lists\/deny\.txt:1: connectionFilter\.deny\[1\]: 'bogus'/);
});

test('portcullis config check: the default rule set passes; a YAML error and a missing file exit 1', async () => {
  const ok = await cli();
  assert.match(ok.stdout, /^OK: rules\/portcullis\.yaml: 1 listener, /);
  const d = await folder({ 'rules.yaml': 'hostname: x\nlisteners: [\n' });
  const yamlErr = await failed(cli('--config', join(d, 'rules.yaml')));
  assert.equal(yamlErr.code, 1);
  assert.match(yamlErr.stderr, /rules\.yaml:3: YAML: /);
  assert.doesNotMatch(yamlErr.stderr, /at line \d/, 'the position is given once, in front');
  const missing = await failed(cli('--config', join(d, 'nowhere.yaml')));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nowhere\.yaml: cannot read the rule set: ENOENT/);
  const usage = await failed(cli('--bogus'));
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: portcullis config check/);
});

test('portcullis config check: an IDN domain may be written in Unicode or punycode, and both forms are one domain', async () => {
  const idn = GOOD.replace('acceptedDomains: [example.test]', 'acceptedDomains: [bücher.test, xn--mller-kva.test]');
  const d = await folder({ 'rules.yaml': `${idn}directory: { addresses: [user@xn--bcher-kva.test, anna@müller.test] }\n`, 'lists/deny.txt': DENY_TXT });
  const ok = await cli('--config', join(d, 'rules.yaml'));
  assert.match(ok.stdout, /^OK: .* 2 directory addresses, 2 accepted domains\n$/);
  const clash = `${idn}directory:\n  addresses: [user@xn--bcher-kva.test]\n  aliases: [{ address: user@Bücher.test, forwardTo: [x@example.test] }]\n`;
  const e = await folder({ 'rules.yaml': clash, 'lists/deny.txt': DENY_TXT });
  const bad = await failed(cli('--config', join(e, 'rules.yaml')));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /directory\.aliases\[0\]\.address: ambiguous address user@xn--bcher-kva\.test/);
});

test('portcullis config check: a shadow candidate is validated too, its problems naming its own file, line and key', async () => {
  const candidate = GOOD.replace(/^listeners:/m, 'shadow: { rules: other.yaml }\nlisteners:');
  const d = await folder({ 'rules.yaml': `${GOOD}shadow:\n  rules: candidate.yaml\n`, 'candidate.yaml': GOOD.replace('192.0.2.99', '192.0.2.999'), 'lists/deny.txt': DENY_TXT });
  const bad = await failed(cli('--config', join(d, 'rules.yaml')));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`^${join(d, 'candidate.yaml')}:6: listeners\\[0\\]\\.ipRestrictions\\.except\\[0\\]: '192\\.0\\.2\\.999'`));
  // A candidate that lacks a live listener, or names a shadow of its own, is refused.
  const d2 = await folder({ 'rules.yaml': `${GOOD}shadow:\n  rules: candidate.yaml\n`, 'candidate.yaml': candidate.replace('- name: internet', '- name: other'), 'lists/deny.txt': DENY_TXT });
  const refused = await failed(cli('--config', join(d2, 'rules.yaml')));
  assert.match(refused.stderr, /candidate\.yaml: shadow: a shadow rule set cannot name a shadow of its own/);
  assert.match(refused.stderr, /candidate\.yaml: listeners: no listener '[^']+': the candidate must have every live listener, by name/);
  const d3 = await folder({ 'rules.yaml': `${GOOD}shadow:\n  rules: candidate.yaml\n`, 'candidate.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const ok = await cli('--config', join(d3, 'rules.yaml'));
  assert.match(ok.stdout, /\nOK: shadow .*candidate\.yaml: 1 listener, /);
});
