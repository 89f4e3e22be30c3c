/** The Message-ID the receive server takes from a message's bytes as they pass to the queue file. */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { HeaderTap } from '../../src/transport/header-tap.js';

/** Streams `bytes` through a tap in the given chunks; what passed through, and the Message-ID found. */
async function tap(bytes: Buffer, cuts: number[]): Promise<{ passed: Buffer; messageId: string | undefined }> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  const t = new HeaderTap();
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { passed: Buffer.concat(out), messageId: t.messageId() };
}

test('the Message-ID of the header block, folded or not, in any case; none in the body or absent', async () => {
  const get = async (text: string): Promise<string | undefined> => (await tap(Buffer.from(text, 'latin1'), [3, 17])).messageId;
  assert.equal(await get('Received: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n'), '<a@b>');
  assert.equal(await get('message-id:\r\n <folded@b>\r\nSubject: s\r\n\r\n'), '<folded@b>');
  assert.equal(await get('Subject: s\r\n\r\nMessage-ID: <in-body@b>\r\n'), undefined);
  assert.equal(await get('Subject: s\r\n\r\n'), undefined);
});

test('property: every byte passes through unchanged, and the Message-ID does not depend on how the bytes were chunked', async () => {
  const headerLine = fc.oneof(
    fc.constantFrom('Subject: hello', 'Received: from a by b', 'X-Long: ' + 'y'.repeat(300)),
    fc.string({ maxLength: 40 }).map((s) => `Message-ID: <${s.replace(/[\r\n>]/g, '')}@example.test>`),
    fc.string({ maxLength: 60 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(headerLine, { maxLength: 8 }),
      fc.uint8Array({ maxLength: 400 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (lines, body, cuts) => {
        const bytes = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(body)]);
        const whole = await tap(bytes, []);
        const chunked = await tap(bytes, cuts);
        assert.deepEqual(chunked.passed, bytes);
        assert.equal(chunked.messageId, whole.messageId);
      },
    ),
    { numRuns: 150 },
  );
});
