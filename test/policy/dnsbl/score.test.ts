/**
 * Step 9's scoring mode in the policy: the score as a sum that cannot depend on the order of the
 * lists (property), the lookups running in parallel under one deadline, and `allowlisted`, the one
 * flag later checks (greylisting) read to skip an allowlisted client, against a real DNS server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { RulesSchema, type DnsblScoreListConfig, type Rules } from '../../../src/config/schema.js';
import type { DnsblAnswer } from '../../../src/dns/dnsbl-answer.js';
import type { ZoneHealth } from '../../../src/dns/zone-health.js';
import { evaluateScore, scoreList, totalScore } from '../../../src/policy/dnsbl/score.js';
import { PolicyEngine } from '../../../src/policy/policy-engine.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { realDnsbl } from '../../support/dnsbl.js';

const CODES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.10', '127.0.1.2'];

const weight = fc.integer({ min: -20, max: 20 }).filter((w) => w !== 0);
const listArb = fc.oneof(
  fc.record({
    weight,
    match: fc.constantFrom<DnsblScoreListConfig['match']>('any', { mask: '0.0.0.2' }, { maskAny: '0.0.0.6' }, { codes: ['127.0.0.4'] }),
  }),
  fc.record({ weights: fc.dictionary(fc.constantFrom(...CODES), weight, { minKeys: 1 }) }),
);
const answerArb = fc.oneof(
  fc.record({ status: fc.constant<'listed'>('listed'), codes: fc.uniqueArray(fc.constantFrom(...CODES), { minLength: 1 }) }),
  fc.record({ status: fc.constantFrom<'not-listed' | 'error' | 'timeout'>('not-listed', 'error', 'timeout'), codes: fc.constant<string[]>([]) }),
);
/** Lists on their own zones, each with an answer and whether its zone is healthy; and an order to write them in. */
const caseArb = fc
  .array(fc.tuple(listArb, answerArb, fc.boolean()), { minLength: 1, maxLength: 8 })
  .chain((cases) => fc.tuple(fc.constant(cases), fc.shuffledSubarray([...cases.keys()], { minLength: cases.length, maxLength: cases.length })));

function materialise(cases: [Partial<DnsblScoreListConfig>, { status: DnsblAnswer['status']; codes: string[] }, boolean][]) {
  const lists: DnsblScoreListConfig[] = cases.map(([l], i) => ({ ...l, name: `L${i}`, zone: `z${i}.test` }));
  const answers = new Map<string, DnsblAnswer>(
    cases.map(([, a], i) => [`z${i}.test`, { status: a.status, codes: a.codes, errorCodes: [], queryName: `q.z${i}.test`, cached: false }]),
  );
  const sick = new Set(cases.flatMap(([, , healthy], i) => (healthy ? [] : [`z${i}.test`])));
  const health: ZoneHealth = { isEnforced: (z) => !sick.has(z) };
  return { lists, answers, health };
}

const pending = (answers: Map<string, DnsblAnswer>): Map<string, Promise<DnsblAnswer>> =>
  new Map([...answers].map(([z, a]) => [z, Promise.resolve(a)]));

test('property: the score is the sum of the contributions, whatever the order of the lists', async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, fc.integer({ min: 1, max: 30 }), async ([cases, order], threshold) => {
      const { lists, answers, health } = materialise(cases);
      const contributions = lists.map((l) => scoreList(l, answers.get(l.zone) as DnsblAnswer, health.isEnforced(l.zone), '192.0.2.1'));
      const expected = contributions.reduce((s, c) => s + c.points, 0);
      // Each contribution is the list's own: nothing from an unhealthy zone or a failed lookup.
      contributions.forEach((c, i) => {
        const a = answers.get(lists[i]!.zone)!;
        if (a.status !== 'listed' || !health.isEnforced(lists[i]!.zone)) assert.equal(c.points, 0);
      });
      const shuffled = order.map((i) => lists[i] as DnsblScoreListConfig);
      for (const written of [lists, shuffled, [...lists].reverse()]) {
        const outcome = await evaluateScore({ threshold, lists: written, allowThreshold: -1 }, pending(answers), health, '192.0.2.1');
        assert.equal(outcome.score?.total, expected);
        assert.equal(totalScore(outcome.score?.contributions ?? []), expected);
        assert.equal(outcome.decisive !== undefined, expected >= threshold);
        assert.equal(outcome.allowed !== undefined, expected <= -1);
      }
    }),
    { numRuns: 200 },
  );
});

test('weights per code: each code of the answer found there adds its weight; codes without one add nothing', () => {
  const list: DnsblScoreListConfig = { name: 'Z', zone: 'z.test', weights: { '127.0.0.2': 3, '127.0.0.4': 1 } };
  const answer: DnsblAnswer = { status: 'listed', codes: ['127.0.0.4', '127.0.0.2', '127.0.0.9'], errorCodes: [], queryName: 'q', cached: false };
  const c = scoreList(list, answer, true, '192.0.2.1');
  assert.equal(c.points, 4);
  assert.deepEqual(c.matchedCodes, ['127.0.0.4', '127.0.0.2']);
  assert.match(c.outcome, /127\.0\.0\.4 \+1, 127\.0\.0\.2 \+3 \(q\): \+4/);
});

const CLIENT = '192.0.2.66';
const WELCOME = '192.0.2.77';
const q = (ip: string, zone: string): string => `${ip.split('.').reverse().join('.')}.${zone}`;

function rules(connectionFilter: Record<string, unknown>, timeoutMs = 1000): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'internet', listen: '127.0.0.1:0' },
      { name: 'nofilter', listen: '127.0.0.1:0', filters: { connection: false } },
    ],
    connectionFilter,
    dns: { timeoutMs },
  });
}

describe('SessionPolicy with scoring lists and allowlists (real DNS)', () => {
  let dns: TestDnsServer;
  const healthy: ZoneHealth = { isEnforced: () => true };
  const engine = (r: Rules): PolicyEngine => new PolicyEngine(r, realDnsbl(r, dns.address, healthy));

  before(async () => {
    dns = await startDnsServer({
      records: {
        [q(CLIENT, 'bl.test')]: { A: ['127.0.0.2'] },
        [q(WELCOME, 'bl.test')]: { A: ['127.0.0.2'] },
        [q(WELCOME, 'wl.test')]: { A: ['127.0.10.3'] },
        ...Object.fromEntries([1, 2, 3, 4].map((i) => [q(CLIENT, `slow${i}.test`), { A: ['127.0.0.2'], mode: 'blackhole' as const }])),
      },
    });
  });
  after(() => dns.close());

  const scoring = { threshold: 5, allowThreshold: -3, lists: [{ name: 'Block', zone: 'bl.test', weight: 2 }, { name: 'Welcome', zone: 'wl.test', weight: -6 }] };

  test('allowlisted: a score at or below allowThreshold, once step 9 has run; a middling score is not', async () => {
    const e = engine(rules({ scoring }));
    const welcome = e.session('internet', WELCOME);
    welcome.connect();
    welcome.mailFrom('a@example.org');
    assert.equal(welcome.allowlisted, false, 'nothing known before step 9');
    assert.equal((await welcome.rcptTo('x@example.test')).code, 250);
    assert.equal(welcome.allowlisted, true);
    assert.ok(welcome.trace.some((t) => t.check === 'DNSBL score' && /total -4 .*allowlisted/.test(t.outcome)));

    const middling = e.session('internet', CLIENT);
    middling.connect();
    middling.mailFrom('a@example.org');
    await middling.rcptTo('x@example.test');
    assert.equal(middling.allowlisted, false);
  });

  test('allowlisted: the accept list at once; an allow rule in first-match mode; never with connection filtering off', async () => {
    const accepted = engine(rules({ accept: [CLIENT], scoring })).session('internet', CLIENT);
    accepted.connect();
    assert.equal(accepted.allowlisted, true);

    const firstMatch = engine(rules({ rules: [{ name: 'Welcome', zone: 'wl.test', allow: true }, { name: 'Block', zone: 'bl.test' }] }));
    const welcome = firstMatch.session('internet', WELCOME);
    welcome.connect();
    welcome.mailFrom('a@example.org');
    assert.equal((await welcome.rcptTo('x@example.test')).code, 250);
    assert.equal(welcome.allowlisted, true);
    assert.ok(!welcome.trace.some((t) => t.rule === 'Block'), 'the block rule was never judged');

    const off = engine(rules({ accept: [CLIENT], scoring })).session('nofilter', CLIENT);
    off.connect();
    assert.equal(off.allowlisted, false);
  });

  test('the lookups run in parallel under the one deadline: four silent lists cost one time-out, not four', async () => {
    const lists = [1, 2, 3, 4].map((i) => ({ name: `Slow ${i}`, zone: `slow${i}.test`, weight: 2 }));
    const s = engine(rules({ scoring: { threshold: 1, lists } }, 300)).session('internet', CLIENT);
    const t0 = performance.now();
    s.connect();
    s.mailFrom('a@example.org');
    assert.equal((await s.rcptTo('x@example.test')).code, 250, 'failed lookups contribute nothing');
    const ms = performance.now() - t0;
    assert.ok(ms < 1100, `took ${ms} ms; four sequential time-outs take at least 1200`);
    assert.equal(s.trace.filter((t) => /lookup timeout/.test(t.outcome)).length, 4);
  });
});
