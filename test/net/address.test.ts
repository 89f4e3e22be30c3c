import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isQuotedLocal, normalizeAddress, splitAddress, stripBrackets } from '../../src/net/address.js';

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
