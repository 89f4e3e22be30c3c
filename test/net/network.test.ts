import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { IpList } from '../../src/net/ip-list.js';
import { networkOf } from '../../src/net/network.js';

describe('networkOf', () => {
  it('gives the network in CIDR form, one key for every spelling of an address', () => {
    assert.equal(networkOf('192.0.2.77', { ipv4: 24, ipv6: 48 }), '192.0.2.0/24');
    assert.equal(networkOf('::ffff:192.0.2.77', { ipv4: 24, ipv6: 48 }), '192.0.2.0/24');
    assert.equal(networkOf('192.0.2.77', { ipv4: 32, ipv6: 48 }), '192.0.2.77/32');
    assert.equal(networkOf('192.0.2.77', { ipv4: 0, ipv6: 48 }), '0.0.0.0/0');
    assert.equal(networkOf('2001:DB8:1:2::5', { ipv4: 24, ipv6: 48 }), '2001:db8:1::/48');
    assert.equal(networkOf('2001:db8:1:0:0:0:0:9', { ipv4: 24, ipv6: 48 }), '2001:db8:1::/48');
    assert.throws(() => networkOf('192.0.2.300', { ipv4: 24, ipv6: 48 }));
  });

  it('property: the network contains the address, and every address of that network gives the same key', () => {
    const v4 = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map((o) => o.join('.'));
    const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => ipaddr.fromByteArray(g.flatMap((x) => [x >> 8, x & 255])).toString());
    fc.assert(
      fc.property(fc.oneof(v4, v6), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 128 }), (ip, b4, b6) => {
        const net = networkOf(ip, { ipv4: b4, ipv6: b6 });
        const list = IpList.parse([net]);
        assert.equal(list.match(ip), net);
        const [base] = net.split('/');
        assert.equal(networkOf(base as string, { ipv4: b4, ipv6: b6 }), net);
      }),
      { numRuns: 300 },
    );
  });
});
