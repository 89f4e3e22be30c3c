import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { CachedDnsblLookup, type DnsblOutcomeKind } from '../../src/dns/dnsbl-lookup.js';
import type { Clock } from '../../src/runtime/clock.js';
import { refusedPort, startDnsServer, type TestDnsServer } from '../support/dns-server.js';

class ManualClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const ZONE = 'bl.test';
const records = {
  // 192.0.2.66: listed twice, with a TXT
  '66.2.0.192.bl.test': { A: ['127.0.0.2', '127.0.0.4'], TXT: ['Listed for spam, see https://bl.test/?192.0.2.66'], ttl: 60 },
  // 192.0.2.67: listed with operator error codes mixed in
  '67.2.0.192.bl.test': { A: ['127.0.0.3', '127.255.255.254', '10.0.0.1'], ttl: 60 },
  // 192.0.2.68: only error codes
  '68.2.0.192.bl.test': { A: ['127.255.255.254'], ttl: 60 },
  '69.2.0.192.bl.test': { A: ['127.0.1.255', '10.0.0.1'], ttl: 60 },
  // 192.0.2.70: the name exists, but only a TXT (NODATA for A)
  '70.2.0.192.bl.test': { TXT: ['orphan'], ttl: 60 },
  // 2001:db8::1
  '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test': { A: ['127.0.0.10'], ttl: 60 },
  '71.2.0.192.bl.test': { A: ['127.0.0.2'], ttl: 60, delayMs: 150 },
  '72.2.0.192.bl.test': { mode: 'servfail' as const },
  '73.2.0.192.bl.test': { mode: 'blackhole' as const },
};

describe('CachedDnsblLookup against a real loopback DNS server', () => {
  let server: TestDnsServer;
  before(async () => {
    server = await startDnsServer({ records, soa: { ttl: 300, minimum: 30 } });
  });
  after(() => server.close());

  const make = (clock = new ManualClock(), extra: { timeoutMs?: number; errorTtlSec?: number } = {}) => {
    const calls: [string, DnsblOutcomeKind, boolean][] = [];
    const lookup = new CachedDnsblLookup({
      client: new DnsClient({ servers: [server.address], timeoutMs: extra.timeoutMs ?? 1000 }),
      cacheSize: 100,
      clock,
      onLookup: (zone, outcome, seconds, cached) => {
        assert.ok(seconds >= 0);
        calls.push([zone, outcome, cached]);
      },
      ...(extra.errorTtlSec !== undefined ? { errorTtlSec: extra.errorTtlSec } : {}),
    });
    return { lookup, clock, calls };
  };

  it('listed: every listing code, and the TXT', async () => {
    const { lookup, calls } = make();
    const a = await lookup.lookup(ZONE, '192.0.2.66');
    assert.deepEqual(a, {
      status: 'listed',
      queryName: '66.2.0.192.bl.test',
      codes: ['127.0.0.2', '127.0.0.4'],
      errorCodes: [],
      txt: 'Listed for spam, see https://bl.test/?192.0.2.66',
      cached: false,
      ttlSec: 60,
    });
    assert.deepEqual(calls, [[ZONE, 'listed', false]]);
  });

  it('a cached answer carries what is left of its TTL (the decision records keep it)', async () => {
    const clock = new ManualClock();
    const { lookup } = make(clock);
    await lookup.lookup(ZONE, '192.0.2.66');
    clock.advance(20_000);
    const again = await lookup.lookup(ZONE, '192.0.2.66');
    assert.deepEqual([again.cached, again.ttlSec], [true, 40]);
  });

  it('a cached answer is the fresh one, key for key in the same order, but for cached and the TTL left (records write it out)', async () => {
    const { lookup, clock } = make();
    for (const ip of ['192.0.2.66', '192.0.2.3', '192.0.2.72']) {
      const fresh = await lookup.lookup(ZONE, ip);
      clock.advance(1500);
      const hit = await lookup.lookup(ZONE, ip);
      assert.equal(hit.cached, true, ip);
      assert.equal(JSON.stringify(hit), JSON.stringify({ ...fresh, cached: true, ttlSec: hit.ttlSec }), ip);
      assert.equal(hit.ttlSec, (fresh.ttlSec ?? 0) - 1, ip);
    }
  });

  it('not listed (NXDOMAIN)', async () => {
    const { lookup } = make();
    const a = await lookup.lookup(ZONE, '192.0.2.1');
    assert.deepEqual(a, { status: 'not-listed', queryName: '1.2.0.192.bl.test', codes: [], errorCodes: [], cached: false, ttlSec: 30 });
  });

  it('NODATA (name exists, no A record) is not listed, and no TXT is asked', async () => {
    const { lookup } = make();
    const before = server.questions.length;
    const a = await lookup.lookup(ZONE, '192.0.2.70');
    assert.equal(a.status, 'not-listed');
    assert.deepEqual(server.questions.slice(before).map((q) => q.type), ['A']);
  });

  it('keeps error codes apart from listing codes', async () => {
    const { lookup } = make();
    const a = await lookup.lookup(ZONE, '192.0.2.67');
    assert.equal(a.status, 'listed');
    assert.deepEqual(a.codes, ['127.0.0.3']);
    assert.deepEqual(a.errorCodes, ['127.255.255.254', '10.0.0.1']);
    assert.equal(a.txt, undefined);
  });

  it('an answer of error codes only is an error, never a listing', async () => {
    const { lookup, calls } = make();
    const a = await lookup.lookup(ZONE, '192.0.2.68');
    assert.equal(a.status, 'error');
    assert.deepEqual(a.errorCodes, ['127.255.255.254']);
    assert.match(a.detail ?? '', /error codes only/);
    const b = await lookup.lookup(ZONE, '192.0.2.69');
    assert.equal(b.status, 'error');
    assert.deepEqual(b.errorCodes, ['127.0.1.255', '10.0.0.1']);
    assert.deepEqual(calls.map((c) => c[1]), ['error', 'error']);
  });

  it('IPv6 and IPv4-mapped addresses', async () => {
    const { lookup } = make();
    const a = await lookup.lookup(ZONE, '2001:db8::1');
    assert.equal(a.status, 'listed');
    assert.deepEqual(a.codes, ['127.0.0.10']);
    const b = await lookup.lookup(ZONE, '::ffff:192.0.2.66');
    assert.equal(b.queryName, '66.2.0.192.bl.test');
    assert.equal(b.status, 'listed');
  });

  it('SERVFAIL is an error', async () => {
    const { lookup } = make();
    const a = await lookup.lookup(ZONE, '192.0.2.72');
    assert.equal(a.status, 'error');
    assert.match(a.detail ?? '', /SERVFAIL/);
  });

  it('a server that never answers: timeout at the deadline', async () => {
    const { lookup, calls } = make(new ManualClock(), { timeoutMs: 300 });
    const t0 = performance.now();
    const a = await lookup.lookup(ZONE, '192.0.2.73');
    const elapsed = performance.now() - t0;
    assert.equal(a.status, 'timeout');
    // Not cut short; bounded (no hang), with room for a loaded machine.
    assert.ok(elapsed >= 300 - 50 && elapsed < 300 + 1000, `elapsed ${elapsed}`);
    assert.deepEqual(calls, [[ZONE, 'timeout', false]]);
  });

  it('a refused port fails fast as an error', async () => {
    const port = await refusedPort();
    const lookup = new CachedDnsblLookup({ client: new DnsClient({ servers: [`127.0.0.1:${port}`], timeoutMs: 10_000 }), cacheSize: 10 });
    const t0 = performance.now();
    const a = await lookup.lookup(ZONE, '192.0.2.66');
    assert.equal(a.status, 'error');
    assert.match(a.detail ?? '', /ECONNREFUSED/);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 3000, `did not wait for the 10 s deadline: elapsed ${elapsed}`);
  });

  it('honours the TTL: a hit within it, a fresh query after it', async () => {
    const { lookup, clock, calls } = make();
    const asked = () => server.queries.filter((q) => q === '66.2.0.192.bl.test').length;
    const before = asked();
    await lookup.lookup(ZONE, '192.0.2.66');
    assert.equal(asked() - before, 2, 'A and TXT');
    clock.advance(59_000);
    const hit = await lookup.lookup(ZONE, '192.0.2.66');
    assert.equal(hit.cached, true);
    assert.equal(hit.txt, 'Listed for spam, see https://bl.test/?192.0.2.66');
    assert.equal(asked() - before, 2);
    clock.advance(1_000);
    const miss = await lookup.lookup(ZONE, '192.0.2.66');
    assert.equal(miss.cached, false);
    assert.equal(asked() - before, 4);
    assert.deepEqual(calls.map((c) => c[2]), [false, true, false]);
  });

  it('gives a cached answer as itself, in the same turn; an expired one is a promise, asked again', async () => {
    const { lookup, clock, calls } = make();
    const asked = () => server.queries.filter((q) => q === '2.2.0.192.bl.test').length;
    const before = asked();
    const first = lookup.lookup(ZONE, '192.0.2.2');
    assert.ok(first instanceof Promise, 'the first lookup asks the zone');
    assert.equal((await first).cached, false);
    clock.advance(29_999);
    const hit = lookup.lookup(ZONE, '192.0.2.2');
    assert.ok(!(hit instanceof Promise), 'a cached answer needs no promise');
    assert.deepEqual(hit, { status: 'not-listed', queryName: '2.2.0.192.bl.test', codes: [], errorCodes: [], ttlSec: 1, cached: true });
    assert.equal(asked() - before, 1);
    clock.advance(1);
    const expired = lookup.lookup(ZONE, '192.0.2.2');
    assert.ok(expired instanceof Promise, 'an expired answer is asked again');
    assert.equal((await expired).cached, false);
    assert.equal(asked() - before, 2);
    assert.deepEqual(calls.map((c) => c[2]), [false, true, false], 'each lookup counted once, as it came');
  });

  it('honours the negative TTL (min of SOA TTL and MINIMUM = 30 s)', async () => {
    const { lookup, clock } = make();
    const asked = () => server.queries.filter((q) => q === '2.2.0.192.bl.test').length;
    const before = asked();
    await lookup.lookup(ZONE, '192.0.2.2');
    clock.advance(29_999);
    assert.equal((await lookup.lookup(ZONE, '192.0.2.2')).cached, true);
    assert.equal(asked() - before, 1);
    clock.advance(1);
    assert.equal((await lookup.lookup(ZONE, '192.0.2.2')).cached, false);
    assert.equal(asked() - before, 2);
  });

  it('remembers a failure only briefly (errorTtlSec)', async () => {
    const { lookup, clock } = make(new ManualClock(), { errorTtlSec: 5 });
    const asked = () => server.queries.filter((q) => q === '72.2.0.192.bl.test').length;
    const before = asked();
    await lookup.lookup(ZONE, '192.0.2.72');
    clock.advance(4_000);
    const again = await lookup.lookup(ZONE, '192.0.2.72');
    assert.equal(again.cached, true);
    assert.equal(again.status, 'error');
    clock.advance(1_000);
    assert.equal((await lookup.lookup(ZONE, '192.0.2.72')).cached, false);
    assert.equal(asked() - before, 2);
  });

  it('errorTtlSec 0 caches no failure at all', async () => {
    const { lookup } = make(new ManualClock(), { errorTtlSec: 0 });
    const asked = () => server.queries.filter((q) => q === '72.2.0.192.bl.test').length;
    const before = asked();
    await lookup.lookup(ZONE, '192.0.2.72');
    await lookup.lookup(ZONE, '192.0.2.72');
    assert.equal(asked() - before, 2);
  });

  it('shares one in-flight query between concurrent lookups', async () => {
    const { lookup } = make();
    const asked = () => server.questions.filter((q) => q.name === '71.2.0.192.bl.test' && q.type === 'A').length;
    const before = asked();
    const [a, b] = await Promise.all([lookup.lookup(ZONE, '192.0.2.71'), lookup.lookup(ZONE, '::ffff:192.0.2.71')]);
    assert.equal(asked() - before, 1, 'one query on the wire');
    assert.equal(a.status, 'listed');
    assert.deepEqual(a, b);
  });

  it('keeps zones apart in the cache', async () => {
    const { lookup } = make();
    await lookup.lookup(ZONE, '192.0.2.66');
    const other = await lookup.lookup('other.test', '192.0.2.66');
    assert.equal(other.cached, false);
    assert.equal(other.status, 'not-listed');
  });

  it('evicts the least recently used entry beyond cacheSize', async () => {
    const clock = new ManualClock();
    const lookup = new CachedDnsblLookup({ client: new DnsClient({ servers: [server.address], timeoutMs: 1000 }), cacheSize: 2, clock });
    await lookup.lookup(ZONE, '192.0.2.10');
    await lookup.lookup(ZONE, '192.0.2.11');
    await lookup.lookup(ZONE, '192.0.2.12');
    assert.equal((await lookup.lookup(ZONE, '192.0.2.12')).cached, true);
    assert.equal((await lookup.lookup(ZONE, '192.0.2.10')).cached, false);
  });

  it('an invalid address is an error answer, not an exception', async () => {
    const { lookup } = make();
    const a = await lookup.lookup(ZONE, 'not-an-ip');
    assert.equal(a.status, 'error');
    assert.match(a.detail ?? '', /not an IP address/);
  });
});
