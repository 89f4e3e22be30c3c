import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError } from '../../src/config/config-error.js';
import { loadRules } from '../../src/config/load.js';
import { RulesStore } from '../../src/config/rules-store.js';

const run = promisify(execFile);

const GOOD = `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - name: internet
    listen: 127.0.0.1:2525
    ipRestrictions: { default: grant, except: [192.0.2.99, "198.51.100.0 255.255.255.0"] }
connectionFilter:
  deny:
    - 192.0.2.0/24
    - file: lists/deny.txt
senderFilter: { blocked: ["*@spam.example"] }
badmail: ../spool/badmail
`;

async function dir(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-cfg-'));
  await mkdir(join(d, 'lists'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  return d;
}

async function problem(files: Record<string, string>): Promise<ConfigError> {
  const d = await dir(files);
  try {
    await loadRules(join(d, 'rules.yaml'));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('the rule set was accepted');
}

const denyTxt = '# deny list\n203.0.113.1\n\n10.0.0.0 255.0.0.0   # a group\n';

test('a good rule set loads: list files expanded, relative paths made absolute', async () => {
  const d = await dir({ 'rules.yaml': GOOD, 'lists/deny.txt': denyTxt });
  const rules = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual(rules.connectionFilter.deny, ['192.0.2.0/24', '203.0.113.1', '10.0.0.0 255.0.0.0']);
  assert.equal(rules.badmail, join(d, '..', 'spool', 'badmail'));
  assert.equal(rules.listeners[0]!.filters.connection, true, 'defaults filled in');
});

test('errors name the file, the line and the key', async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['YAML syntax', { 'rules.yaml': 'hostname: [\n' }, /rules\.yaml:2: YAML:/],
    ['unknown key', { 'rules.yaml': GOOD.replace('listen: 127', 'listen: 127.0.0.1:1\n    lisen: 127'), 'lists/deny.txt': '' }, /rules\.yaml:6: listeners\[0\]\.lisen: unknown key/],
    ['wrong type', { 'rules.yaml': GOOD.replace('default: grant', 'default: maybe'), 'lists/deny.txt': '' }, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.default: /],
    ['bad inline IP', { 'rules.yaml': GOOD.replace('192.0.2.99', '192.0.2.999'), 'lists/deny.txt': '' }, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.except\[0\]: '192\.0\.2\.999'/],
    ['bad IP in a list file', { 'rules.yaml': GOOD, 'lists/deny.txt': '203.0.113.1\n\n# x\nbogus\n' }, /lists\/deny\.txt:4: connectionFilter\.deny\[2\]: 'bogus'/],
    ['missing list file', { 'rules.yaml': GOOD }, /rules\.yaml:10: connectionFilter\.deny\[1\]\.file: cannot read list file/],
    ['bad address pattern', { 'rules.yaml': GOOD.replace('*@spam.example', 'not an address'), 'lists/deny.txt': '' }, /rules\.yaml:11: senderFilter\.blocked\[0\]: /],
    ['duplicate listener', { 'rules.yaml': GOOD.replace('connectionFilter:', '  - name: internet\n    listen: 127.0.0.1:2526\nconnectionFilter:'), 'lists/deny.txt': '' }, /rules\.yaml:7: listeners\[1\]\.name: duplicate listener name/],
    ['missing key', { 'rules.yaml': GOOD.replace('hostname: mx.example.test\n', ''), 'lists/deny.txt': '' }, /rules\.yaml:1: hostname: required key is missing/],
  ];
  for (const [name, files, expected] of cases) {
    const err = await problem(files);
    assert.match(err.message, expected, `${name}: ${err.message}`);
    assert.ok(err.file.endsWith('.yaml') || err.file.endsWith('.txt'), name);
  }
});

test('a reload with a broken rule set keeps the old one in force; a good one replaces it', async () => {
  const d = await dir({ 'rules.yaml': GOOD, 'lists/deny.txt': denyTxt });
  const store = await RulesStore.open(join(d, 'rules.yaml'));
  const seen: string[] = [];
  store.onChange((r) => seen.push(r.hostname));
  await writeFile(join(d, 'rules.yaml'), GOOD.replace('192.0.2.99', 'nonsense'));
  const bad = await store.reload();
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.error.message, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.except\[0\]/);
  assert.equal(store.current().hostname, 'mx.example.test');
  await writeFile(join(d, 'rules.yaml'), GOOD.replace('mx.example.test', 'mx2.example.test'));
  assert.equal((await store.reload()).ok, true);
  assert.equal(store.current().hostname, 'mx2.example.test');
  assert.deepEqual(seen, ['mx2.example.test']);
});

test('portcullis config check: exit 0 with a summary, exit 1 with file:line: key on a broken set', async () => {
  const d = await dir({ 'rules.yaml': GOOD, 'lists/deny.txt': denyTxt });
  const ok = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'config', 'check', '--config', join(d, 'rules.yaml')]);
  assert.match(ok.stdout, /^OK: .*rules\.yaml: 1 listener\(s\), 0 DNSBL rule\(s\), 0 accept \/ 3 deny entries/);
  await writeFile(join(d, 'lists/deny.txt'), 'bogus\n');
  const bad = await run('node', ['--import', 'tsx', 'src/cli/main.ts', 'config', 'check', '--config', join(d, 'rules.yaml')]).then(
    () => assert.fail('exit 0 on a broken rule set'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /lists\/deny\.txt:1: connectionFilter\.deny\[1\]: 'bogus'/);
});

test('the default rule set shipped in rules/ is valid', async () => {
  const rules = await loadRules('rules/portcullis.yaml');
  assert.equal(rules.listeners[0]!.listen, '0.0.0.0:2525');
});
