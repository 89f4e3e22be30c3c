import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isIpv4, normalizeIp, parseIp, plainIpv4 } from '../../src/net/ip.js';

test('normalizeIp gives the canonical form a log or list would show', () => {
  assert.equal(normalizeIp('192.0.2.7'), '192.0.2.7');
  assert.equal(normalizeIp(' 192.0.2.7 '), '192.0.2.7');
  assert.equal(normalizeIp('::ffff:192.0.2.7'), '192.0.2.7', 'IPv4-mapped IPv6 is the IPv4 address');
  assert.equal(normalizeIp('::FFFF:c000:0207'), '192.0.2.7', 'mapped, written in hex');
  assert.equal(normalizeIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(normalizeIp('[2001:db8::1]'), '2001:db8::1', 'brackets as in an address literal');
  assert.equal(normalizeIp('::1'), '::1');
});

test('normalizeIp refuses junk and the ambiguous short IPv4 forms', () => {
  for (const junk of ['', 'bogus', '192.0.2', '192.0.2.256', '1.2.3.4.5', '127.1', '0x7f.0.0.1', '010.0.0.1', '1', '2001:db8::/32', '2001:db8:::1']) {
    assert.throws(() => normalizeIp(junk), /is not an IP address/, junk);
  }
});

test('isIpv4 counts a mapped address as IPv4 and junk as neither', () => {
  assert.equal(isIpv4('192.0.2.7'), true);
  assert.equal(isIpv4('::ffff:192.0.2.7'), true);
  assert.equal(isIpv4('2001:db8::1'), false);
  assert.equal(isIpv4('nonsense'), false);
});

test('plainIpv4 reads exactly the canonical dotted quads, and parseIp and normalizeIp agree with it (property)', () => {
  const oracle = (s: string): number | undefined => {
    if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(s)) return undefined;
    const parts = s.split('.').map(Number);
    return parts.some((p) => p > 255) ? undefined : parts.reduce((n, p) => n * 256 + p, 0);
  };
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '007', '', ' 1', 'x', '1 ', '0x1', '-1', '1e2'));
  const quadish = fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.'));
  fc.assert(
    fc.property(fc.oneof(quadish, fc.string({ maxLength: 16 })), (s) => {
      const n = plainIpv4(s);
      assert.equal(n, oracle(s), s);
      if (n === undefined) return;
      assert.equal(normalizeIp(s), s);
      assert.deepEqual(parseIp(s).toByteArray(), [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    }),
    { numRuns: 2000 },
  );
});
