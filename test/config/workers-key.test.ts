/** The `workers` key: off (1) by default, `auto` or a whole number, anything else refused with file:line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { loadRulesFromString } from '../../src/config/load.js';
import { workerCount, workerRules } from '../../src/cli/serve/worker-rules.js';
import { GOOD } from './fixture.js';

const plain = GOOD.replace(/^connectionFilter:[\s\S]*?(?=^senderFilter)/m, '');

test('workers defaults to 1: a rule set written before the key runs one process as before', async () => {
  const rules = await loadRulesFromString(plain, 'rules.yaml');
  assert.equal(rules.workers, 1);
  assert.equal(workerCount(rules.workers), 1);
});

test('workers: auto is one per core; a number is taken as written', async () => {
  assert.equal(workerCount((await loadRulesFromString(`${plain}workers: auto\n`, 'rules.yaml')).workers), (await import('node:os')).availableParallelism());
  assert.equal((await loadRulesFromString(`${plain}workers: 3\n`, 'rules.yaml')).workers, 3);
});

for (const bad of ['0', '-2', '1.5', 'many']) {
  test(`workers: ${bad} is refused, naming file, line and key`, async () => {
    const err = await loadRulesFromString(`${plain}workers: ${bad}\n`, 'rules.yaml').then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError, String(err));
    const line = plain.split('\n').length;
    assert.match(err.message, new RegExp(`^rules\\.yaml:${line}: workers: expected auto or a whole number of processes, 1 or more`));
  });
}

test('each worker runs its share of the connection limits, no metrics endpoint of its own', async () => {
  const rules = await loadRulesFromString(`${plain}metrics: { listen: 127.0.0.1:0 }\n`, 'rules.yaml');
  const limits = rules.listeners[0]!.limits;
  const share = workerRules(rules, 3, undefined);
  assert.equal(share.metrics, undefined);
  assert.equal(share.listeners[0]!.limits.maxConnectionsPerClient, Math.floor(limits.maxConnectionsPerClient / 3));
  assert.equal(share.listeners[0]!.limits.maxConnections, Math.floor(limits.maxConnections / 3));
  const tiny = workerRules({ ...rules, listeners: [{ ...rules.listeners[0]!, limits: { ...limits, maxConnectionsPerClient: 1 } }] }, 4, undefined);
  assert.equal(tiny.listeners[0]!.limits.maxConnectionsPerClient, 1, 'never nothing: a limit below the worker count admits one per worker');
});
