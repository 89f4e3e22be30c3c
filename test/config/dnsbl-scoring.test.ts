/** The scoring mode and allow rules as a rule set writes them: what loads, and each mistake at its file:line:key. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { folder } from './fixture.js';
import { ConfigError } from '../../src/config/config-error.js';
import { loadRulesFromString } from '../../src/config/load.js';

const HEAD = `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - { name: internet, listen: 127.0.0.1:2525 }
connectionFilter:
`;

/** A rule set whose connectionFilter (from line 6) is `body`. */
const withFilter = (body: string): string => HEAD + body;

const SCORING = `  scoring:
    threshold: 5
    allowThreshold: -3
    lists:
      - name: Block
        zone: bl.example.net
        weight: 3
      - name: Codes
        zone: zen.example.net
        weights:
          127.0.0.2: 4
          127.0.0.4: 1
      - name: Welcome
        zone: wl.example.net
        match: { mask: 0.0.10.0 }
        weight: -5
`;

async function problems(text: string): Promise<string[]> {
  const err = await loadRulesFromString(text, '/etc/portcullis/rules.yaml').then(
    () => assert.fail('the rule set was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  return err.message.split('\n');
}

test('a scoring rule set loads as written; without scoring, step 9 stays first-match', async () => {
  const rules = await loadRulesFromString(withFilter(SCORING), '/etc/portcullis/rules.yaml');
  const s = rules.connectionFilter.scoring;
  assert.equal(s?.threshold, 5);
  assert.deepEqual(s?.lists[1]?.weights, { '127.0.0.2': 4, '127.0.0.4': 1 });
  const plain = await loadRulesFromString(withFilter('  rules: [{ name: BL, zone: bl.example.net }]\n'), 'rules.yaml');
  assert.equal(plain.connectionFilter.scoring, undefined);
  assert.equal(plain.connectionFilter.rules[0]?.allow, undefined, 'no allow rule unless written');
});

test('impossible thresholds: allowThreshold not below threshold, a threshold no sum reaches, one every client reaches', async () => {
  let p = await problems(withFilter(SCORING.replace('allowThreshold: -3', 'allowThreshold: 5')));
  assert.deepEqual(p, ['/etc/portcullis/rules.yaml:8: connectionFilter.scoring.allowThreshold: allowThreshold 5 must be below threshold 5']);
  p = await problems(withFilter(SCORING.replace('threshold: 5', 'threshold: 9')));
  assert.deepEqual(p, ['/etc/portcullis/rules.yaml:7: connectionFilter.scoring.threshold: threshold 9 can never be reached: the lists add up to at most 8']);
  p = await problems(withFilter(SCORING.replace('threshold: 5', 'threshold: 0')));
  assert.match(p[0] ?? '', /rules\.yaml:7: connectionFilter\.scoring\.threshold: threshold 0 refuses every client/);
  p = await problems(withFilter(SCORING.replace('allowThreshold: -3', 'allowThreshold: -6')));
  assert.deepEqual(p, ['/etc/portcullis/rules.yaml:8: connectionFilter.scoring.allowThreshold: allowThreshold -6 can never be reached: the lists add up to at least -5']);
  p = await problems(withFilter(SCORING.replace('allowThreshold: -3', 'allowThreshold: 0')));
  assert.match(p[0] ?? '', /rules\.yaml:8: connectionFilter\.scoring\.allowThreshold: allowThreshold 0 allowlists every client no list names/);
});

test('weights on error codes, or outside 127/8, are refused at the code\'s own line', async () => {
  const p = await problems(withFilter(SCORING.replace('127.0.0.4: 1', '127.255.255.254: 1\n          10.0.0.2: 1')));
  assert.deepEqual(p, [
    "/etc/portcullis/rules.yaml:17: connectionFilter.scoring.lists[1].weights.127.255.255.254: '127.255.255.254' is an operator error code (127.255.255.0/24, 127.0.1.255, 127.0.0.255), never a listing, so nothing written on it could ever count",
    "/etc/portcullis/rules.yaml:18: connectionFilter.scoring.lists[1].weights.10.0.0.2: '10.0.0.2' is outside 127.0.0.0/8: answers there are errors, never listings",
  ]);
});

test('a list needs one weight form; zero lists, zero weights, duplicate names and both modes at once are refused', async () => {
  let p = await problems(withFilter(SCORING.replace('        weight: 3\n', '')));
  assert.deepEqual(p, ['/etc/portcullis/rules.yaml:10: connectionFilter.scoring.lists[0].weight: a list needs a weight (or weights per code)']);
  p = await problems(withFilter(SCORING.replace('        weight: 3\n', '        weight: 0\n')));
  assert.match(p[0] ?? '', /rules\.yaml:12: connectionFilter\.scoring\.lists\[0\]\.weight: a weight of 0 counts nothing/);
  p = await problems(withFilter(SCORING.replace('        weights:\n', '        weight: 2\n        weights:\n')));
  assert.match(p[0] ?? '', /rules\.yaml:16: connectionFilter\.scoring\.lists\[1\]\.weights: give either weight or weights per code, not both/);
  p = await problems(withFilter(SCORING.replace('name: Codes', 'name: Block')));
  assert.match(p[0] ?? '', /rules\.yaml:13: connectionFilter\.scoring\.lists\[1\]\.name: duplicate list name 'Block' \(also lists\[0\]\)/);
  p = await problems(withFilter('  scoring: { threshold: 1, lists: [] }\n'));
  assert.deepEqual(p, ['/etc/portcullis/rules.yaml:6: connectionFilter.scoring.lists: scoring needs at least one list']);
  p = await problems(withFilter(`  rules: [{ name: BL, zone: bl.example.net }]\n${SCORING}`));
  assert.match(p[0] ?? '', /rules\.yaml:7: connectionFilter\.scoring: step 9 runs either first-match rules \(connectionFilter\.rules\) or scoring, not both/);
  p = await problems(withFilter(SCORING.replace('        weight: 3\n', '        weight: 1.5\n')));
  assert.match(p[0] ?? '', /rules\.yaml:12: connectionFilter\.scoring\.lists\[0\]\.weight: expected int/);
});

test('allow rules: before every block rule, never failing closed, with no message', async () => {
  const rules = `  rules:
    - { name: BL, zone: bl.example.net }
    - { name: WL, zone: wl.example.net, allow: true, onError: tempfail, message: hi }
`;
  const p = await problems(withFilter(rules));
  assert.deepEqual(p, [
    '/etc/portcullis/rules.yaml:8: connectionFilter.rules[1].allow: an allow rule must come before every block rule (rules[0] blocks): the first match decides, and an allowlist hit has to be able to skip them',
    '/etc/portcullis/rules.yaml:8: connectionFilter.rules[1].onError: an allow rule cannot fail closed: a failed allowlist lookup only means the client is not allowlisted',
    '/etc/portcullis/rules.yaml:8: connectionFilter.rules[1].message: an allow rule refuses nothing, so it has no message',
  ]);
  const good = await loadRulesFromString(withFilter('  rules:\n    - { name: WL, zone: wl.example.net, allow: true }\n    - { name: BL, zone: bl.example.net }\n'), 'rules.yaml');
  assert.equal(good.connectionFilter.rules[0]?.allow, true);
});

test('portcullis config check: counts the scoring lists; an impossible threshold exits 1 with file:line: key: reason', async () => {
  const cli = (file: string) => promisify(execFile)('node', ['--import', 'tsx', 'src/cli/main.ts', 'config', 'check', '--config', file], { timeout: 60_000 });
  const d = await folder({ 'good.yaml': withFilter(SCORING), 'bad.yaml': withFilter(SCORING.replace('allowThreshold: -3', 'allowThreshold: 7')) });
  const ok = await cli(join(d, 'good.yaml'));
  assert.match(ok.stdout, /^OK: .*good\.yaml: 1 listener, 3 DNSBL scoring lists, /);
  const bad = await cli(join(d, 'bad.yaml')).then(
    () => assert.fail('exit 0 on a broken rule set'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, `${join(d, 'bad.yaml')}:8: connectionFilter.scoring.allowThreshold: allowThreshold 7 must be below threshold 5\n`);
});
