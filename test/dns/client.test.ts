import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DnsClient, DnsError, parseServer } from '../../src/dns/client.js';
import { refusedPort, startDnsServer, type TestDnsServer } from '../support/dns-server.js';

describe('DnsClient against a real loopback DNS server', () => {
  let server: TestDnsServer;
  before(async () => {
    server = await startDnsServer({
      ipv6: true,
      ttl: 120,
      soa: { ttl: 900, minimum: 45 },
      records: {
        '2.0.0.127.bl.test': { A: ['127.0.0.2', '127.0.0.4'], TXT: ['listed: see https://bl.test/'], ttl: 30 },
        'mail.test': { MX: [{ exchange: 'mx1.mail.test', preference: 10 }], A: ['127.0.0.9'] },
        'big.test': { A: ['127.0.0.2'], truncate: true },
        'broken.test': { mode: 'servfail' },
        'slow.test': { A: ['127.0.0.3'], delayMs: 300 },
        'slower.test': { A: ['127.0.0.3'], delayMs: 900 },
      },
    });
  });
  after(() => server.close());

  it('returns A records with their TTLs', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const r = await client.query('2.0.0.127.bl.test', 'A');
    assert.equal(r.rcode, 'NOERROR');
    assert.deepEqual(
      r.answers.map((a) => [a.type, a.data, a.ttl]),
      [
        ['A', '127.0.0.2', 30],
        ['A', '127.0.0.4', 30],
      ],
    );
    assert.equal(r.server, server.address);
  });

  it('returns TXT text and MX data', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const txt = await client.query('2.0.0.127.bl.test', 'TXT');
    assert.deepEqual(txt.answers.map((a) => a.data), ['listed: see https://bl.test/']);
    const mx = await client.query('mail.test', 'MX');
    assert.deepEqual(mx.answers.map((a) => a.data), [{ exchange: 'mx1.mail.test', preference: 10 }]);
  });

  it('reports NXDOMAIN with the RFC 2308 negative TTL (min of SOA TTL and MINIMUM)', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const r = await client.query('1.0.0.127.bl.test', 'A');
    assert.equal(r.rcode, 'NXDOMAIN');
    assert.deepEqual(r.answers, []);
    assert.equal(r.negativeTtl, 45);
  });

  it('reports NODATA as NOERROR with no answers and a negative TTL', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const r = await client.query('mail.test', 'AAAA');
    assert.equal(r.rcode, 'NOERROR');
    assert.deepEqual(r.answers, []);
    assert.equal(r.negativeTtl, 45);
  });

  it('talks to an IPv6 loopback server', async () => {
    assert.ok(server.address6);
    const client = new DnsClient({ servers: [server.address6], timeoutMs: 1000 });
    const r = await client.query('mail.test', 'A');
    assert.deepEqual(r.answers.map((a) => a.data), ['127.0.0.9']);
  });

  it('returns SERVFAIL from the only server as a response', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const r = await client.query('broken.test', 'A');
    assert.equal(r.rcode, 'SERVFAIL');
  });

  it('treats a truncated answer as an error', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    await assert.rejects(client.query('big.test', 'A'), (e: unknown) => e instanceof DnsError && e.kind === 'truncated');
  });

  it('holds the deadline against a server that never answers', async () => {
    const dead = await startDnsServer({ mode: 'blackhole' });
    try {
      const client = new DnsClient({ servers: [dead.address], timeoutMs: 400 });
      const t0 = performance.now();
      await assert.rejects(client.query('x.bl.test', 'A'), (e: unknown) => e instanceof DnsError && e.kind === 'timeout');
      const elapsed = performance.now() - t0;
      // Not cut short; bounded (no hang), with room for a loaded machine.
      assert.ok(elapsed >= 400 - 50 && elapsed < 400 + 1000, `elapsed ${elapsed} ms`);
      assert.deepEqual(dead.queries, ['x.bl.test'], 'exactly one try on the wire');
    } finally {
      await dead.close();
    }
  });

  it('sets its deadline and the wait before the next server through the timers it is given: a test fires them, nobody sleeps', async () => {
    const dead = await startDnsServer({ mode: 'blackhole' });
    const waits: { ms: number; fire: () => void; cleared: boolean }[] = [];
    const timers = {
      setTimeout: (fire: () => void, ms: number) => {
        const w = { ms, fire, cleared: false };
        waits.push(w);
        return w;
      },
      clearTimeout: (w: unknown) => {
        if (w) (w as { cleared: boolean }).cleared = true;
      },
    };
    try {
      const client = new DnsClient({ servers: [dead.address, dead.address], timeoutMs: 3_600_000, timers });
      const t0 = performance.now();
      const answer = client.query('x.bl.test', 'A');
      assert.deepEqual(waits.map((w) => w.ms), [3_600_000, 1_800_000], 'the whole deadline, then half of it before the second server');
      (waits[0] as { fire: () => void }).fire();
      await assert.rejects(answer, (e: unknown) => e instanceof DnsError && e.kind === 'timeout');
      assert.ok(performance.now() - t0 < 2000, 'an hour-long deadline passed without waiting for it');
      assert.equal(waits[1]?.cleared, true, 'the wait for the second server ends with the query');
    } finally {
      await dead.close();
    }
  });

  it('fails fast on a refused port (ICMP port unreachable)', async () => {
    const port = await refusedPort();
    const client = new DnsClient({ servers: [`127.0.0.1:${port}`], timeoutMs: 10_000 });
    const t0 = performance.now();
    await assert.rejects(client.query('x.bl.test', 'A'), (e: unknown) => e instanceof DnsError && e.kind === 'unreachable');
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 3000, `did not wait for the deadline: elapsed ${elapsed} ms`);
  });

  it('moves on to the next server when the first is refused', async () => {
    const port = await refusedPort();
    // Each server's share is 5000 ms: only moving on at the refusal itself passes the bound below.
    const client = new DnsClient({ servers: [`127.0.0.1:${port}`, server.address], timeoutMs: 10_000 });
    const t0 = performance.now();
    const r = await client.query('mail.test', 'A');
    assert.deepEqual(r.answers.map((a) => a.data), ['127.0.0.9']);
    assert.equal(r.server, server.address);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 3000, `elapsed ${elapsed} ms`);
  });

  it('moves on to the next server when the first never answers, within one deadline', async () => {
    const dead = await startDnsServer({ mode: 'blackhole' });
    try {
      // Two servers: the second is started after the first one's share, 1000 ms.
      const client = new DnsClient({ servers: [dead.address, server.address], timeoutMs: 2000 });
      const t0 = performance.now();
      const r = await client.query('mail.test', 'A');
      const elapsed = performance.now() - t0;
      assert.equal(r.server, server.address);
      // Resolving at all proves it came within the deadline; the bound only rules out a hang.
      assert.ok(elapsed >= 1000 - 50 && elapsed < 2000 + 1000, `elapsed ${elapsed} ms`);
    } finally {
      await dead.close();
    }
  });

  it('never exceeds the deadline when every server is silent', async () => {
    const a = await startDnsServer({ mode: 'blackhole' });
    const b = await startDnsServer({ mode: 'blackhole' });
    try {
      const client = new DnsClient({ servers: [a.address, b.address], timeoutMs: 400 });
      const t0 = performance.now();
      await assert.rejects(client.query('x.test', 'A'), (e: unknown) => e instanceof DnsError && e.kind === 'timeout');
      const elapsed = performance.now() - t0;
      assert.ok(elapsed >= 400 - 50 && elapsed < 400 + 1000, `elapsed ${elapsed} ms`);
      assert.deepEqual([a.queries.length, b.queries.length], [1, 1]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('keeps listening to a slow first server after starting the next', async () => {
    const dead = await startDnsServer({ mode: 'blackhole' });
    try {
      // Shares of 750 ms: the second server is started at 750, the first answers at 900, the deadline is 1500.
      const client = new DnsClient({ servers: [server.address, dead.address], timeoutMs: 1500 });
      const r = await client.query('slower.test', 'A');
      assert.deepEqual(r.answers.map((a) => a.data), ['127.0.0.3']);
      assert.equal(r.server, server.address, 'the first server\'s late answer was taken');
      // The query to the second server was sent before the answer came; give it time to arrive.
      for (let i = 0; i < 100 && dead.queries.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(dead.queries.length, 1, 'the second server was tried after the first one\'s share');
    } finally {
      await dead.close();
    }
  });

  it('honours a tighter per-query timeout', async () => {
    const client = new DnsClient({ servers: [server.address], timeoutMs: 5000 });
    const t0 = performance.now();
    await assert.rejects(client.query('slow.test', 'A', { timeoutMs: 100 }), (e: unknown) => e instanceof DnsError && e.kind === 'timeout');
    const elapsed = performance.now() - t0;
    // Far below the client's own 5000 ms: the tighter time-out was used.
    assert.ok(elapsed >= 100 - 50 && elapsed < 100 + 1000, `elapsed ${elapsed} ms`);
  });

  it('uses a fresh random query id and source port per query', async () => {
    const ids = new Set<number>();
    const ports = new Set<number>();
    const spy = await startDnsServer({ records: { 'a.test': { A: ['127.0.0.1'] } } });
    try {
      const client = new DnsClient({ servers: [spy.address], timeoutMs: 1000 });
      for (let i = 0; i < 8; i++) {
        const r = await client.query('a.test', 'A');
        assert.equal(r.rcode, 'NOERROR');
      }
      for (const q of spy.questions) {
        ids.add(q.id);
        ports.add(q.port);
      }
      assert.ok(ids.size >= 7, `ids ${[...ids].join(',')}`);
      assert.ok(ports.size >= 7, `ports ${[...ports].join(',')}`);
    } finally {
      await spy.close();
    }
  });

  it('ignores an answer whose id does not match the query', async () => {
    const forger = await startDnsServer({ records: { 'f.test': { A: ['127.0.0.2'], spoof: true } } });
    try {
      const client = new DnsClient({ servers: [forger.address], timeoutMs: 1000 });
      const r = await client.query('f.test', 'A');
      assert.deepEqual(r.answers.map((a) => a.data), ['127.0.0.2']);
    } finally {
      await forger.close();
    }
  });

  it('rejects malformed server specs', () => {
    assert.throws(() => parseServer('localhost'), /bad DNS server/);
    assert.throws(() => parseServer('::1:53'), /bad DNS server/);
    assert.deepEqual(parseServer('[::1]:5353'), { label: '[::1]:5353', host: '::1', port: 5353, family: 'udp6' });
  });
});
