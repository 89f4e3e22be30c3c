import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AddressList, AddressPatternError } from '../../src/net/address-pattern.js';

test('an address pattern matches that address only, case-insensitively, with or without brackets', () => {
  const list = AddressList.parse(['ted@contoso.com']);
  assert.equal(list.match('ted@contoso.com'), 'ted@contoso.com');
  assert.equal(list.match('<TED@Contoso.COM>'), 'ted@contoso.com');
  assert.equal(list.match('"ted"@contoso.com'), 'ted@contoso.com', 'needless quotes do not dodge the pattern');
  assert.equal(list.match('fred@contoso.com'), undefined);
  assert.equal(list.match('ted@mail.contoso.com'), undefined);
});

test('*@domain and @domain match the whole domain, not its subdomains', () => {
  const list = AddressList.parse(['*@fabrikam.com', '@tailspin.com']);
  assert.equal(list.match('anyone@FABRIKAM.com'), '*@fabrikam.com');
  assert.equal(list.match('x@tailspin.com'), '@tailspin.com');
  assert.equal(list.match('x@mail.tailspin.com'), undefined);
  assert.equal(list.match('x@nottailspin.com'), undefined);
});

test('*@*.domain matches the subdomains only, at any depth', () => {
  const list = AddressList.parse(['*@*.wingtip.com']);
  assert.equal(list.match('x@mail.wingtip.com'), '*@*.wingtip.com');
  assert.equal(list.match('x@a.b.WINGTIP.com'), '*@*.wingtip.com');
  assert.equal(list.match('x@wingtip.com'), undefined, 'not the domain itself');
  assert.equal(list.match('x@badwingtip.com'), undefined);
});

test('a quoted local part is matched as written', () => {
  const list = AddressList.parse(['"Ted Bremer"@contoso.com']);
  assert.equal(list.match('"Ted Bremer"@CONTOSO.com'), '"Ted Bremer"@contoso.com');
  assert.equal(list.match('"ted bremer"@contoso.com'), undefined);
  assert.equal(list.match('TedBremer@contoso.com'), undefined);
});

test('the exact address wins over its domain; the blank sender matches nothing', () => {
  const list = AddressList.parse(['*@contoso.com', 'ted@contoso.com', '*@*.contoso.com']);
  assert.equal(list.size, 3);
  assert.equal(list.match('ted@contoso.com'), 'ted@contoso.com');
  assert.equal(list.match('amy@contoso.com'), '*@contoso.com');
  assert.equal(list.match('amy@eu.contoso.com'), '*@*.contoso.com');
  assert.equal(list.match('<>'), undefined);
  assert.equal(list.match(''), undefined);
});

test('patterns that do not parse are refused with their index and a reason', () => {
  for (const [bad, why] of [
    ['not an address', /expected ted@contoso.com/],
    ['*@', /is not a domain/],
    ['@', /is not a domain/],
    ['ted@*.contoso.com', /wildcard domain needs a wildcard local part/],
    ['te*d@contoso.com', /'\*' stands only alone/],
    ['Ted Bremer@contoso.com', /must be quoted/],
    ['ted@bad domain.com', /is not a domain/],
    ['*@*.', /is not a domain/],
  ] as const) {
    assert.throws(
      () => AddressList.parse(['ok@example.com', bad]),
      (e: unknown) => e instanceof AddressPatternError && e.index === 1 && e.entry === bad && why.test(e.reason),
      bad,
    );
  }
});

test('a large list matches by lookup', () => {
  const entries: string[] = [];
  for (let i = 0; i < 20_000; i++) entries.push(`user${i}@d${i % 100}.example`, `*@*.s${i}.example`, `@x${i}.example`);
  const list = AddressList.parse(entries);
  const n = 50_000;
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) list.match(`someone@a.b.s${i % 20_000}.example`);
  const nsPerMatch = Number(process.hrtime.bigint() - started) / n;
  assert.equal(list.match('user7@d7.example'), 'user7@d7.example');
  assert.ok(nsPerMatch < 50_000, `${nsPerMatch.toFixed(0)} ns per match`);
});

test('a list of whole addresses only matches as it would beside domain patterns (property)', () => {
  const local = fc.stringMatching(/^[a-zA-Z0-9._+-]{1,8}$/).filter((l) => !l.startsWith('.') && !l.endsWith('.') && !l.includes('..'));
  const domain = fc.constantFrom('example.test', 'Example.TEST', 'sub.example.test', 'other.test');
  const address = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);
  fc.assert(
    fc.property(fc.array(address, { minLength: 1, maxLength: 6 }), fc.array(address, { maxLength: 6 }), (entries, asked) => {
      const exactOnly = AddressList.parse(entries);
      const withDomains = AddressList.parse([...entries, '*@unrelated.invalid', '*@*.unrelated.invalid']);
      for (const a of [...entries, ...asked, ...asked.map((x) => `<${x.toUpperCase()}>`), 'postmaster', '']) {
        assert.equal(exactOnly.match(a), withDomains.match(a), a);
      }
    }),
    { numRuns: 200 },
  );
});
