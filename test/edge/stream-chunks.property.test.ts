/**
 * StreamChunks reads a message stream as Node's own async iterator does: for any chunks written, at
 * any pace, the same bytes then done; the stream's error when it fails; a premature-close error when
 * it is destroyed before its end. One reader reading a session's messages in turn gives each its own
 * outcome, whatever the message before it came to (its stream, listened to no more, may still emit);
 * a stream read to its end is `finished`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { StreamChunks } from '../../src/edge/stream-chunks.js';

type Ending = 'end' | 'error' | 'destroy';

/** Feeds `chunks` into a fresh PassThrough (some at once, some a turn later), then ends it as `ending` says. */
function feed(chunks: { bytes: Uint8Array; later: boolean }[], ending: Ending): PassThrough {
  const s = new PassThrough();
  void (async () => {
    for (const c of chunks) {
      if (c.later) await new Promise((resolve) => setImmediate(resolve));
      s.write(Buffer.from(c.bytes));
    }
    await new Promise((resolve) => setImmediate(resolve));
    if (ending === 'end') s.end();
    else if (ending === 'error') s.destroy(new Error('boom'));
    else s.destroy();
  })();
  return s;
}

/** Everything an iterator gives: the bytes, then 'done' or the error's message and code. */
async function drain(it: AsyncIterator<Buffer>): Promise<{ bytes: Buffer; end: string }> {
  const got: Buffer[] = [];
  try {
    for (let n = await it.next(); !n.done; n = await it.next()) got.push(n.value);
    return { bytes: Buffer.concat(got), end: 'done' };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { bytes: Buffer.concat(got), end: `${e.message} ${e.code ?? ''}` };
  }
}

const chunks = fc.array(fc.record({ bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }), later: fc.boolean() }), { maxLength: 12 });

describe('StreamChunks', () => {
  it('gives what Node\'s async iterator gives, for any chunks at any pace and any ending (property)', async () => {
    await fc.assert(
      fc.asyncProperty(chunks, fc.constantFrom<Ending>('end', 'error', 'destroy'), async (cs, ending) => {
        const reader = new StreamChunks().read(feed(cs, ending));
        assert.equal(reader.finished, false);
        const ours = await drain(reader);
        // Only a stream read to its end is finished: the DATA path then reads it no more.
        assert.equal(reader.finished, ending === 'end');
        const node = await drain(feed(cs, ending)[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
        assert.equal(ours.end, node.end);
        // A stream that fails may drop what it buffered: only what both read in full is compared then.
        if (ending === 'end') assert.deepEqual(ours.bytes, node.bytes);
        assert.deepEqual(ours.bytes, Buffer.concat(cs.map((c) => Buffer.from(c.bytes))).subarray(0, ours.bytes.length));
      }),
      { numRuns: 300 },
    );
  });

  it('destroys the stream once its end has been read, as Node\'s iterator does', async () => {
    const s = new PassThrough();
    s.end(Buffer.from('x'));
    const it = new StreamChunks().read(s);
    assert.equal((await it.next()).done, false);
    assert.equal((await it.next()).done, true);
    assert.equal(s.destroyed, true);
  });

  it('reads a session\'s messages in turn, each to its own outcome whatever the one before came to (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(chunks, fc.constantFrom<Ending>('end', 'error', 'destroy')), { minLength: 1, maxLength: 5 }), async (messages) => {
        const reader = new StreamChunks();
        for (const [cs, ending] of messages) {
          const ours = await drain(reader.read(feed(cs, ending)));
          const alone = await drain(new StreamChunks().read(feed(cs, ending)));
          assert.deepEqual(ours, alone);
        }
      }),
      { numRuns: 150 },
    );
  });

  for (const late of ['error', 'end', 'close', 'readable'] as const) {
    it(`an earlier message's stream emitting '${late}' late does not end or wake the message being read`, async () => {
      const reader = new StreamChunks();
      const first = new PassThrough();
      first.end(Buffer.from('one'));
      assert.deepEqual(await drain(reader.read(first)), { bytes: Buffer.from('one'), end: 'done' });
      const second = new PassThrough();
      const reading = drain(reader.read(second));
      if (late === 'error') first.emit('error', new Error('late'));
      else first.emit(late);
      await new Promise((resolve) => setImmediate(resolve));
      second.write(Buffer.from('tw'));
      await new Promise((resolve) => setImmediate(resolve));
      second.end(Buffer.from('o'));
      assert.deepEqual(await reading, { bytes: Buffer.from('two'), end: 'done' });
    });
  }
});
