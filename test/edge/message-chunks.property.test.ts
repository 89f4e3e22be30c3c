/**
 * messageChunks, a plain iterator, gives what the async generator it replaced gave: the non-empty
 * pieces in hand, then every chunk of the rest, each counted as it is handed over; a count that
 * throws (a limit passed) ends the message with that error. Read as an AsyncIterable or taken piece
 * by piece (`nextPiece`, as the relay reads it), whether the rest's chunks are in hand or a turn away.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { messageChunks } from '../../src/edge/data-relay.js';
import { nextAsPromise, type MessagePieces, type PieceSource } from '../../src/edge/backend-connection.js';

async function* asGenerator(first: readonly Buffer[], rest: PieceSource | undefined, count: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (const piece of first) if (piece.length > 0) yield piece;
  if (!rest) return;
  for (let n = await nextAsPromise(rest); !n.done; n = await nextAsPromise(rest)) {
    count(n.value);
    yield n.value;
  }
}

/** The rest's chunks, each in hand or a turn of the event loop away as `later` says (a wait, then the chunk when asked again). */
function source(chunks: { bytes: Buffer; later: boolean }[]): PieceSource {
  let at = 0;
  let waited = false;
  return {
    nextPiece: () => {
      const c = chunks[at];
      if (c?.later && !waited) {
        waited = true;
        return new Promise((resolve) => setImmediate(resolve));
      }
      waited = false;
      at += 1;
      return c ? { done: false, value: c.bytes } : { done: true, value: undefined };
    },
  };
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

/** The same, taken as the relay takes them. */
async function take(chunks: MessagePieces, counted: number[]): Promise<string[]> {
  const seen: string[] = [];
  try {
    for (;;) {
      const n = chunks.nextPiece();
      if (n instanceof Promise) {
        await n;
        continue;
      }
      if (n.done) break;
      seen.push(`${n.value.toString('hex')}@${counted.length}`);
    }
    seen.push('done');
  } catch (err) {
    seen.push(`error ${(err as Error).message}`);
  }
  return seen;
}

const buf = fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b));
const chunk = fc.record({ bytes: buf, later: fc.boolean() });

it('gives the pieces in hand, then the rest counted, as the generator did, iterated or taken (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(buf, { maxLength: 4 }), fc.option(fc.array(chunk, { maxLength: 5 })), fc.integer({ min: 0, max: 8 }), async (first, rest, limit) => {
      const run = async (read: (counted: number[], count: (c: Buffer) => void) => Promise<string[]>): Promise<string[]> => {
        const counted: number[] = [];
        return read(counted, (c: Buffer): void => {
          counted.push(c.length);
          if (counted.length > limit) throw new Error('limit');
        });
      };
      const expected = await run((counted, count) => consume(asGenerator(first, rest ? source(rest) : undefined, count), counted));
      assert.deepEqual(await run((counted, count) => consume(messageChunks(first, rest ? source(rest) : undefined, count), counted)), expected);
      assert.deepEqual(await run((counted, count) => take(messageChunks(first, rest ? source(rest) : undefined, count), counted)), expected);
    }),
    { numRuns: 300 },
  );
});
