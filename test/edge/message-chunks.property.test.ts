/**
 * messageChunks, a plain iterator, gives what the async generator it replaced gave: the non-empty
 * pieces in hand, then every chunk of the rest, each counted as it is handed over; a count that
 * throws (a limit passed) ends the message with that error.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { messageChunks } from '../../src/edge/data-relay.js';

async function* asGenerator(first: readonly Buffer[], rest: AsyncIterator<Buffer> | undefined, count: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (const piece of first) if (piece.length > 0) yield piece;
  if (!rest) return;
  for (let n = await rest.next(); !n.done; n = await rest.next()) {
    count(n.value);
    yield n.value;
  }
}

async function* source(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) {
    await new Promise((resolve) => setImmediate(resolve));
    yield c;
  }
}

/** What a consumer sees: the chunks and what was counted at each, then 'done' or the error. */
async function consume(chunks: AsyncIterable<Buffer>, counted: number[]): Promise<string[]> {
  const seen: string[] = [];
  try {
    for await (const c of chunks) seen.push(`${c.toString('hex')}@${counted.length}`);
    seen.push('done');
  } catch (err) {
    seen.push(`error ${(err as Error).message}`);
  }
  return seen;
}

const buf = fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b));

it('gives the pieces in hand, then the rest counted, as the generator did (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(buf, { maxLength: 4 }), fc.option(fc.array(buf, { maxLength: 5 })), fc.integer({ min: 0, max: 8 }), async (first, rest, limit) => {
      const run = async (make: typeof messageChunks): Promise<string[]> => {
        const counted: number[] = [];
        const count = (c: Buffer): void => {
          counted.push(c.length);
          if (counted.length > limit) throw new Error('limit');
        };
        return consume(make(first, rest ? source(rest) : undefined, count), counted);
      };
      assert.deepEqual(await run(messageChunks), await run(asGenerator));
    }),
    { numRuns: 300 },
  );
});
