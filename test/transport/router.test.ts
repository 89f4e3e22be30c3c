import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { FORWARD_UNRESOLVED_CONNECTOR, Router } from '../../src/transport/router.js';

function rules(connectors: unknown[], directory: Record<string, unknown> = {}): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.com',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'edge', listen: '127.0.0.1:2525' }],
    directory,
    transport: { connectors },
  });
}

const connectors = [
  { name: 'internet', addressSpaces: ['*'], cost: 1 },
  { name: 'military', addressSpaces: ['*.mil'], cost: 5, smartHost: '127.0.0.1:2601' },
  { name: 'army-a', addressSpaces: ['army.mil'], cost: 3, smartHost: ['127.0.0.1:2602', '127.0.0.1:2603'] },
  { name: 'army-b', addressSpaces: ['army.mil'], cost: 2, smartHost: '127.0.0.1:2604' },
  { name: 'off', addressSpaces: ['navy.mil'], cost: 1, smartHost: '127.0.0.1:2605', enabled: false },
];

test('the most specific address space wins over a cheaper, broader one', () => {
  const router = new Router(rules(connectors));
  assert.deepEqual(router.route('unit.af.mil'), { kind: 'smarthost', connector: 'military', hosts: ['127.0.0.1:2601'] });
  assert.deepEqual(router.route('remote.test'), { kind: 'mx', connector: 'internet', domain: 'remote.test' });
});

test('equal specificity: the lowest cost wins', () => {
  const router = new Router(rules(connectors));
  assert.deepEqual(router.route('ARMY.mil.'), { kind: 'smarthost', connector: 'army-b', hosts: ['127.0.0.1:2604'] });
});

test('a disabled connector is passed over, and so is one marked down until its time passes', () => {
  let now = 1_000_000;
  const router = new Router(rules(connectors), { now: () => now });
  assert.equal(router.route('navy.mil').kind === 'smarthost' && (router.route('navy.mil') as { connector: string }).connector, 'military');
  router.markDown('army-b', now + 60_000);
  assert.deepEqual(router.route('army.mil'), { kind: 'smarthost', connector: 'army-a', hosts: ['127.0.0.1:2602', '127.0.0.1:2603'] });
  router.markDown('army-a', now + 60_000);
  assert.equal((router.route('army.mil') as { connector: string }).connector, 'military');
  now += 60_001;
  assert.equal((router.route('army.mil') as { connector: string }).connector, 'army-b');
});

test('every matching connector down: deferred 4.4.1 (destination currently unreachable)', () => {
  const router = new Router(rules([{ name: 'only', addressSpaces: ['remote.test'], smartHost: '127.0.0.1:2601' }]), { now: () => 5 });
  router.markDown('only', 10);
  const r = router.route('remote.test');
  assert.equal(r.kind, 'none');
  assert.equal(r.kind === 'none' && r.result.outcome, 'deferred');
  assert.equal(r.kind === 'none' && r.result.enhanced, '4.4.1');
  router.markUp('only');
  assert.equal(router.route('remote.test').kind, 'smarthost');
});

test('no connector matches: failed 5.4.4', () => {
  const router = new Router(rules([{ name: 'mil', addressSpaces: ['*.mil'], smartHost: '127.0.0.1:2601' }]));
  const r = router.route('remote.test');
  assert.equal(r.kind, 'none');
  assert.deepEqual(r.kind === 'none' && [r.result.outcome, r.result.code, r.result.enhanced], ['failed', 550, '5.4.4']);
});

test('no connectors at all: by MX', () => {
  assert.deepEqual(new Router(rules([])).route('remote.test'), { kind: 'mx', connector: null, domain: 'remote.test' });
});

test('a local domain goes to forwardUnresolvedTo when set', () => {
  const router = new Router(rules(connectors, { forwardUnresolvedTo: '127.0.0.1:2700' }));
  assert.deepEqual(router.route('example.com'), { kind: 'smarthost', connector: FORWARD_UNRESOLVED_CONNECTOR, hosts: ['127.0.0.1:2700'] });
});

test("a connector that failed is down until its own retry time (the schedule by its consecutive failures); backAt says when a domain's first route is back", () => {
  let now = 0;
  const router = new Router(rules([
    { name: 'primary', addressSpaces: ['*'], cost: 1, smartHost: '127.0.0.1:2601' },
    { name: 'backup', addressSpaces: ['*'], cost: 5, smartHost: '127.0.0.1:2602' },
  ]), { now: () => now });
  const MIN = 60_000;
  assert.equal(router.markFailed('primary'), 10 * MIN);
  assert.equal(router.markFailed('primary'), 10 * MIN, 'attempts under way when it went down add no failure');
  assert.equal((router.route('remote.test') as { connector: string }).connector, 'backup');
  assert.equal(router.backAt('remote.test'), undefined, 'a route is up');
  now = 10 * MIN;
  assert.equal((router.route('remote.test') as { connector: string }).connector, 'primary', 'back at its retry time');
  assert.equal(router.markFailed('primary'), 20 * MIN);
  now = 20 * MIN;
  assert.equal(router.markFailed('primary'), 30 * MIN);
  now = 30 * MIN;
  assert.equal(router.markFailed('primary'), 45 * MIN, 'then every 15 minutes');
  assert.equal(router.markFailed('backup'), 40 * MIN);
  assert.equal(router.route('remote.test').kind, 'none');
  assert.equal(router.backAt('remote.test'), 40 * MIN, 'the first of the routes to come back');
  router.markUp('primary');
  assert.equal((router.route('remote.test') as { connector: string }).connector, 'primary');
  assert.equal(router.markFailed('primary'), 40 * MIN, 'a connector that worked starts its schedule again');
});
