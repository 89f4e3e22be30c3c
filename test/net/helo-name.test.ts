/** Which HELO/EHLO arguments the edge takes: host names and IP addresses, bare or as literals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { isHeloName } from '../../src/net/helo-name.js';

/** isHeloName as first written: net.isIP on every argument before anything else. */
function asFirstWritten(arg: string): boolean {
  if (net.isIP(arg)) return true;
  const literal = /^\[(?:IPv6:(.+)|(.+))\]$/i.exec(arg);
  if (literal) return literal[1] !== undefined ? net.isIPv6(literal[1]) : net.isIPv4(literal[2] ?? '');
  const name = arg.endsWith('.') ? arg.slice(0, -1) : arg;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}

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

  it('takes exactly what net.isIP first and the literal and label tests after took (property)', () => {
    const ipish = fc.array(fc.constantFrom(...'0123456789abcdefABCDEF:.[]%_-vxIiPp6 '.split('')), { maxLength: 45 }).map((cs) => cs.join(''));
    const v6 = fc.ipV6();
    const arg = fc.oneof(
      ipish,
      fc.ipV4(),
      fc.ipV4Extended(),
      v6,
      v6.map((a) => `${a}%eth0`),
      fc.oneof(fc.ipV4(), v6).map((a) => `[${a}]`),
      v6.map((a) => `[IPv6:${a}]`),
      fc.string(),
      fc.domain(),
    );
    fc.assert(
      fc.property(arg, (a) => {
        assert.equal(isHeloName(a), asFirstWritten(a), JSON.stringify(a));
      }),
      { numRuns: 20000 },
    );
  });
});
