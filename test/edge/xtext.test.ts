/** xtext (RFC 3461) as XFORWARD/XCLIENT carry it: bytes, not UTF-16 code units. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { xtext } from '../../src/edge/xtext.js';

/** An independent decoder, straight from the RFC's grammar; throws on anything that is not xtext. */
function decode(encoded: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === 0x2b) {
      const hex = encoded.slice(i + 1, i + 3);
      assert.match(hex, /^[0-9A-F]{2}$/, `hexchar at ${i}`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      assert.ok(c >= 0x21 && c <= 0x7e && c !== 0x3d, `xchar at ${i}: ${c}`);
      bytes.push(c);
    }
  }
  return Buffer.from(bytes);
}

describe('xtext', () => {
  it('decodes to the UTF-8 bytes of any string, and is printable ASCII with no bare + or = (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const encoded = xtext(s);
        assert.match(encoded, /^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/);
        assert.deepEqual(decode(encoded), Buffer.from(s, 'utf8'));
      }),
      { numRuns: 1000 },
    );
  });

  it('leaves printable ASCII as it is, apart from + and =', () => {
    assert.equal(xtext('mx.client.example'), 'mx.client.example');
    assert.equal(xtext('[IPv6:2001:db8::1]'), '[IPv6:2001:db8::1]');
    assert.equal(xtext('a+b=c d'), 'a+2Bb+3Dc+20d');
  });

  it('writes each UTF-8 byte of a non-ASCII character, never its UTF-16 code unit', () => {
    // The old encoder wrote U+2020 as "+2020": a space followed by "20" at the far end.
    assert.equal(xtext('x\u2020y'), 'x+E2+80+A0y');
    assert.equal(xtext('caf\u00e9'), 'caf+C3+A9');
    assert.equal(xtext('\u{1F600}'), '+F0+9F+98+80');
  });
});
