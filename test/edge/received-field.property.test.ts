/**
 * The Received: field's bytes, copied together from the opening's bytes, the cleaned recipient and
 * the date's line, are the UTF-8 bytes of the field as one joined string made them: whatever the
 * opening holds (a configured host name may be non-ASCII), whatever a client wrote as the recipient,
 * at any date, and with the second's cached date line from an earlier call.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { receivedField, rfc5322Date } from '../../src/edge/received-header.js';

/** The field as a joined string, encoded once: what the edge sent before. */
function joined(opening: string, recipient: string | undefined, date: Date): Buffer {
  const forClause = recipient ? `\r\n\tfor <${recipient.replace(/[^\x21-\x7e]/g, '?')}>` : '';
  return Buffer.from(`${opening}${forClause};\r\n\t${rfc5322Date(date)}\r\n`);
}

it('property: the field is the UTF-8 of the joined string, for any opening, recipient and date', () => {
  const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', 'a@example.test', 'j\u00f6rg@b\u00fccher.example', 'x\r\ny@z', '\u0000<>'));
  const date = fc.integer({ min: 0, max: 4102444800000 }).map((ms) => new Date(ms));
  fc.assert(
    fc.property(text, fc.option(text, { nil: undefined }), date, fc.option(date, { nil: undefined }), (opening, recipient, at, earlier) => {
      if (earlier) receivedField(Buffer.from('x'), undefined, earlier);
      assert.deepEqual(receivedField(Buffer.from(opening), recipient, at), joined(opening, recipient, at));
    }),
    { numRuns: 2000 },
  );
});
