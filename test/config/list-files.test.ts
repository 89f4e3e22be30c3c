import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseListFile } from '../../src/config/list-files.js';
import { loadRules } from '../../src/config/load.js';
import { folder } from './fixture.js';

test('a list file: one entry a line, # comments, blank lines, the address-mask form as one entry', () => {
  const text = '\uFEFF# header comment\n192.0.2.1\n\n   \n198.51.100.0 255.255.255.0   # a group\r\n  2001:db8::/32  \nodd#name@example.test\n';
  const { entries, origins } = parseListFile(text, 'lists/x.txt');
  assert.deepEqual(entries, ['192.0.2.1', '198.51.100.0 255.255.255.0', '2001:db8::/32', 'odd#name@example.test']);
  assert.deepEqual(
    origins.map((o) => o.line),
    [2, 5, 6, 7],
  );
  assert.equal(origins[0]!.file, 'lists/x.txt');
});

const RULES = `hostname: mx.example.test
acceptedDomains: [{ file: lists/domains.txt }]
listeners:
  - name: internet
    listen: 127.0.0.1:2525
    relayFrom: { file: lists/relay.txt }
connectionFilter:
  accept: [203.0.113.5, { file: lists/accept.txt }, 203.0.113.6]
  exceptions: { file: lists/exceptions.txt }
senderFilter:
  blocked: [{ file: lists/senders.txt }]
directory:
  addresses: { file: lists/mailboxes.txt }
`;

const LISTS = {
  'rules.yaml': RULES,
  'lists/domains.txt': 'example.test\nexample.org # second\n',
  'lists/relay.txt': '10.0.0.0 255.0.0.0\n',
  'lists/accept.txt': '# partners\n198.51.100.7\n198.51.100.64/26\n',
  'lists/exceptions.txt': 'postmaster@example.test\n',
  'lists/senders.txt': '*@spam.example\n"Sales Team"@promo.example   # quoted\n',
  'lists/mailboxes.txt': 'alice@example.test\npostmaster@example.test\n',
};

test('any list-valued key takes list files, as items beside inline entries or as the whole list', async () => {
  const d = await folder(LISTS);
  const rules = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual(rules.acceptedDomains, ['example.test', 'example.org']);
  assert.deepEqual(rules.listeners[0]!.relayFrom, ['10.0.0.0 255.0.0.0']);
  assert.deepEqual(rules.connectionFilter.accept, ['203.0.113.5', '198.51.100.7', '198.51.100.64/26', '203.0.113.6'], 'order kept');
  assert.deepEqual(rules.connectionFilter.exceptions, ['postmaster@example.test']);
  assert.deepEqual(rules.senderFilter.blocked, ['*@spam.example', '"Sales Team"@promo.example']);
  assert.deepEqual(rules.directory.addresses, ['alice@example.test', 'postmaster@example.test']);
});

test('list files are found relative to the rule set, wherever the process runs', async () => {
  const d = await folder({ 'conf/rules.yaml': RULES, ...Object.fromEntries(Object.entries(LISTS).filter(([k]) => k !== 'rules.yaml').map(([k, v]) => [`conf/${k}`, v])) });
  const before = process.cwd();
  process.chdir(d);
  try {
    const rules = await loadRules('conf/rules.yaml');
    assert.equal(rules.connectionFilter.accept.length, 4);
  } finally {
    process.chdir(before);
  }
});

test('an error in a list file names that file and line; inline entries around it keep the rule set line', async () => {
  const d = await folder({ ...LISTS, 'lists/accept.txt': '# partners\n198.51.100.7\n\n198.51.100.999\n' });
  const err = await loadRules(join(d, 'rules.yaml')).then(
    () => assert.fail('accepted'),
    (e: Error) => e,
  );
  assert.match(err.message, /lists\/accept\.txt:4: connectionFilter\.accept\[2\]: '198\.51\.100\.999'/);
  const d2 = await folder({ ...LISTS, 'rules.yaml': RULES.replace('203.0.113.6', '203.0.113.666') });
  const err2 = await loadRules(join(d2, 'rules.yaml')).then(
    () => assert.fail('accepted'),
    (e: Error) => e,
  );
  assert.match(err2.message, /rules\.yaml:8: connectionFilter\.accept\[3\]: '203\.0\.113\.666'/, 'the index is in the expanded list, the line in the YAML');
});

test('a bad address in a whole-list file and a missing whole-list file', async () => {
  const d = await folder({ ...LISTS, 'lists/senders.txt': '*@spam.example\n\nnot an address\n' });
  const err = await loadRules(join(d, 'rules.yaml')).then(
    () => assert.fail('accepted'),
    (e: Error) => e,
  );
  assert.match(err.message, /lists\/senders\.txt:3: senderFilter\.blocked\[1\]: 'not an address'/);
  const files: Record<string, string> = { ...LISTS };
  delete files['lists/relay.txt'];
  const d2 = await folder(files);
  const err2 = await loadRules(join(d2, 'rules.yaml')).then(
    () => assert.fail('accepted'),
    (e: Error) => e,
  );
  assert.match(err2.message, /rules\.yaml:6: listeners\[0\]\.relayFrom\.file: cannot read list file .*relay\.txt/);
});
