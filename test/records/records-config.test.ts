/** The `records` key: off by default, its path relative to the rule set, its mistakes named by file, line and key. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConfigError } from '../../src/config/config-error.js';
import { loadRules, loadRulesFromString } from '../../src/config/load.js';
import { DENY_TXT, folder, GOOD } from '../config/fixture.js';

test('records is off unless given; given, its path resolves against the rule set and the defaults apply', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  assert.equal((await loadRules(join(d, 'rules.yaml'))).records, undefined);
  const on = await loadRulesFromString(`${GOOD}records: { path: rec/records.jsonl }\n`, join(d, 'on.yaml'));
  assert.deepEqual(on.records, { path: join(d, 'rec', 'records.jsonl'), keepDays: 14, maxBytes: 100 * 1024 * 1024, hashLocalParts: false });
});

test('a bad records key is refused with its file, line and key', async () => {
  const d = await folder({ 'lists/deny.txt': DENY_TXT });
  const lines = GOOD.split('\n').length;
  const err = await loadRulesFromString(`${GOOD}records:\n  path: r.jsonl\n  keepDays: 0\n  hashLocalParts: maybe\n`, join(d, 'bad.yaml')).then(
    () => assert.fail('accepted'),
    (e: unknown) => e as ConfigError,
  );
  assert.match(err.message, new RegExp(`bad\\.yaml:${lines + 2}: records\\.keepDays: `));
  assert.match(err.message, new RegExp(`bad\\.yaml:${lines + 3}: records\\.hashLocalParts: `));
});
