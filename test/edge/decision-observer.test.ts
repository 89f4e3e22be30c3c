import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordDecision, type DecisionPlace } from '../../src/edge/decision-observer.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { STEPS } from '../../src/policy/steps.js';
import { verdict } from '../../src/policy/verdict.js';
import { sample } from '../support/metrics-text.js';

function capture(level: 'info' | 'warn'): { lines: Record<string, unknown>[]; logger: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { lines, logger };
}

const rejected = verdict('reject', 550, '5.7.1', 'Blocked by BL1', STEPS.dnsbl, 'BL1');
const place = (): DecisionPlace => ({ session: 'S1', client: '192.0.2.9', listener: 'public', address: 'user@example.test' });

test('a decision at level info: counted once and logged once, with where it was taken', async () => {
  const { lines, logger } = capture('info');
  const metrics = new Metrics();
  recordDecision({ logger, metrics }, rejected, place);
  assert.equal(lines.length, 1);
  assert.deepEqual(
    { event: lines[0]?.event, session: lines[0]?.session, client: lines[0]?.client, listener: lines[0]?.listener, step: lines[0]?.step, rule: lines[0]?.rule, reply: lines[0]?.reply, action: lines[0]?.action, address: lines[0]?.address },
    { event: 'decision', session: 'S1', client: '192.0.2.9', listener: 'public', step: STEPS.dnsbl.step, rule: 'BL1', reply: '550 5.7.1 Blocked by BL1', action: 'reject', address: 'user@example.test' },
  );
  assert.equal(sample(await metrics.registry.metrics(), 'portcullis_verdicts_total', { rule: 'BL1', action: 'reject' }), 1);
});

test('a decision below level info: still counted, but its log record is never built', async () => {
  const { lines, logger } = capture('warn');
  const metrics = new Metrics();
  let asked = 0;
  recordDecision({ logger, metrics }, rejected, () => {
    asked += 1;
    return place();
  });
  assert.equal(lines.length, 0);
  assert.equal(asked, 0);
  assert.equal(sample(await metrics.registry.metrics(), 'portcullis_verdicts_total', { rule: 'BL1', action: 'reject' }), 1);
});
