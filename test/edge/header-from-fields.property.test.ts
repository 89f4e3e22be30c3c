/**
 * The From: field's value read off the header section's bytes (up to the field's end, and only while
 * they are ASCII) is what decoding and unfolding the whole section gave: for any mix of line breaks
 * (CR, LF, CRLF, folds), field names in any case, 8-bit text and JavaScript's other line terminators.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { headerFromAddress, parsedFromAddress } from '../../src/edge/header-from.js';

const PLAIN_FROM = /^\s*(?:[A-Za-z0-9 ]*<([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+)>|([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+))\s*$/;

/** The former headerFromAddress: the whole section decoded and unfolded, then searched. */
function reference(head: Buffer): string | undefined {
  const unfolded = head.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  const field = /^from:(.*)$/im.exec(unfolded);
  if (!field?.[1]) return undefined;
  const plain = PLAIN_FROM.exec(field[1]);
  if (plain) return plain[1] ?? plain[2];
  return parsedFromAddress(field[1]);
}

const PIECES = [
  'From:', 'from:', 'FROM:', 'FrOm:', 'From :', 'Fro', 'm:', 'X-From:', 'Subject: x', 'To: <u@example.test>',
  '\r\n', '\n', '\r', '\r\n ', '\n\t', '\r\n\r\n', ' ', '\t', ':',
  'a@b.example', '<c@d.example>', 'Name <e@f.example>', '"Q, R" <g@h.example>', 'x', '@', '<', '>', ';',
  '\u00e9', '\u2028', '\u2029', '\u0085', '\ufffd',
];

it('property: the From: address is the one the whole section, decoded and unfolded, gave', () => {
  const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 30 }).map((p) => p.join(''));
  const bytes = fc.oneof(
    text.map((t) => Buffer.from(t)),
    // Bytes that are no valid UTF-8 (a lead byte alone, a stray continuation byte) next to line breaks.
    fc.tuple(text, fc.constantFrom(0x80, 0xc3, 0xe2, 0xff), fc.nat()).map(([t, b, at]) => {
      const buf = Buffer.from(t);
      const i = buf.length === 0 ? 0 : at % (buf.length + 1);
      return Buffer.concat([buf.subarray(0, i), Buffer.from([b]), buf.subarray(i)]);
    }),
  );
  fc.assert(
    fc.property(bytes, (head) => {
      assert.equal(headerFromAddress(head), reference(head));
    }),
    { numRuns: 20000 },
  );
});
