/**
 * The adapter writes a whole reply itself: for any reply (codes, enhanced codes, several lines, control
 * characters in the text), the bytes, the session's `error` and the close after a 421 are what
 * smtp-server's own send gives the reply's lines.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { AdaptedConnection } from '../../src/net/smtp-server-adapter.js';
import { replyTexts, type SmtpReply } from '../../src/net/smtp-reply.js';

interface Seen {
  written: string[];
  error: unknown;
  closed: number;
}

/** A connection's state as send reads it, recording what is written and whether it closes. */
function connectionLike(proto: object, seen: Seen, state: { upgrading: boolean; open: boolean }): Record<string, unknown> {
  const self = Object.create(proto) as Record<string, unknown>;
  Object.assign(self, {
    id: 'test',
    session: {},
    _upgrading: state.upgrading,
    _socket: { destroyed: false, readyState: state.open ? 'open' : 'writeOnly', write: (s: string) => seen.written.push(s) },
    _server: { options: {}, logger: { debug: () => undefined } },
    close: () => (seen.closed += 1),
  });
  return self;
}

const text = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('Ok', '', ' ', 'a\r\nb', 'x\u0085y', 'tab\there', 'trailing  ', '\u009f'));
const replyArb = fc.record({
  code: fc.constantFrom(220, 221, 250, 354, 421, 450, 451, 500, 550, 554),
  enhanced: fc.constantFrom('', '2.0.0', '4.7.0', '5.1.1'),
  lines: fc.array(text, { maxLength: 3 }),
});

it('writes what smtp-server\'s send writes for the reply\'s lines (property)', () => {
  fc.assert(
    fc.property(replyArb, fc.boolean(), fc.boolean(), (r: SmtpReply, upgrading, open) => {
      const ours: Seen = { written: [], error: undefined, closed: 0 };
      const theirs: Seen = { written: [], error: undefined, closed: 0 };
      const a = connectionLike(AdaptedConnection.prototype, ours, { upgrading, open });
      const b = connectionLike(SMTPConnection.prototype, theirs, { upgrading, open });
      (AdaptedConnection.prototype.writeReply as (this: unknown, r: SmtpReply, close: boolean) => void).call(a, r, false);
      (SMTPConnection.prototype.send as (this: unknown, code: number, data: string[], context: false) => void).call(b, r.code, replyTexts(r), false);
      assert.deepEqual(ours.written, theirs.written);
      assert.equal((a.session as { error?: string }).error, (b.session as { error?: string }).error);
      assert.equal(ours.closed, theirs.closed);
    }),
    { numRuns: 3000 },
  );
});
