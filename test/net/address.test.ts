import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainToASCII, domainToUnicode } from 'node:url';
import fc from 'fast-check';
import { asciiAddress, isQuotedLocal, normalizeAddress, splitAddress, stripBrackets } from '../../src/net/address.js';

const atext = fc.constantFrom(..."abcXYZ019!#$%&'*+/=?^_`{|}~-".split(''));
const dotAtom = fc.array(fc.string({ unit: atext, minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }).map((a) => a.join('.'));
/** A quoted local part: printable ASCII (space included), `"` and `\\` escaped. */
const quoted = fc
  .array(fc.oneof(fc.constantFrom(...' aZ0@.,;:<>()[]'.split('')), fc.constantFrom('\\"', '\\\\', '\\a')), { maxLength: 8 })
  .map((a) => `"${a.join('')}"`);
const local = fc.oneof(dotAtom, quoted);
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/).filter((l) => !/^..--/.test(l));
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((a) => a.join('.'));
/** Unicode labels as a sender might register them, kept to what IDNA accepts. */
const uLabel = fc.string({ unit: fc.constantFrom(...'abcxyz019\u00fc\u00e9\u00df\u0436\u4e2d'.split('')), minLength: 1, maxLength: 8 });
const idn = fc
  .array(uLabel, { minLength: 1, maxLength: 3 })
  .map((a) => domainToASCII(`${a.join('.')}.example`))
  .filter((d) => d !== '');

test('normalizeAddress drops brackets and white space and folds case', () => {
  assert.equal(normalizeAddress(' <Alice@Example.TEST> '), 'alice@example.test');
  assert.equal(normalizeAddress('Alice@Example.TEST.'), 'alice@example.test', 'trailing dot of the domain');
  assert.equal(normalizeAddress('<>'), '', 'the blank sender stays blank');
  assert.equal(stripBrackets(' < a@b > '), 'a@b');
});

test('a quoted local part is kept as written unless its quotes are needless', () => {
  assert.equal(normalizeAddress('"Ted Bremer"@Contoso.COM'), '"Ted Bremer"@contoso.com');
  assert.equal(normalizeAddress('"TED"@contoso.com'), 'ted@contoso.com', '"TED" is the dot-atom TED');
  assert.equal(normalizeAddress('"t\\ed"@contoso.com'), 'ted@contoso.com', 'a needless escape too');
});

test('splitAddress finds the domain @ even inside or after a quoted local part', () => {
  assert.deepEqual(splitAddress('"user@other"@ours.example'), { local: '"user@other"', domain: 'ours.example' });
  assert.deepEqual(splitAddress('"a\\"@b"@ours.example'), { local: '"a\\"@b"', domain: 'ours.example' });
  assert.deepEqual(splitAddress('user%other@ours.example'), { local: 'user%other', domain: 'ours.example' });
  assert.equal(splitAddress('no-at-sign'), undefined);
  assert.equal(splitAddress('@domain.example'), undefined);
  assert.equal(splitAddress('user@'), undefined);
  assert.equal(splitAddress('"unterminated@x'), undefined);
  assert.equal(isQuotedLocal('"Ted Bremer"'), true);
  assert.equal(isQuotedLocal('ted'), false);
});

test('splitAddress returns the local part and domain an address was built from (property)', () => {
  fc.assert(
    fc.property(local, domain, (l, d) => {
      assert.deepEqual(splitAddress(`${l}@${d}`), { local: l, domain: d });
    }),
    { numRuns: 500 },
  );
});

test('normalizeAddress is idempotent, ignores brackets and white space, and sees through needless quotes (property)', () => {
  fc.assert(
    fc.property(local, domain, (l, d) => {
      const once = normalizeAddress(`${l}@${d}`);
      assert.equal(normalizeAddress(once), once);
      assert.equal(normalizeAddress(` <${l}@${d.toUpperCase()}.> `), once);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(dotAtom, domain, (l, d) => {
      assert.equal(normalizeAddress(`"${l}"@${d}`), normalizeAddress(`${l}@${d}`));
    }),
    { numRuns: 200 },
  );
});

test('the address parsers never throw, whatever a client writes (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      normalizeAddress(s);
      splitAddress(s);
      const a = asciiAddress(s);
      if (a !== undefined) assert.match(a, /^[^\x80-\uffff]*$/, 'only ASCII ever comes out');
    }),
    { numRuns: 1000 },
  );
});

test('asciiAddress leaves ASCII alone and refuses a non-ASCII local part', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) }), (s) => {
      assert.equal(asciiAddress(s), s);
    }),
    { numRuns: 300 },
  );
  assert.equal(asciiAddress('j\u00f6rg@example.com'), undefined);
  assert.equal(asciiAddress('"j\u00f6rg"@example.com'), undefined);
});

test('asciiAddress gives back the A-labels of a domain smtp-server turned into Unicode (property)', () => {
  fc.assert(
    fc.property(local, idn, (l, d) => {
      assert.equal(asciiAddress(`${l}@${domainToUnicode(d)}`), `${l}@${d}`);
    }),
    { numRuns: 300 },
  );
  assert.equal(asciiAddress('user@b\u00fccher.example'), 'user@xn--bcher-kva.example');
});

test('normalizeAddress gives each address its own normal form whatever was normalized before it (property)', () => {
  const address = fc.oneof(
    fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
    fc.constantFrom('', '<>', 'Postmaster', ' <Alice@Example.TEST> ', 'alice@example.test'),
  );
  fc.assert(
    fc.property(fc.array(address, { minLength: 1, maxLength: 6 }), (addresses) => {
      const first = addresses.map((a) => normalizeAddress(a));
      // The same addresses again, in reverse, then in order, each right after a different one.
      const reversed = [...addresses].reverse().map((a) => normalizeAddress(a)).reverse();
      assert.deepEqual(reversed, first);
      assert.deepEqual(addresses.map((a) => normalizeAddress(a)), first);
    }),
    { numRuns: 300 },
  );
});
