/** The HELO checks' name tests on hostile input: never a throw, never looser than the wire's own check. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isHeloName } from '../../src/net/helo-name.js';
import { isOurName, isQualifiedHeloName } from '../../src/policy/helo-checks.js';

describe('HELO checks: name tests', () => {
  it('examples: host names and address literals pass; single labels, bare addresses, underscores and numeric top labels do not', () => {
    for (const ok of ['mail.example.com', 'mail.example.com.', 'a-b.c9.example', '[192.0.2.1]', '[IPv6:2001:db8::1]']) assert.equal(isQualifiedHeloName(ok), true, ok);
    for (const bad of ['localhost', '192.0.2.1', 'mail_1.example.com', 'host.123', '-a.example', '[192.0.2.300]', '[2001:db8::1]', '', '.', 'a..example']) {
      assert.equal(isQualifiedHeloName(bad), false, bad);
    }
  });

  it('any string: no throw, and a name the HELO check accepts is one the wire accepts too', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.domain(), fc.ipV4().map((a) => `[${a}]`), fc.stringMatching(/^[a-z0-9.\-_[\]:]{0,40}$/)), (name) => {
        if (isQualifiedHeloName(name)) assert.equal(isHeloName(name), true, name);
      }),
      { numRuns: 1000 },
    );
  });

  it('every generated domain name with an alphabetic top label passes the syntax check', () => {
    fc.assert(
      fc.property(fc.domain(), (name) => {
        if (/\.[a-z][a-z0-9-]*$/i.test(name) && name.length <= 253) assert.equal(isQualifiedHeloName(name), true, name);
      }),
      { numRuns: 500 },
    );
  });

  it('our name in any case, with or without the root dot, and our addresses bare or as literals are ours; nothing else is', () => {
    fc.assert(
      fc.property(fc.domain(), fc.ipV4(), fc.string(), (host, address, other) => {
        const mixed = [...host].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch)).join('');
        assert.equal(isOurName(mixed, host, [address]), true);
        assert.equal(isOurName(`${host}.`, host, [address]), true);
        assert.equal(isOurName(`[${address}]`, host, [address]), true);
        assert.equal(isOurName(address, host, [address]), true);
        if (other.toLowerCase().replace(/\.$/, '') !== host.toLowerCase() && !other.includes(address)) assert.equal(isOurName(other, host, [address]), false, other);
      }),
      { numRuns: 300 },
    );
  });
});
