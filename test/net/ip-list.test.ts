import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeIp } from '../../src/net/ip.js';
import { IpList, IpListError } from '../../src/net/ip-list.js';

test('single addresses, CIDR blocks and the address+mask form match what they cover', () => {
  const list = IpList.parse(['192.0.2.7', '198.51.100.0/24', '203.0.113.0 255.255.255.128', '2001:db8::7', '2001:db8:1::/48']);
  assert.equal(list.match('192.0.2.7'), '192.0.2.7');
  assert.equal(list.match('192.0.2.8'), undefined);
  assert.equal(list.match('198.51.100.255'), '198.51.100.0/24');
  assert.equal(list.match('203.0.113.127'), '203.0.113.0 255.255.255.128');
  assert.equal(list.match('203.0.113.128'), undefined);
  assert.equal(list.match('2001:db8:0:0::7'), '2001:db8::7');
  assert.equal(list.match('2001:db8:1:ffff::1'), '2001:db8:1::/48');
  assert.equal(list.match('2001:db8:2::1'), undefined);
});

test('an IPv4 client seen as ::ffff:a.b.c.d is the IPv4 address for every entry', () => {
  const list = IpList.parse(['198.51.100.0/24']);
  assert.equal(list.match('::ffff:198.51.100.9'), '198.51.100.0/24');
  assert.equal(normalizeIp('::ffff:198.51.100.9'), '198.51.100.9');
  assert.equal(normalizeIp('2001:DB8:0::1'), '2001:db8::1');
});

test('entries that do not parse are refused with their index', () => {
  for (const [bad, why] of [
    ['192.0.2.256', /not an IP/],
    ['192.0.2.0/33', /longer than 32/],
    ['192.0.2.0 255.0.255.0', /not contiguous/],
    ['example.com', /not an IP/],
  ] as const) {
    assert.throws(() => IpList.parse(['192.0.2.1', bad]), (e: unknown) => e instanceof IpListError && e.index === 1 && why.test(e.message), bad);
  }
  assert.throws(() => normalizeIp('bogus'), /not an IP address/);
});
