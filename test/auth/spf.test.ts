/**
 * SPF (RFC 7208) through the SenderAuth port, against the real test DNS server: the RFC's own
 * Appendix A zone and examples, the HELO identity for the blank sender, the lookup limits, temporary
 * errors under the deadline, and answers cached by TTL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CachedAuthResolver } from '../../src/auth/auth-resolver.js';
import { MailauthSenderAuth } from '../../src/auth/mailauth-sender-auth.js';
import { DnsClient } from '../../src/dns/client.js';
import { startDnsServer, type TestDnsServer, type TestRecords } from '../support/dns-server.js';
import { senderAuthOn } from '../support/sender-auth.js';

/** RFC 7208 Appendix A's zone file, with `example.com`'s SPF record left to each case. */
function appendixA(spf: string): Record<string, TestRecords> {
  return {
    'example.com': {
      MX: [
        { exchange: 'mail-a.example.com', preference: 10 },
        { exchange: 'mail-b.example.com', preference: 20 },
      ],
      A: ['192.0.2.10', '192.0.2.11'],
      TXT: [spf],
    },
    'amy.example.com': { A: ['192.0.2.65'] },
    'bob.example.com': { A: ['192.0.2.66'] },
    'mail-a.example.com': { A: ['192.0.2.129'] },
    'mail-b.example.com': { A: ['192.0.2.130'] },
    'example.org': { MX: [{ exchange: 'mail-c.example.org', preference: 10 }] },
    'mail-c.example.org': { A: ['192.0.2.140'] },
    'example.net': { MX: [{ exchange: 'mail-a.example.com', preference: 10 }] },
  };
}

/** RFC 7208 A.1: each record, the hosts the RFC says pass, and hosts that must not. */
const APPENDIX_A1: { record: string; pass: string[]; fail: string[] }[] = [
  { record: 'v=spf1 +all', pass: ['192.0.2.10', '198.51.100.7'], fail: [] },
  { record: 'v=spf1 a -all', pass: ['192.0.2.10', '192.0.2.11'], fail: ['192.0.2.129'] },
  { record: 'v=spf1 a:example.org -all', pass: [], fail: ['192.0.2.10', '192.0.2.140'] },
  { record: 'v=spf1 mx -all', pass: ['192.0.2.129', '192.0.2.130'], fail: ['192.0.2.10', '192.0.2.140'] },
  { record: 'v=spf1 mx:example.org -all', pass: ['192.0.2.140'], fail: ['192.0.2.129'] },
  { record: 'v=spf1 mx mx:example.org -all', pass: ['192.0.2.129', '192.0.2.130', '192.0.2.140'], fail: ['192.0.2.10'] },
  { record: 'v=spf1 mx/30 mx:example.org/30 -all', pass: ['192.0.2.128', '192.0.2.131', '192.0.2.141'], fail: ['192.0.2.132', '192.0.2.144'] },
  { record: 'v=spf1 ip4:192.0.2.128/28 -all', pass: ['192.0.2.128', '192.0.2.143'], fail: ['192.0.2.144', '192.0.2.10'] },
];

describe('SPF: RFC 7208 Appendix A.1 examples over real DNS', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer();
  });
  after(async () => dns.close());

  for (const { record, pass, fail } of APPENDIX_A1) {
    it(`"${record}": ${pass.join(', ') || 'nobody'} pass${fail.length ? `; ${fail.join(', ')} fail` : ''}`, async () => {
      dns.setRecords(appendixA(record));
      const { auth } = senderAuthOn(dns);
      for (const ip of pass) assert.equal((await auth.spf({ sender: 'user@example.com', ip, helo: 'h.example' })).result, 'pass', `${ip} under ${record}`);
      for (const ip of fail) assert.equal((await auth.spf({ sender: 'user@example.com', ip, helo: 'h.example' })).result, 'fail', `${ip} under ${record}`);
    });
  }
});

describe('SPF: identities, limits, errors and the cache', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer();
  });
  after(async () => dns.close());

  it('the blank sender is checked by its HELO name (RFC 7208 2.4), and the A-R entry says smtp.helo', async () => {
    dns.setRecords({ 'relay.example.org': { TXT: ['v=spf1 ip4:192.0.2.5 -all'] } });
    const { auth } = senderAuthOn(dns);
    const ok = await auth.spf({ sender: '', ip: '192.0.2.5', helo: 'relay.example.org' });
    assert.deepEqual([ok.result, ok.domain, ok.identity], ['pass', 'relay.example.org', 'helo']);
    assert.match(ok.info, /^spf=pass .*smtp\.helo=relay\.example\.org/);
    assert.equal((await auth.spf({ sender: '', ip: '192.0.2.6', helo: 'relay.example.org' })).result, 'fail');
  });

  it('a domain without an SPF record is none; a broken record is permerror', async () => {
    dns.setRecords({ 'plain.example': { A: ['192.0.2.1'] }, 'broken.example': { TXT: ['v=spf1 ip4:not-an-address -all'] } });
    const { auth } = senderAuthOn(dns);
    assert.equal((await auth.spf({ sender: 'a@plain.example', ip: '192.0.2.1', helo: 'h' })).result, 'none');
    assert.equal((await auth.spf({ sender: 'a@broken.example', ip: '192.0.2.1', helo: 'h' })).result, 'permerror');
  });

  it('more than 10 DNS-querying terms is permerror (RFC 7208 4.6.4), after at most 11 of them were asked', async () => {
    const records: Record<string, TestRecords> = {};
    const includes = Array.from({ length: 12 }, (_, i) => `inc${i}.example`);
    for (const d of includes) records[d] = { TXT: ['v=spf1 ip4:198.51.100.1 -all'] };
    records['many.example'] = { TXT: [`v=spf1 ${includes.map((d) => `include:${d}`).join(' ')} -all`] };
    dns.setRecords(records);
    const { auth } = senderAuthOn(dns);
    const before = dns.queries.length;
    const r = await auth.spf({ sender: 'a@many.example', ip: '192.0.2.1', helo: 'h' });
    assert.equal(r.result, 'permerror');
    assert.match(r.info, /Too many DNS requests/);
    assert.ok(dns.queries.slice(before).filter((q) => q.startsWith('inc')).length <= 11);
  });

  it('more than 2 void lookups is permerror (RFC 7208 4.6.4)', async () => {
    dns.setRecords({ 'void.example': { TXT: ['v=spf1 a:n1.void.example a:n2.void.example a:n3.void.example -all'] } });
    const { auth } = senderAuthOn(dns);
    const r = await auth.spf({ sender: 'a@void.example', ip: '192.0.2.1', helo: 'h' });
    assert.equal(r.result, 'permerror');
  });

  it('SERVFAIL is temperror; a silent resolver is temperror within the deadline, not after every lookup time-out', async () => {
    dns.setRecords({ 'sf.example': { mode: 'servfail' }, 'slow.example': { mode: 'blackhole' } });
    const resolver = new CachedAuthResolver({ client: new DnsClient({ servers: [dns.address], timeoutMs: 5000 }), cacheSize: 10 });
    const auth = new MailauthSenderAuth({ resolver, authservId: 'mx.example.test', timeoutMs: 300 });
    assert.equal((await auth.spf({ sender: 'a@sf.example', ip: '192.0.2.1', helo: 'h' })).result, 'temperror');
    const started = Date.now();
    assert.equal((await auth.spf({ sender: 'a@slow.example', ip: '192.0.2.1', helo: 'h' })).result, 'temperror');
    assert.ok(Date.now() - started < 3000, `the 300 ms deadline bounds the check, not dns.timeoutMs (took ${Date.now() - started} ms)`);
  });

  it('answers are cached for their TTL: a second check asks nothing, one after the TTL asks again', async () => {
    dns.setRecords({ 'cached.example': { TXT: ['v=spf1 a -all'], A: ['192.0.2.7'], ttl: 60 } });
    let now = 1_000_000;
    const resolver = new CachedAuthResolver({ client: new DnsClient({ servers: [dns.address], timeoutMs: 1000 }), cacheSize: 10, clock: { now: () => now } });
    const auth = new MailauthSenderAuth({ resolver, authservId: 'mx.example.test', timeoutMs: 2000 });
    const check = () => auth.spf({ sender: 'a@cached.example', ip: '192.0.2.7', helo: 'h' });
    assert.equal((await check()).result, 'pass');
    const asked = dns.queries.length;
    assert.equal((await check()).result, 'pass');
    assert.equal(dns.queries.length, asked, 'the second check was answered from the cache');
    now += 61_000;
    assert.equal((await check()).result, 'pass');
    assert.ok(dns.queries.length > asked, 'past the TTL the records are asked again');
  });
});
