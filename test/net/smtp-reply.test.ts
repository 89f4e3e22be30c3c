import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BackendUnavailable, TEMPORARY_SERVER_ERROR } from '../../src/edge/backend-unavailable.js';
import { enhancedCodeLength, formatReply, fromServerLine, fromServerLines, reply, SmtpError, splitEnhanced } from '../../src/net/smtp-reply.js';
import { LocalDeliveryError } from '../../src/transport/local-delivery.js';

test('every failure that becomes an SMTP reply carries it the same way, as an SmtpError', () => {
  const cause = new Error('ENOSPC');
  const errors: [SmtpError, string][] = [
    [new SmtpError(reply(552, '5.3.4', 'Message size exceeds fixed maximum message size')), '552 5.3.4 Message size exceeds fixed maximum message size\r\n'],
    [new BackendUnavailable('connection refused'), formatReply(TEMPORARY_SERVER_ERROR)],
    [new LocalDeliveryError(452, '4.3.1', 'Insufficient system storage delivering to a@b.test', { cause }), '452 4.3.1 Insufficient system storage delivering to a@b.test\r\n'],
  ];
  for (const [err, wire] of errors) {
    assert.ok(err instanceof SmtpError, err.name);
    assert.equal(formatReply(err.reply), wire);
    assert.equal(err.responseCode, err.reply.code);
  }
  assert.equal(errors[2]![0].cause, cause);
  assert.match(errors[1]![0].message, /back end unavailable: connection refused/);
});

test('a reply read from a server formats back to the lines it came as, enhanced code kept or added', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'B', ' ', '.', '<', '>', '@', '1'), maxLength: 40 });
  fc.assert(
    fc.property(fc.integer({ min: 200, max: 599 }), fc.option(fc.constantFrom('2.0.0', '4.7.1', '5.1.10'), { nil: undefined }), fc.array(text, { minLength: 1, maxLength: 4 }), (code, enhanced, lines) => {
      const r = fromServerLines(code, lines.map((l) => (enhanced ? `${enhanced} ${l}` : l)));
      assert.equal(r.code, code);
      assert.match(r.enhanced, /^\d\.\d{1,3}\.\d{1,3}$/);
      const wire = formatReply(r).split('\r\n').slice(0, -1);
      assert.equal(wire.length, lines.length);
      wire.forEach((w, i) => assert.ok(w.startsWith(`${code}${i < lines.length - 1 ? '-' : ' '}${r.enhanced}`), w));
    }),
    { numRuns: 200 },
  );
});

/** The enhanced code as RFC 3463's grammar reads it at the start of a reply's text, with a regular expression. */
const ENHANCED_PREFIX = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;
const replyText = fc.oneof(
  fc.tuple(fc.constantFrom('2', '4', '5', '3', '0', 'x', ''), fc.constantFrom('.', ',', ''), fc.stringMatching(/^[0-9]{0,5}$/), fc.constantFrom('.', ''), fc.stringMatching(/^[0-9]{0,5}$/), fc.constantFrom(' ', '', 'x', '\t', ' text', '0')).map((p) => p.join('')),
  fc.string({ maxLength: 12 }),
);

test('the enhanced code at the start of a text is what RFC 3463\'s pattern matches, and is taken off every line that has one (property)', () => {
  fc.assert(
    fc.property(replyText, fc.array(replyText, { maxLength: 3 }), fc.integer({ min: 200, max: 599 }), (first, more, code) => {
      const m = ENHANCED_PREFIX.exec(first);
      assert.equal(enhancedCodeLength(first), m ? `${m[1]}.${m[2]}.${m[3]}`.length : 0, JSON.stringify(first));
      assert.deepEqual(splitEnhanced(first), m ? { enhanced: `${m[1]}.${m[2]}.${m[3]}`, text: first.slice(m[0].length) } : undefined);
      const texts = [first, ...more];
      const expected = m
        ? { code, enhanced: `${m[1]}.${m[2]}.${m[3]}`, lines: texts.map((t) => t.replace(ENHANCED_PREFIX, '')) }
        : { code, enhanced: `${Math.floor(code / 100)}.0.0`, lines: texts };
      assert.deepEqual(fromServerLines(code, [...texts]), expected);
      assert.deepEqual(fromServerLine(code, first), fromServerLines(code, [first]));
    }),
    { numRuns: 3000 },
  );
});
