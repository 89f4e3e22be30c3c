import fc from 'fast-check';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpList, IpListError } from '../../src/net/ip-list.js';

test('single addresses, CIDR blocks and the address+mask form match what they cover', () => {
  const list = IpList.parse(['192.0.2.7', '198.51.100.0/24', '203.0.113.0 255.255.255.128', '2001:db8::7', '2001:db8:1::/48']);
  assert.equal(list.size, 5);
  assert.equal(list.match('192.0.2.7'), '192.0.2.7');
  assert.equal(list.match('192.0.2.8'), undefined);
  assert.equal(list.match('198.51.100.0'), '198.51.100.0/24');
  assert.equal(list.match('198.51.100.255'), '198.51.100.0/24');
  assert.equal(list.match('198.51.101.0'), undefined);
  assert.equal(list.match('203.0.113.127'), '203.0.113.0 255.255.255.128');
  assert.equal(list.match('203.0.113.128'), undefined);
  assert.equal(list.match('2001:db8:0:0::7'), '2001:db8::7');
  assert.equal(list.match('2001:DB8::8'), undefined);
  assert.equal(list.match('2001:db8:1:ffff::1'), '2001:db8:1::/48');
  assert.equal(list.match('2001:db8:2::1'), undefined);
  assert.equal(list.has('198.51.100.9'), true);
  assert.equal(list.has('10.0.0.1'), false);
});

test('an IPv4 client seen as ::ffff:a.b.c.d is the IPv4 address for every entry', () => {
  const list = IpList.parse(['198.51.100.0/24', '192.0.2.7', '10.0.0.0 255.0.0.0']);
  assert.equal(list.match('::ffff:198.51.100.9'), '198.51.100.0/24');
  assert.equal(list.match('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(list.match('::ffff:10.20.30.40'), '10.0.0.0 255.0.0.0');
  assert.equal(list.match('::ffff:192.0.2.8'), undefined);
});

test('an entry written as a mapped IPv6 address or block is its IPv4 equivalent', () => {
  const list = IpList.parse(['::ffff:192.0.2.7', '::ffff:198.51.100.0/120']);
  assert.equal(list.match('192.0.2.7'), '::ffff:192.0.2.7');
  assert.equal(list.match('198.51.100.200'), '::ffff:198.51.100.0/120');
  assert.equal(list.match('198.51.101.1'), undefined);
});

test('the most specific entry is the one reported; families never cross', () => {
  const list = IpList.parse(['0.0.0.0/0', '192.0.2.0/24', '192.0.2.7', '::/0']);
  assert.equal(list.match('192.0.2.7'), '192.0.2.7');
  assert.equal(list.match('192.0.2.8'), '192.0.2.0/24');
  assert.equal(list.match('203.0.113.1'), '0.0.0.0/0');
  assert.equal(list.match('2001:db8::1'), '::/0');
  assert.equal(IpList.parse(['::/0']).match('192.0.2.1'), undefined, 'an IPv6 block does not cover IPv4 clients');
});

test('host bits in a block are ignored, as the guide writes groups', () => {
  const list = IpList.parse(['192.0.2.77 255.255.255.0', '198.51.100.9/24']);
  assert.equal(list.match('192.0.2.1'), '192.0.2.77 255.255.255.0');
  assert.equal(list.match('198.51.100.200'), '198.51.100.9/24');
});

test('an empty list matches nothing; a junk client address is an error, not a miss', () => {
  assert.equal(IpList.parse([]).match('192.0.2.1'), undefined);
  assert.throws(() => IpList.parse(['192.0.2.0/24']).match('nonsense'), /not an IP address/);
});

test('entries that do not parse are refused with their index and a reason', () => {
  for (const [bad, why] of [
    ['192.0.2.256', /not an IP address/],
    ['192.0.2.0/33', /longer than 32/],
    ['2001:db8::/129', /longer than 128/],
    ['192.0.2.0/x', /must be a number/],
    ['192.0.2.0/24/8', /expected an address/],
    ['192.0.2.0 255.0.255.0', /not contiguous/],
    ['192.0.2.0 255.255.255.1', /not contiguous/],
    ['192.0.2.0 24', /dotted quad/],
    ['2001:db8:: ffff:ffff::', /"address mask" form is for IPv4/],
    ['192.0.2.0 255.255.255.0 extra', /expected an address/],
    ['::ffff:192.0.2.0/64', /96 or more/],
    ['example.com', /not an IP address/],
    ['', /expected an address/],
  ] as const) {
    assert.throws(
      () => IpList.parse(['192.0.2.1', bad]),
      (e: unknown) => e instanceof IpListError && e.index === 1 && e.entry === bad && why.test(e.reason),
      bad,
    );
  }
});

test('a large list matches by lookup, not by scanning', () => {
  const entries: string[] = [];
  for (let i = 0; i < 50_000; i++) entries.push(`10.${(i >> 8) & 255}.${i & 255}.1`);
  for (let i = 0; i < 1000; i++) entries.push(`172.${16 + (i % 16)}.${i >> 4}.0/24`);
  const list = IpList.parse(entries);
  const n = 100_000;
  const started = process.hrtime.bigint();
  let hits = 0;
  for (let i = 0; i < n; i++) if (list.has(`10.${i & 255}.${(i >> 8) & 255}.1`)) hits++;
  const nsPerMatch = Number(process.hrtime.bigint() - started) / n;
  assert.ok(hits > 0);
  // A linear scan of 51,000 entries costs well over 100 µs; a lookup stays in the low microseconds.
  assert.ok(nsPerMatch < 50_000, `${nsPerMatch.toFixed(0)} ns per match`);
});

test('an IPv4 client matches the same entry written plainly as through the IPv4-mapped form (property)', () => {
  const octet = fc.integer({ min: 0, max: 255 });
  const quad = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const entry = fc.oneof(quad, fc.tuple(quad, fc.integer({ min: 0, max: 32 })).map(([q, bits]) => `${q}/${bits}`));
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 6 }), quad, (entries, ip) => {
      const list = IpList.parse(entries);
      assert.equal(list.match(ip), list.match(`::ffff:${ip}`), ip);
    }),
    { numRuns: 500 },
  );
});
