import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { loadRules, loadRulesFromString } from '../../src/config/load.js';
import { DENY_TXT, folder, GOOD } from './fixture.js';

/** Load `rules.yaml` from a folder of files and return the ConfigError it must raise. */
async function refused(files: Record<string, string>): Promise<ConfigError> {
  const d = await folder({ 'lists/deny.txt': DENY_TXT, ...files });
  const err = await loadRules(join(d, 'rules.yaml')).then(
    () => assert.fail('the rule set was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  return err;
}

test('a good rule set loads: list files expanded, defaults filled, relative paths absolute', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const rules = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual(rules.connectionFilter.deny, ['192.0.2.0/24', '203.0.113.1', '10.0.0.0 255.0.0.0']);
  assert.equal(rules.badmail, join(d, '..', 'spool', 'badmail'));
  assert.equal(rules.transport.dataDir, join(d, 'data'), 'a default path is relative to the rule set too');
  assert.equal(rules.listeners[0]!.filters.connection, true);
  assert.equal(rules.recipientFilter.rejectUnknown, false);
});

test('YAML syntax error: file and line of the fault', async () => {
  const err = await refused({ 'rules.yaml': 'hostname: mx.example.test\nlisteners: [\n' });
  assert.match(err.message, /rules\.yaml:3: YAML: /);
  assert.equal(err.line, 3);
  assert.ok(err.file.endsWith('rules.yaml'));
});

test('a duplicate key is a YAML error on its line', async () => {
  const err = await refused({ 'rules.yaml': GOOD.replace('badmail:', 'hostname: again\nbadmail:') });
  assert.match(err.message, /rules\.yaml:12: YAML: .*[Mm]ap keys must be unique/);
});

test('unknown key: its own line and dotted path', async () => {
  const err = await refused({ 'rules.yaml': GOOD.replace('    listen: 127', '    lisen: x\n    listen: 127') });
  assert.match(err.message, /rules\.yaml:5: listeners\[0\]\.lisen: unknown key 'lisen'/);
  assert.equal(err.key, 'listeners[0].lisen');
  assert.equal(err.line, 5);
});

test('wrong type and bad enum value: the key and what was expected', async () => {
  let err = await refused({ 'rules.yaml': GOOD.replace('default: grant', 'default: maybe') });
  assert.match(err.message, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.default: .*"grant"\|"deny"/);
  err = await refused({ 'rules.yaml': GOOD.replace('acceptedDomains: [example.test]', 'acceptedDomains: example.test') });
  assert.match(err.message, /rules\.yaml:2: acceptedDomains: expected array, received string/);
  err = await refused({ 'rules.yaml': `${GOOD}dns: { timeoutMs: soon }\n` });
  assert.match(err.message, /rules\.yaml:13: dns\.timeoutMs: expected number, received string/);
});

test('a DNSBL match in no known form, and one in a known form with a bad value', async () => {
  const withRule = (match: string): string =>
    GOOD.replace('connectionFilter:\n', `connectionFilter:\n  rules:\n    - name: BL\n      zone: bl.example\n      match: ${match}\n`);
  let err = await refused({ 'rules.yaml': withRule('sometimes') });
  assert.match(err.message, /rules\.yaml:11: connectionFilter\.rules\[0\]\.match: expected any, \{ mask: 0\.0\.0\.N \}/);
  err = await refused({ 'rules.yaml': withRule('{ mask: 6 }') });
  assert.match(err.message, /rules\.yaml:11: connectionFilter\.rules\[0\]\.match\.mask: expected string, received number/);
  err = await refused({ 'rules.yaml': withRule('{ codes: [10.0.0.2] }') });
  assert.match(err.message, /connectionFilter\.rules\[0\]\.match\.codes\[0\]: '10\.0\.0\.2' is outside 127\.0\.0\.0\/8/);
});

test('missing required key: named, at the map that lacks it', async () => {
  let err = await refused({ 'rules.yaml': GOOD.replace('hostname: mx.example.test\n', '') });
  assert.match(err.message, /rules\.yaml:1: hostname: required key is missing/);
  err = await refused({ 'rules.yaml': GOOD.replace('    listen: 127.0.0.1:2525\n', '') });
  assert.match(err.message, /rules\.yaml:4: listeners\[0\]\.listen: required key is missing/);
});

test('bad IP in an inline list: the entry, its index and line', async () => {
  const err = await refused({ 'rules.yaml': GOOD.replace('192.0.2.99', '192.0.2.999') });
  assert.match(err.message, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.except\[0\]: '192\.0\.2\.999': not an IP address/);
  assert.equal(err.key, 'listeners[0].ipRestrictions.except[0]');
});

test('a non-contiguous mask is refused with the reason', async () => {
  const err = await refused({ 'rules.yaml': GOOD.replace('255.255.255.0', '255.0.255.0') });
  assert.match(err.message, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.except\[1\]: .*not contiguous/);
});

test('bad IP in a list FILE: the list file and its line, not the rule set', async () => {
  const err = await refused({ 'rules.yaml': GOOD, 'lists/deny.txt': '203.0.113.1\n\n# a comment\nbogus\n' });
  assert.match(err.message, /lists\/deny\.txt:4: connectionFilter\.deny\[2\]: 'bogus': not an IP address/);
  assert.ok(err.file.endsWith(join('lists', 'deny.txt')), err.file);
  assert.equal(err.line, 4);
});

test('a missing list file is named, at the line that refers to it', async () => {
  const d = await folder({ 'rules.yaml': GOOD });
  const err = await loadRules(join(d, 'rules.yaml')).then(
    () => assert.fail('accepted'),
    (e: unknown) => e as ConfigError,
  );
  assert.match(err.message, /rules\.yaml:10: connectionFilter\.deny\[1\]\.file: cannot read list file .*lists\/deny\.txt: ENOENT/);
});

test('bad address pattern, sender or exception or directory entry', async () => {
  let err = await refused({ 'rules.yaml': GOOD.replace('*@spam.example', 'not an address') });
  assert.match(err.message, /rules\.yaml:11: senderFilter\.blocked\[0\]: 'not an address': /);
  err = await refused({ 'rules.yaml': GOOD.replace('*@spam.example', 'ted@*.spam.example') });
  assert.match(err.message, /senderFilter\.blocked\[0\]: .*wildcard domain needs a wildcard local part/);
  err = await refused({ 'rules.yaml': `${GOOD}directory:\n  addresses:\n    - alice@example.test\n    - "*@example.test"\n` });
  assert.match(err.message, /rules\.yaml:16: directory\.addresses\[1\]: .*single addresses, not patterns/);
  err = await refused({ 'rules.yaml': GOOD.replace('connectionFilter:\n', 'connectionFilter:\n  exceptions: [postmaster]\n') });
  assert.match(err.message, /rules\.yaml:8: connectionFilter\.exceptions\[0\]: 'postmaster'/);
});

test('duplicate listener and DNSBL rule names are refused at the second', async () => {
  let err = await refused({ 'rules.yaml': GOOD.replace('connectionFilter:', '  - name: internet\n    listen: 127.0.0.1:2526\nconnectionFilter:') });
  assert.match(err.message, /rules\.yaml:7: listeners\[1\]\.name: duplicate listener name 'internet'/);
  const rules = '  rules:\n    - { name: BL, zone: a.example }\n    - { name: BL, zone: b.example }\n';
  err = await refused({ 'rules.yaml': GOOD.replace('connectionFilter:\n', `connectionFilter:\n${rules}`) });
  assert.match(err.message, /rules\.yaml:10: connectionFilter\.rules\[1\]\.name: duplicate DNSBL rule name 'BL'/);
});

test('listen addresses must parse: port range, bracketed IPv6, distinct per listener', async () => {
  let err = await refused({ 'rules.yaml': GOOD.replace('127.0.0.1:2525', '127.0.0.1:70000') });
  assert.match(err.message, /rules\.yaml:5: listeners\[0\]\.listen: port 70000 is out of range/);
  err = await refused({ 'rules.yaml': GOOD.replace('127.0.0.1:2525', '"[192.0.2.1]:25"') });
  assert.match(err.message, /listeners\[0\]\.listen: '\[192\.0\.2\.1\]' is not an IPv6 address/);
  err = await refused({ 'rules.yaml': GOOD.replace('127.0.0.1:2525', '127.0.0.300:25') });
  assert.match(err.message, /listeners\[0\]\.listen: '127\.0\.0\.300' is not an IPv4 address/);
  err = await refused({ 'rules.yaml': GOOD.replace('connectionFilter:', '  - name: second\n    listen: 127.0.0.1:2525\nconnectionFilter:') });
  assert.match(err.message, /rules\.yaml:8: listeners\[1\]\.listen: 127\.0\.0\.1:2525 is already the address of listener 'internet'/);
  err = await refused({ 'rules.yaml': `${GOOD}dns: { servers: ["ns.example:53"] }\n` });
  assert.match(err.message, /rules\.yaml:13: dns\.servers\[0\]: 'ns\.example' must be an IP address/);
});

test('every problem is reported, one per line, not only the first', async () => {
  const err = await refused({ 'rules.yaml': GOOD.replace('192.0.2.99', 'x.x').replace('*@spam.example', 'bad pattern').replace('192.0.2.0/24', '192.0.2.0/40') });
  const lines = err.message.split('\n');
  assert.equal(lines.length, 3, err.message);
  assert.equal(err.problems.length, 3);
  assert.match(lines[0]!, /listeners\[0\]\.ipRestrictions\.except\[0\]/);
  assert.match(lines[1]!, /rules\.yaml:9: connectionFilter\.deny\[0\]: .*longer than 32/);
  assert.match(lines[2]!, /senderFilter\.blocked\[0\]/);
  assert.equal(err.key, 'listeners[0].ipRestrictions.except[0]', 'file, line and key are those of the first');
});

test('loadRulesFromString names the given file and resolves against its folder', async () => {
  const d = await folder({ 'lists/deny.txt': DENY_TXT });
  const rules = await loadRulesFromString(GOOD, join(d, 'inline.yaml'));
  assert.equal(rules.connectionFilter.deny.length, 3);
  const err = await loadRulesFromString(GOOD.replace('192.0.2.99', 'nope'), 'some/where.yaml').then(
    () => assert.fail('accepted'),
    (e: unknown) => e as ConfigError,
  );
  assert.match(err.message, /^some\/where\.yaml:\d+: /m);
});

test('TLS certificate files must exist, found relative to the rule set', async () => {
  const tls = GOOD.replace('    listen: 127.0.0.1:2525\n', '    listen: 127.0.0.1:2525\n    tls: { key: tls/key.pem, cert: tls/cert.pem }\n');
  const d = await folder({ 'rules.yaml': tls, 'lists/deny.txt': DENY_TXT, 'tls/key.pem': 'k', 'tls/cert.pem': 'c' });
  const rules = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual(rules.listeners[0]!.tls, { key: join(d, 'tls', 'key.pem'), cert: join(d, 'tls', 'cert.pem') });
  const err = await refused({ 'rules.yaml': tls, 'tls/key.pem': 'k' });
  assert.match(err.message, /rules\.yaml:6: listeners\[0\]\.tls\.cert: cannot read .*cert\.pem/);
});

test('the default rule set shipped in rules/ and every example are valid', async () => {
  const rules = await loadRules('rules/portcullis.yaml');
  assert.equal(rules.listeners[0]!.listen, '0.0.0.0:2525');
  assert.equal(rules.listeners[0]!.name, 'internet');
  assert.deepEqual(rules.acceptedDomains, ['example.test']);
  assert.deepEqual(rules.connectionFilter.rules, []);
  assert.deepEqual(rules.dns.servers, ['127.0.0.1:53']);
  for (const example of ['front-of-postfix.yaml', 'two-listeners.yaml', 'report-only-trial.yaml']) {
    const r = await loadRules(join('rules', 'examples', example));
    assert.ok(r.listeners.length > 0, example);
  }
});

test('an address two directory entries claim, however it is written: file, line and key of the later claim', async () => {
  const directory = [
    'directory:',
    '  mailboxes:',
    '    - { address: ted@example.test, proxyAddresses: ["theodore@example.test"] }',
    '  groups:',
    '    - { address: "\\"Theodore\\"@Example.Test.", members: [] }',
    '',
  ].join('\n');
  const err = await refused({ 'rules.yaml': GOOD + directory });
  assert.match(err.message, /rules\.yaml:17: directory\.groups\[0\]\.address: ambiguous address theodore@example\.test: .* \(also directory\.mailboxes\[0\]\.proxyAddresses\[0\]\)/);
});

test('a back-end port out of range is refused on its line', async () => {
  const err = await refused({ 'rules.yaml': `${GOOD}backend: { url: "smtp://127.0.0.1:70000" }\n` });
  assert.match(err.message, /rules\.yaml:13: backend\.url: port 70000 is out of range/);
});

test('a pattern where the directory wants one address is refused at its key', async () => {
  let err = await refused({ 'rules.yaml': `${GOOD}directory:\n  mailboxes:\n    - { address: "*@example.test" }\n` });
  assert.match(err.message, /rules\.yaml:15: directory\.mailboxes\[0\]\.address: .*single addresses, not patterns/);
  err = await refused({ 'rules.yaml': `${GOOD}directory:\n  groups:\n    - { address: staff@example.test, members: ["*@*.example.test"] }\n` });
  assert.match(err.message, /rules\.yaml:15: directory\.groups\[0\]\.members\[0\]: .*single addresses, not patterns/);
});

test('protocol tests and HELO checks: off by default; an impossible pause or an unknown check is refused with file:line:key', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const rules = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual(rules.listeners[0]!.protocolTests, { greetPauseMs: 0, pipelining: false, cacheTtlSec: 86400 });
  assert.deepEqual(rules.listeners[0]!.heloChecks, { syntax: false, notOurs: false, fcrdns: false });
  const listener = '    listen: 127.0.0.1:2525\n';
  const long = await refused({ 'rules.yaml': GOOD.replace(listener, `${listener}    protocolTests: { greetPauseMs: 120000 }\n`) });
  assert.match(long.message, /rules\.yaml:6: listeners\[0\]\.protocolTests\.greetPauseMs: at most 60000 \(ms\)/);
  const unknown = await refused({ 'rules.yaml': GOOD.replace(listener, `${listener}    heloChecks: { spf: true }\n`) });
  assert.match(unknown.message, /rules\.yaml:6: listeners\[0\]\.heloChecks\.spf: unknown key 'spf'/);
  const ttl = await refused({ 'rules.yaml': GOOD.replace(listener, `${listener}    protocolTests: { cacheTtlSec: 0 }\n`) });
  assert.match(ttl.message, /rules\.yaml:6: listeners\[0\]\.protocolTests\.cacheTtlSec: /);
});
