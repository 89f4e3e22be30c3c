import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import fc from 'fast-check';
import { streamPair, type PairedSocket } from '../../src/net/stream-pair.js';

const EDGE = { address: '127.0.0.1', port: 0 };
const ENGINE = { address: '127.0.0.1', port: 2526 };

/** Everything `end` reads until it sees the other side's end, taken in as the bytes arrive. */
async function readAll(end: PairedSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of end) {
    chunks.push(chunk as Buffer);
    // A slow reader now and then, so that the writer's held writes and 'drain' are exercised.
    if (chunks.length % 3 === 0) await new Promise((r) => setImmediate(r));
  }
  return Buffer.concat(chunks);
}

/** Resolves once `end` has closed (at once if it already has). */
function closeOf(end: PairedSocket): Promise<unknown> {
  return end.closed ? Promise.resolve() : once(end, 'close');
}

type Op = { kind: 'write'; bytes: Uint8Array } | { kind: 'cork' } | { kind: 'uncork' } | { kind: 'drain' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40_000 }).map((bytes) => ({ kind: 'write' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'cork' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'uncork' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

test('stream pair: any sequence of writes, corks and waits arrives on the other end byte for byte, in order, then the end', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 30 }), fc.boolean(), async (ops, fromEdge) => {
      const [edge, engine] = streamPair(EDGE, ENGINE);
      const [writer, reader] = fromEdge ? [edge, engine] : [engine, edge];
      const received = readAll(reader);
      const sent: Buffer[] = [];
      for (const o of ops) {
        if (o.kind === 'write') {
          const piece = Buffer.from(o.bytes);
          sent.push(piece);
          writer.write(piece);
        } else if (o.kind === 'cork') writer.cork();
        else if (o.kind === 'uncork') writer.uncork();
        else if (writer.writableNeedDrain) {
          // Drain comes only once the corked writes have gone out.
          while (writer.writableCorked > 0) writer.uncork();
          await once(writer, 'drain');
        }
      }
      writer.end();
      assert.deepEqual(await received, Buffer.concat(sent));
      // allowHalfOpen is off, as on a TCP socket: the reader ends its side too, and both close.
      writer.resume();
      await Promise.all([closeOf(writer), closeOf(reader)]);
      assert.equal(writer.readyState, 'closed');
      assert.equal(reader.readyState, 'closed');
    }),
    { numRuns: 60 },
  );
});

test('stream pair: destroying either end, at any point of a transfer, closes both, and no write is left waiting', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 30_000 }), { maxLength: 8 }), fc.boolean(), fc.boolean(), async (pieces, destroyWriter, withError) => {
      const [writer, reader] = streamPair(EDGE, ENGINE);
      // once() would reject on 'error'; only the close is awaited here.
      const closed = Promise.all([writer, reader].map((end) => new Promise((resolve) => end.once('close', resolve))));
      const errors: Error[] = [];
      writer.on('error', (e: Error) => errors.push(e));
      reader.on('error', (e: Error) => errors.push(e));
      // Nobody reads: whatever passes the high-water mark is held by the writer.
      const callbacks = pieces.map((p) => new Promise<void>((resolve) => writer.write(Buffer.from(p), () => resolve())));
      const victim = destroyWriter ? writer : reader;
      victim.destroy(withError ? new Error('reset') : undefined);
      await closed;
      await Promise.all(callbacks);
      assert.equal(writer.destroyed && reader.destroyed, true);
      assert.equal(writer.readyState, 'closed');
      assert.equal(reader.readyState, 'closed');
      // Only the end destroyed with an error reports it; its peer just closes, as on a reset.
      assert.deepEqual(
        errors.map((e) => e.message),
        withError ? ['reset'] : [],
      );
    }),
    { numRuns: 60 },
  );
});

test('stream pair: each end names the other as its remote address, and writes after the peer is gone fail as EPIPE', async () => {
  const [edge, engine] = streamPair(EDGE, ENGINE);
  assert.deepEqual([engine.remoteAddress, engine.remotePort, engine.localAddress, engine.localPort], ['127.0.0.1', 0, '127.0.0.1', 2526]);
  assert.deepEqual([edge.remoteAddress, edge.remotePort], ['127.0.0.1', 2526]);
  assert.equal(edge.readyState, 'open');
  edge.resume();
  engine.resume();
  engine.end();
  await once(edge, 'end');
  await closeOf(edge);
  await closeOf(engine);
  assert.equal(edge.readyState, 'closed', 'an end that read its peer end ends too: both close');
  const [a, b] = streamPair(EDGE, ENGINE);
  b.on('error', () => undefined);
  b.destroy();
  const err = await new Promise<Error | null | undefined>((resolve) => a.write('late', resolve));
  assert.ok(err, 'the write after the peer was destroyed fails');
});

test('stream pair: setTimeout emits timeout after the given idle time, and traffic either way pushes it back', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const [edge, engine] = streamPair(EDGE, ENGINE);
  engine.resume();
  edge.resume();
  let timeouts = 0;
  engine.setTimeout(1000, () => (timeouts += 1));
  t.mock.timers.tick(900);
  edge.write('EHLO x\r\n');
  t.mock.timers.tick(900);
  engine.write('250 ok\r\n');
  t.mock.timers.tick(900);
  assert.equal(timeouts, 0, 'bytes read and written both count as activity');
  t.mock.timers.tick(100);
  assert.equal(timeouts, 1);
  engine.setTimeout(0);
  t.mock.timers.tick(5000);
  assert.equal(timeouts, 1, '0 disarms it');
  edge.destroy();
});
