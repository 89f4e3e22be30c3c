import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BackendUnavailable, TEMPORARY_SERVER_ERROR } from '../../src/edge/backend-unavailable.js';
import { formatReply, fromServerLines, reply, SmtpError } from '../../src/net/smtp-reply.js';
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
