import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeAddress, splitAddress } from '../../src/net/address.js';
import { AddressList, AddressPatternError } from '../../src/net/address-pattern.js';

test('each pattern form matches what the guide says, case-insensitively', () => {
  const list = AddressList.parse(['ted@contoso.com', '*@fabrikam.com', '@tailspin.com', '*@*.wingtip.com', '"Ted Bremer"@contoso.com']);
  assert.equal(list.match('<TED@Contoso.COM>'), 'ted@contoso.com');
  assert.equal(list.match('anyone@FABRIKAM.com'), '*@fabrikam.com');
  assert.equal(list.match('x@tailspin.com'), '@tailspin.com');
  assert.equal(list.match('x@mail.wingtip.com'), '*@*.wingtip.com');
  assert.equal(list.match('x@a.b.wingtip.com'), '*@*.wingtip.com');
  assert.equal(list.match('x@wingtip.com'), undefined, 'the subdomain pattern does not match the domain itself');
  assert.equal(list.match('fred@contoso.com'), undefined);
  assert.equal(list.match('"Ted Bremer"@contoso.com'), '"Ted Bremer"@contoso.com');
  assert.equal(list.match('"ted bremer"@contoso.com'), undefined, 'a quoted local part is matched as written');
});

test('addresses split at the domain @, even with a quoted local part holding one', () => {
  assert.deepEqual(splitAddress('"user@other"@ours.example'), { local: '"user@other"', domain: 'ours.example' });
  assert.equal(normalizeAddress(' <Alice@Example.TEST> '), 'alice@example.test');
  assert.equal(splitAddress('no-at-sign'), undefined);
});

test('patterns that do not parse are refused with their index', () => {
  assert.throws(() => AddressList.parse(['ok@example.com', 'not an address']), (e: unknown) => e instanceof AddressPatternError && e.index === 1);
  assert.throws(() => AddressList.parse(['*@']), AddressPatternError);
});
