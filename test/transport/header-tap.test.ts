/** The Message-ID the receive server takes from a message's bytes as they pass to the queue file. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HeaderTap } from '../../src/transport/header-tap.js';

/** Passes `bytes` through a tap in the given chunks; what passed through, and the Message-ID found. */
function tap(bytes: Buffer, cuts: number[]): { passed: Buffer; messageId: string | undefined } {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  const t = new HeaderTap();
  const out = chunks.map((c) => t.keep(c));
  return { passed: Buffer.concat(out), messageId: t.messageId() };
}

test('the Message-ID of the header block, folded or not, in any case; none in the body or absent', () => {
  const get = (text: string): string | undefined => tap(Buffer.from(text, 'latin1'), [3, 17]).messageId;
  assert.equal(get('Received: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n'), '<a@b>');
  assert.equal(get('message-id:\r\n <folded@b>\r\nSubject: s\r\n\r\n'), '<folded@b>');
  assert.equal(get('Subject: s\r\n\r\nMessage-ID: <in-body@b>\r\n'), undefined);
  assert.equal(get('Subject: s\r\n\r\n'), undefined);
});

test('property: every byte passes through unchanged, and the Message-ID does not depend on how the bytes were chunked', () => {
  const headerLine = fc.oneof(
    fc.constantFrom('Subject: hello', 'Received: from a by b', 'X-Long: ' + 'y'.repeat(300)),
    fc.string({ maxLength: 40 }).map((s) => `Message-ID: <${s.replace(/[\r\n>]/g, '')}@example.test>`),
    fc.string({ maxLength: 60 }),
  );
  fc.assert(
    fc.property(
      fc.array(headerLine, { maxLength: 8 }),
      fc.uint8Array({ maxLength: 400 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (lines, body, cuts) => {
        const bytes = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(body)]);
        const whole = tap(bytes, []);
        const chunked = tap(bytes, cuts);
        assert.deepEqual(chunked.passed, bytes);
        assert.equal(chunked.messageId, whole.messageId);
      },
    ),
    { numRuns: 150 },
  );
});
