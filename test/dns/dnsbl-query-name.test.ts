import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dnsblQueryName } from '../../src/dns/dnsbl-query-name.js';

describe('dnsblQueryName', () => {
  it('reverses IPv4 octets with one dot before the zone (the guide example)', () => {
    assert.equal(dnsblQueryName('192.168.5.1', 'contoso.org'), '1.5.168.192.contoso.org');
  });

  it('drops a trailing dot on the zone', () => {
    assert.equal(dnsblQueryName('127.0.0.2', 'bl.example.net.'), '2.0.0.127.bl.example.net');
  });

  it('treats ::ffff:a.b.c.d as the IPv4 address', () => {
    assert.equal(dnsblQueryName('::ffff:192.0.2.7', 'bl.test'), '7.2.0.192.bl.test');
  });

  it('uses the 32 reversed nibbles of the full IPv6 address (RFC 5782 example)', () => {
    assert.equal(
      dnsblQueryName('2001:db8:1:2:3:4:567:89ab', 'ugly.example.com'),
      'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com',
    );
  });

  it('expands compressed IPv6 forms', () => {
    const name = dnsblQueryName('::1', 'bl.test');
    assert.equal(name, `1.${'0.'.repeat(31)}bl.test`);
    assert.equal(name.split('.').length, 32 + 2);
  });

  it('refuses something that is not an address', () => {
    assert.throws(() => dnsblQueryName('mail.example.com', 'bl.test'), /not an IP address/);
  });
});
