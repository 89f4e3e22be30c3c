import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainToUnicode } from 'node:url';
import fc from 'fast-check';
import { canonicalDomain } from '../../src/net/domain.js';
import { normalizeAddress } from '../../src/net/address.js';

test('canonicalDomain: Unicode, punycode, case and a trailing dot all give one A-label form', () => {
  for (const d of ['bücher.test', 'Bücher.TEST.', 'xn--bcher-kva.test', 'XN--BCHER-KVA.test']) assert.equal(canonicalDomain(d), 'xn--bcher-kva.test');
  assert.equal(normalizeAddress('<User@Bücher.test>'), 'user@xn--bcher-kva.test');
  // Not an IDN at all: kept (lower-cased) so validation refuses it and it equals no valid domain.
  assert.equal(canonicalDomain('bü cher.test'), 'bü cher.test');
});

test('canonicalDomain: any input gives an answer without throwing, and that answer is its own canonical form', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
      const c = canonicalDomain(s);
      assert.equal(canonicalDomain(c), c);
    }),
    { numRuns: 500 },
  );
});

test('canonicalDomain: the Unicode form of a domain is the same domain as its punycode form', () => {
  const label = fc.stringMatching(/^[a-zäöüßéçñ]{1,10}$/);
  fc.assert(
    fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), (labels) => {
      const unicode = `${labels.join('.')}.test`;
      const ascii = canonicalDomain(unicode);
      assert.match(ascii, /^[a-z0-9.-]+$/);
      assert.equal(canonicalDomain(domainToUnicode(ascii)), ascii);
      assert.equal(canonicalDomain(ascii.toUpperCase()), ascii);
    }),
    { numRuns: 300 },
  );
});
