/** Which HELO/EHLO arguments the edge takes: host names and IP addresses, bare or as literals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHeloName } from '../../src/net/helo-name.js';

const label = fc.stringMatching(/^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,20}[A-Za-z0-9_])?$/);

describe('isHeloName', () => {
  it('takes host names, bare IP addresses and address literals', () => {
    for (const good of ['mail.example.org', 'MY_PC', 'localhost', 'mx-1.example.org.', '192.0.2.1', '2001:db8::1', '[192.0.2.1]', '[IPv6:2001:db8::1]', '[ipv6:::1]', 'xn--bcher-kva.example']) {
      assert.equal(isHeloName(good), true, good);
    }
  });

  it('refuses everything else', () => {
    for (const bad of ['', '.', 'a..b', '.example', '-a.example', 'a-.example', 'a+b', 'a=b', '[300.1.1.1]', '[foo]', '[IPv6:1.2.3.4]', '[2001:db8::1]', '"q"', 'caf\u00e9.example', 'x\u2020', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}ab`]) {
      assert.equal(isHeloName(bad), false, JSON.stringify(bad));
    }
  });

  it('takes every dotted name of valid labels (property)', () => {
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 6 }), fc.boolean(), (labels, rootDot) => {
        assert.equal(isHeloName(labels.join('.') + (rootDot ? '.' : '')), true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any argument holding a character outside printable ASCII, or one XFORWARD would have to escape (property)', () => {
    const hostile = fc.tuple(fc.string(), fc.constantFrom('+', '=', ' ', '\r', '\n', '\0', '\u00e9', '\u2020', '\u{1F600}', '<', '@', '"'), fc.string());
    fc.assert(
      fc.property(hostile, ([before, bad, after]) => {
        assert.equal(isHeloName(`${before}${bad}${after}`), false);
      }),
      { numRuns: 500 },
    );
  });
});
