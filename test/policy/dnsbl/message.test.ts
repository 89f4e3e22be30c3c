import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDnsblMessage } from '../../../src/policy/dnsbl/message.js';

const values = { ip: '192.0.2.66', ruleName: 'Example BL', provider: 'bl.example.net', txt: 'see http://bl.example.net/q?192.0.2.66' };

describe('formatDnsblMessage', () => {
  it('defaults to "<ip> has been blocked by <rule name>"', () => {
    assert.equal(formatDnsblMessage(undefined, values), '192.0.2.66 has been blocked by Example BL');
  });

  it('substitutes %0 %1 %2 %3 and %%', () => {
    assert.equal(
      formatDnsblMessage('The IP address %0 was rejected by block list provider %2 (%1): %3 100%%', values),
      'The IP address 192.0.2.66 was rejected by block list provider bl.example.net (Example BL): see http://bl.example.net/q?192.0.2.66 100%',
    );
  });

  it('uses an empty string for %3 when there is no TXT', () => {
    assert.equal(formatDnsblMessage('[%3]', { ip: '192.0.2.1', ruleName: 'r', provider: 'p' }), '[]');
  });

  it('does not re-expand placeholders inside substituted values', () => {
    assert.equal(formatDnsblMessage('%3', { ...values, txt: 'a %0 b' }), 'a %0 b');
    assert.equal(formatDnsblMessage('%%0', values), '%0');
  });

  it('leaves unknown placeholders as written', () => {
    assert.equal(formatDnsblMessage('%4 %x', values), '%4 %x');
  });

  it('keeps a TXT with line breaks on one reply line', () => {
    assert.equal(formatDnsblMessage('%3', { ...values, txt: 'one\r\n250 two' }), 'one 250 two');
  });
});
