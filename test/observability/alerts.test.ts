/**
 * The alerting rules shipped in prometheus/alerts.yml: Prometheus's own promtool accepts them
 * (`check rules`), each alert fires on its condition and not on its look-alike (`test rules` with the
 * input series in prometheus/alerts.test.yml), and they query only metrics the process exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { parse } from 'yaml';
import { Metrics } from '../../src/observability/metrics.js';
import { run } from '../interop/peers.js';

const PROMTOOL = '/usr/bin/promtool';

interface RuleFile {
  groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
}
interface RuleTests {
  tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

test('promtool check rules accepts prometheus/alerts.yml', async () => {
  const res = await run(PROMTOOL, ['check', 'rules', 'prometheus/alerts.yml'], { timeoutMs: 30_000 });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert fires on its condition and stays quiet on its look-alike', async () => {
  const res = await run(PROMTOOL, ['test', 'rules', 'alerts.test.yml'], { cwd: 'prometheus', timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /SUCCESS/);
});

test('every alert has a firing and a quiet unit test, and queries only exported metrics', async () => {
  const rules = parse(await fs.readFile('prometheus/alerts.yml', 'utf8')) as RuleFile;
  const tests = parse(await fs.readFile('prometheus/alerts.test.yml', 'utf8')) as RuleTests;
  const cases = tests.tests.flatMap((t) => t.alert_rule_test);
  const exported = new Set(new Metrics({ processMetrics: true }).names());
  const alerts = rules.groups.flatMap((g) => g.rules);
  assert.ok(alerts.length >= 8);
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert);
    assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${a.alert} has no test in which it fires`);
    assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${a.alert} has no test in which it stays quiet`);
    for (const [name] of a.expr.matchAll(/\bportcullis_[a-z0-9_]+/g)) {
      assert.ok(exported.has(name), `${a.alert} queries ${name}, which the process does not export`);
    }
  }
});
