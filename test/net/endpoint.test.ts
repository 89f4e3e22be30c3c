import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { endpointOf, endpointProblems, formatEndpoint, HOST_PORT, parseEndpoint, parseSmtpUrl } from '../../src/net/endpoint.js';

describe('endpoints (host:port)', () => {
  it('parseEndpoint accepts host:port and [v6]:port and refuses the rest', () => {
    assert.deepEqual(parseEndpoint('127.0.0.1:9325', 'metrics.listen'), { host: '127.0.0.1', port: 9325 });
    assert.deepEqual(parseEndpoint('[::1]:9325', 'metrics.listen'), { host: '::1', port: 9325 });
    assert.throws(() => parseEndpoint('9325', 'metrics.listen'), /host:port/);
    assert.throws(() => parseEndpoint('127.0.0.1:70000', 'metrics.listen'), /host:port/);
  });

  it('names the key it parsed for, not one key for every caller', () => {
    assert.throws(() => parseEndpoint('nonsense', 'transport.admin.listen'), /^Error: transport\.admin\.listen: expected host:port, got 'nonsense'$/);
    assert.throws(() => parseEndpoint('::1:25', 'transport.listen'), /^Error: transport\.listen:/);
  });

  it('parses backend.url', () => {
    assert.deepEqual(parseSmtpUrl('smtp://127.0.0.1:2525', 'backend.url'), { host: '127.0.0.1', port: 2525 });
    assert.deepEqual(parseSmtpUrl('smtp://[::1]:25', 'backend.url'), { host: '::1', port: 25 });
    assert.deepEqual(parseSmtpUrl('smtp://mx.example:25/', 'backend.url'), { host: 'mx.example', port: 25 });
    assert.throws(() => parseSmtpUrl('http://x:1', 'backend.url'), /backend\.url: expected smtp:\/\/host:port/);
    assert.throws(() => parseSmtpUrl('smtp://a/b:1', 'backend.url'), /smtp:\/\/host:port/);
  });

  it('finds what the schema shape lets through: ports out of range, malformed literals, names where an IP is needed', () => {
    assert.deepEqual(endpointProblems('0.0.0.0:25', 'any'), []);
    assert.deepEqual(endpointProblems('[::]:0', 'ip'), []);
    assert.deepEqual(endpointProblems('mx.example:25', 'any'), []);
    assert.deepEqual(endpointProblems('1.2.3.4:99999', 'any'), ['port 99999 is out of range (0-65535)']);
    assert.deepEqual(endpointProblems('[1:2]:25', 'any'), ["'[1:2]' is not an IPv6 address"]);
    assert.deepEqual(endpointProblems('300.1.1.1:53', 'ip'), ["'300.1.1.1' is not an IPv4 address"]);
    assert.deepEqual(endpointProblems('dns.example:53', 'ip'), ["'dns.example' must be an IP address (a DNS server cannot be found by name)"]);
  });

  it('reads back what it formats, for any host and port', () => {
    const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    fc.assert(
      fc.property(host, fc.integer({ min: 0, max: 65535 }), (h, port) => {
        const text = formatEndpoint({ host: h, port });
        assert.match(text, HOST_PORT);
        assert.deepEqual(endpointOf(text), { host: h, port });
        assert.deepEqual(endpointProblems(text, 'any'), []);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on hostile text, and agrees with the schema shape on what it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(':', '[', ']', '1', 'a', ' ', '.', '/') })), (s) => {
        const e = endpointOf(s);
        if (e) assert.match(s, HOST_PORT);
        else if (HOST_PORT.test(s)) assert.ok(Number(s.slice(s.lastIndexOf(':') + 1)) > 65535, s);
        if (HOST_PORT.test(s)) endpointProblems(s, 'ip');
      }),
      { numRuns: 500 },
    );
  });
});
