import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Metrics } from '../../src/observability/metrics.js';
import { TalliedHistogram } from '../../src/observability/tally.js';
import { sample } from '../support/metrics-text.js';


const op = fc.oneof(
  fc.record({ kind: fc.constant('reply' as const), code: fc.constantFrom(220, 250, 354, 421, 451, 550) }),
  fc.record({ kind: fc.constant('verdict' as const), action: fc.constantFrom('accept' as const, 'reject' as const), rule: fc.constantFrom(undefined, 'BL1', '192.0.2.7', 'a@b.example') }),
  fc.record({ kind: fc.constant('dnsbl' as const), zone: fc.constantFrom('bl1.test', 'bl2.test'), cached: fc.boolean() }),
  fc.constant({ kind: 'scrape' as const }),
);

test('counted increments are exported exactly, however the scrapes fall between them (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
      const metrics = new Metrics();
      const expected = { '2xx': 0, '5xx': 0, reject: 0, redacted: 0, cachedBl1: 0 };
      for (const o of ops) {
        if (o.kind === 'scrape') await metrics.registry.metrics();
        else if (o.kind === 'reply') {
          metrics.reply(o.code);
          if (o.code < 300) expected['2xx'] += 1;
          if (o.code >= 500) expected['5xx'] += 1;
        } else if (o.kind === 'verdict') {
          metrics.verdict({ step: 9, check: 'DNSBL rules', action: o.action, ...(o.rule ? { rule: o.rule } : {}) });
          if (o.action === 'reject') expected.reject += 1;
          if (o.rule === '192.0.2.7' || o.rule === 'a@b.example') expected.redacted += 1;
        } else {
          metrics.dnsblLookup(o.zone, 'not-listed', 0.0001, o.cached);
          if (o.zone === 'bl1.test' && o.cached) expected.cachedBl1 += 1;
        }
      }
      for (let twice = 0; twice < 2; twice++) {
        const text = await metrics.registry.metrics();
        assert.equal(sample(text, 'portcullis_replies_total', { class: '2xx' }), expected['2xx']);
        assert.equal(sample(text, 'portcullis_replies_total', { class: '5xx' }), expected['5xx']);
        assert.equal(sample(text, 'portcullis_verdicts_total', { action: 'reject' }), expected.reject);
        assert.equal(sample(text, 'portcullis_verdicts_total', { rule: 'list-entry' }), expected.redacted);
        assert.equal(sample(text, 'portcullis_dnsbl_lookups_total', { zone: 'bl1.test', cached: 'true' }), expected.cachedBl1);
      }
    }),
    { numRuns: 100 },
  );
});

test("workers' counts reach the group's aggregation: each report carries what was counted since start", async () => {
  const workers = [new Metrics(), new Metrics()];
  for (const [i, m] of workers.entries()) for (let n = 0; n <= i; n++) m.reply(250);
  const first = await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()));
  assert.equal(sample(await AggregatorRegistry.aggregate(first).metrics(), 'portcullis_replies_total', { class: '2xx' }), 3);
  workers[0]?.reply(250);
  const second = await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()));
  assert.equal(sample(await AggregatorRegistry.aggregate(second).metrics(), 'portcullis_replies_total', { class: '2xx' }), 4);
});

const observation = fc.oneof(
  fc.record({
    kind: fc.constant('observe' as const),
    zone: fc.constantFrom('bl1.test', 'bl2.test'),
    cached: fc.boolean(),
    // Bucket bounds themselves, values between and beyond them, and sums that do not add up exactly in binary.
    seconds: fc.oneof(fc.constantFrom(0, 0.0005, 0.001, 0.1, 5, 7.5, 1e6), fc.double({ min: 0, max: 10, noNaN: true })),
  }),
  fc.constant({ kind: 'scrape' as const }),
);

test('a tallied histogram, found by key or by path, reads exactly as prom-client\'s Histogram fed the same observations, as text and as a worker\'s JSON (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(observation, { maxLength: 40 }), async (ops) => {
      const config = { name: 'x_lookup_seconds', help: 'Time to answer.', labelNames: ['zone', 'cached'] as const, buckets: [0.0005, 0.001, 0.01, 0.1, 1, 5] };
      const theirs = new Registry();
      const ours = new Registry();
      const reference = new Histogram({ ...config, labelNames: [...config.labelNames], registers: [theirs] });
      const tallied = new TalliedHistogram({ ...config, registers: [ours] });
      const byPath = new Registry();
      const pathed = new TalliedHistogram({ ...config, registers: [byPath] });
      const path: [string, boolean] = ['', false];
      const pathLabels = (p: readonly unknown[]) => ({ zone: p[0] as string, cached: String(p[1]) });
      for (const o of ops) {
        if (o.kind === 'scrape') {
          assert.equal(await ours.metrics(), await theirs.metrics());
          assert.equal(await byPath.metrics(), await theirs.metrics());
          continue;
        }
        const labels = { zone: o.zone, cached: String(o.cached) };
        reference.observe(labels, o.seconds);
        tallied.observe(`${o.zone}\0${o.cached}`, () => labels, o.seconds);
        path[0] = o.zone;
        path[1] = o.cached;
        pathed.observeAt(path, pathLabels, o.seconds);
      }
      for (const registry of [ours, byPath]) {
        assert.equal(await registry.metrics(), await theirs.metrics());
        assert.deepEqual(await registry.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
        assert.equal(await AggregatorRegistry.aggregate([await registry.getMetricsAsJSON()]).metrics(), await AggregatorRegistry.aggregate([await theirs.getMetricsAsJSON()]).metrics());
      }
    }),
    { numRuns: 100 },
  );
});

const connectionEvent = fc.oneof(
  fc.record({ kind: fc.constantFrom('opened' as const, 'closed' as const), listener: fc.constantFrom('public', 'submission', '192.0.2.7', 'a@b.example') }),
  fc.constant({ kind: 'scrape' as const }),
);

/** The lines of `text` that belong to the metric `name` (its HELP, TYPE and samples). */
function section(text: string, name: string): string {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `) || l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `))
    .join('\n');
}

test('sessions and open connections read exactly as prom-client\'s Counter and Gauge moved per event, as text and through the group\'s aggregation (property)', async () => {
  const names = ['portcullis_sessions_total', 'portcullis_open_connections'];
  await fc.assert(
    fc.asyncProperty(fc.array(connectionEvent, { maxLength: 40 }), async (ops) => {
      const ours = new Metrics();
      const theirs = new Registry();
      const help = (name: string): string => (ours.registry.getSingleMetric(name) as unknown as { help: string }).help;
      const sessions = new Counter({ name: names[0] as string, help: help(names[0] as string), labelNames: ['listener'], registers: [theirs] });
      const open = new Gauge({ name: names[1] as string, help: help(names[1] as string), labelNames: ['listener'], registers: [theirs] });
      const same = async (): Promise<void> => {
        const [a, b] = [await ours.registry.metrics(), await theirs.metrics()];
        for (const name of names) assert.equal(section(a, name), section(b, name));
        const [ja, jb] = [await ours.registry.getMetricsAsJSON(), await theirs.getMetricsAsJSON()];
        const [ga, gb] = [await AggregatorRegistry.aggregate([ja]).metrics(), await AggregatorRegistry.aggregate([jb]).metrics()];
        for (const name of names) assert.equal(section(ga, name), section(gb, name));
      };
      for (const o of ops) {
        if (o.kind === 'scrape') {
          await same();
          continue;
        }
        const listener = o.listener.includes('.') ? 'list-entry' : o.listener;
        if (o.kind === 'opened') {
          ours.sessionOpened(o.listener);
          sessions.inc({ listener });
          open.inc({ listener });
        } else {
          ours.sessionClosed(o.listener);
          open.dec({ listener });
        }
      }
      await same();
    }),
    { numRuns: 200 },
  );
});
