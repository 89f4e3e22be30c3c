import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyCodes, isListingCode, matchesRule } from '../../src/dns/dnsbl-answer.js';

describe('DNSBL answer classification', () => {
  it('counts only 127/8 as listings', () => {
    assert.equal(isListingCode('127.0.0.2'), true);
    assert.equal(isListingCode('127.1.2.3'), true);
    assert.equal(isListingCode('10.0.0.1'), false);
    assert.equal(isListingCode('128.0.0.2'), false);
  });

  it('treats the operators\' error codes as errors, never listings', () => {
    for (const code of ['127.255.255.254', '127.255.255.252', '127.255.255.0', '127.255.255.255', '127.0.1.255', '127.0.0.255']) {
      assert.equal(isListingCode(code), false, code);
    }
    assert.equal(isListingCode('127.255.254.255'), true);
  });

  it('is not fooled by malformed quads', () => {
    for (const code of ['127.0.0', '127.0.0.2.1', '127..0.2', '127.0.0.256', '1270.0.0.2', '127.0.0.2 ', '', 'x.0.0.2']) {
      assert.equal(isListingCode(code), false, JSON.stringify(code));
    }
  });

  it('splits an answer into codes and error codes in order', () => {
    assert.deepEqual(classifyCodes(['127.0.0.2', '10.0.0.1', '127.0.0.4', '127.255.255.254']), {
      codes: ['127.0.0.2', '127.0.0.4'],
      errorCodes: ['10.0.0.1', '127.255.255.254'],
    });
  });
});

describe('matchesRule', () => {
  it('any: the first listing code', () => {
    assert.equal(matchesRule(['127.0.0.10', '127.0.0.2'], 'any'), '127.0.0.10');
    assert.equal(matchesRule([], 'any'), undefined);
  });

  it('never matches an error code, whatever the mode', () => {
    assert.equal(matchesRule(['127.255.255.254'], 'any'), undefined);
    assert.equal(matchesRule(['127.0.1.255'], { maskAny: '0.0.0.255' }), undefined);
    assert.equal(matchesRule(['10.0.0.1'], { codes: ['10.0.0.1'] }), undefined);
  });

  it('mask 0.0.0.6 matches 127.0.0.6 and 127.0.0.7, not .2 or .4 (the spec example)', () => {
    const mask = { mask: '0.0.0.6' };
    assert.equal(matchesRule(['127.0.0.6'], mask), '127.0.0.6');
    assert.equal(matchesRule(['127.0.0.7'], mask), '127.0.0.7');
    assert.equal(matchesRule(['127.0.0.2'], mask), undefined);
    assert.equal(matchesRule(['127.0.0.4'], mask), undefined);
  });

  it('judges each A record on its own: .2 and .4 together do not make mask 6', () => {
    assert.equal(matchesRule(['127.0.0.2', '127.0.0.4'], { mask: '0.0.0.6' }), undefined);
    assert.equal(matchesRule(['127.0.0.2', '127.0.0.14'], { mask: '0.0.0.6' }), '127.0.0.14');
  });

  it('mask-any matches when any mask bit is set', () => {
    const m = { maskAny: '0.0.0.6' };
    assert.equal(matchesRule(['127.0.0.2'], m), '127.0.0.2');
    assert.equal(matchesRule(['127.0.0.4'], m), '127.0.0.4');
    assert.equal(matchesRule(['127.0.0.8', '127.0.0.9'], m), undefined);
  });

  it('masks apply to the whole 32-bit code', () => {
    assert.equal(matchesRule(['127.0.0.2'], { mask: '127.0.0.2' }), '127.0.0.2');
    assert.equal(matchesRule(['127.0.0.2'], { maskAny: '0.0.1.0' }), undefined);
    assert.equal(matchesRule(['127.0.1.2'], { maskAny: '0.0.1.0' }), '127.0.1.2');
    assert.equal(matchesRule(['127.0.0.2'], { mask: '255.0.0.2' }), undefined);
  });

  it('codes: exact equality with any listed code', () => {
    const m = { codes: ['127.0.0.2', '127.0.0.4'] };
    assert.equal(matchesRule(['127.0.0.4'], m), '127.0.0.4');
    assert.equal(matchesRule(['127.0.0.3', '127.0.0.2'], m), '127.0.0.2');
    assert.equal(matchesRule(['127.0.0.6'], m), undefined);
  });
});
