import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { loadRules } from '../../src/config/load.js';
import { folder, GOOD } from './fixture.js';

async function refused(yaml: string, files: Record<string, string> = {}): Promise<ConfigError> {
  const d = await folder({ 'lists/deny.txt': '203.0.113.1\n', 'rules.yaml': yaml, ...files });
  const err = await loadRules(join(d, 'rules.yaml')).then(
    () => assert.fail('the rule set was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  return err;
}

test('without the new keys nothing is on: no rate limits, back pressure, greylisting or shared store', async () => {
  const d = await folder({ 'lists/deny.txt': '203.0.113.1\n', 'rules.yaml': GOOD });
  const r = await loadRules(join(d, 'rules.yaml'));
  assert.deepEqual([r.rateLimits, r.backPressure, r.greylisting, r.state], [undefined, undefined, undefined, undefined]);
});

test('the example with limits, greylisting and its provider list files loads, with the defaults filled', async () => {
  const r = await loadRules(join('rules', 'examples', 'limits-and-greylisting.yaml'));
  assert.ok(r.greylisting?.exemptClients.includes('209.85.128.0/17'));
  assert.ok(r.greylisting?.exemptSenders.includes('*@accounts.google.com'));
  assert.equal(r.greylisting?.networkPrefix.ipv4, 24);
  assert.equal(r.greylisting?.allowDays, 36);
  assert.equal(r.rateLimits?.client.concurrentConnections, 10);
  assert.equal(r.state?.timeoutMs, 500);
});

test('a bad exemption entry in a list file: that file, its line, the key', async () => {
  const err = await refused(`${GOOD}rateLimits:\n  client: { connectionsPerMinute: 10 }\n  exempt:\n    - file: lists/rate-exempt.txt\n`, {
    'lists/rate-exempt.txt': '# exempt\n10.0.0.0/8\n10.0.0.300\n',
  });
  assert.match(err.message, /rate-exempt\.txt:3: rateLimits\.exempt\[1\]: '10\.0\.0\.300'/);
  const senders = await refused(`${GOOD}greylisting:\n  exemptSenders: ["not an address"]\n`);
  assert.match(senders.message, /rules\.yaml:14: greylisting\.exemptSenders\[0\]: /);
});

test('impossible settings each get a clear message at their key', async () => {
  let err = await refused(`${GOOD}greylisting: { delaySec: 7200, retryWindowHours: 1 }\n`);
  assert.match(err.message, /rules\.yaml:13: greylisting\.delaySec: 7200 s is not shorter than retryWindowHours \(1 h\): no retry could ever pass/);
  err = await refused(`${GOOD}backPressure: {}\n`);
  assert.match(err.message, /rules\.yaml:13: backPressure: sets no bound: give maxEventLoopLagMs, maxRssMb or both/);
  err = await refused(`${GOOD}rateLimits: { exempt: [10.0.0.0/8] }\n`);
  assert.match(err.message, /rules\.yaml:13: rateLimits: sets no limit/);
  err = await refused(`${GOOD}rateLimits:\n  client: { connectionsPerMinute: 0 }\n`);
  assert.match(err.message, /rules\.yaml:14: rateLimits\.client\.connectionsPerMinute: Too small: expected number to be >0/);
  err = await refused(`${GOOD}rateLimits:\n  sender: { concurrentConnections: 5 }\n`);
  assert.match(err.message, /rateLimits\.sender\.concurrentConnections: unknown key 'concurrentConnections'/);
  err = await refused(`${GOOD}rateLimits:\n  networkPrefix: { ipv4: 33 }\n  client: { connectionsPerMinute: 5 }\n`);
  assert.match(err.message, /rateLimits\.networkPrefix\.ipv4: Too big/);
  err = await refused(`${GOOD}state: { url: "memcached://127.0.0.1:11211" }\n`);
  assert.match(err.message, /rules\.yaml:13: state\.url: expected redis:\/\/host:port \(or rediss:\/\/ for TLS\)/);
});

test('a state store that is down at start-up is no configuration error: the rule set loads', async () => {
  const d = await folder({ 'lists/deny.txt': '203.0.113.1\n', 'rules.yaml': `${GOOD}state: { url: "redis://127.0.0.1:9" }\n` });
  assert.equal((await loadRules(join(d, 'rules.yaml'))).state?.url, 'redis://127.0.0.1:9');
});
