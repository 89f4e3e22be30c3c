/**
 * Holding replies for a pipelined group must never hold one for good: whatever command lines a
 * client pipelines, however its bytes are cut into segments, every line gets its reply, in order,
 * without the client sending anything more, or the session ends with a 421 (src/edge/reply-groups.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startHarness, type Harness } from '../support/edge-harness.js';

const line = fc.oneof(
  fc.constantFrom('MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.com>', 'RCPT TO:<nobody@elsewhere.example>', 'RSET', 'NOOP', 'HELP', ''),
  fc.string({ unit: fc.constantFrom(...'ABCMRST :<>@.x '.split('')), maxLength: 40 }),
);

/** The stream cut at the given points (each taken modulo its length). */
function segments(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const to of [...at, text.length]) {
    if (to > from) out.push(text.slice(from, to));
    from = to;
  }
  return out;
}

describe('reply groups: property', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('every pipelined command line is answered, in order, whatever the segments', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), async (lines, cuts) => {
        const c = await h.connect();
        try {
          assert.equal((await c.read()).code, 220);
          assert.equal((await c.cmd('EHLO client.example')).code, 250);
          const stream = `${lines.join('\r\n')}\r\nNOOP\r\n`;
          for (const s of segments(stream, cuts)) c.write(s);
          // A reply that never comes is a read that times out: the property fails there.
          const codes: number[] = [];
          for (let i = 0; i <= lines.length; i++) {
            codes.push((await c.read(3000)).code);
            // smtp-server ends a session after ten unrecognised commands: its 421 is the last reply.
            if (codes.at(-1) === 421) return assert.equal(await c.closedByServer(), true);
          }
          assert.equal(codes.at(-1), 250, `the closing NOOP is answered last: ${codes.join(' ')}`);
        } finally {
          c.quit();
        }
      }),
      { numRuns: 40 },
    );
  });
});
