import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataDecoder } from '../../src/edge/data-decoder.js';
import { DotStuffer } from '../../src/edge/dot-stuffing.js';

/** What the decoder makes of `chunks`: the message so far, and what followed the end (if it came). */
function decode(chunks: Buffer[]): { data: string; rest?: string; ends: number } {
  const d = new DataDecoder();
  let data = '';
  let rest: string | undefined;
  let ends = 0;
  for (const c of chunks) {
    if (rest !== undefined) {
      rest += c.toString('latin1');
      continue;
    }
    const out = d.push(c);
    data += out.data.toString('latin1');
    if (out.rest !== undefined) {
      ends += 1;
      rest = out.rest.toString('latin1');
    }
  }
  return rest === undefined ? { data, ends } : { data, rest, ends };
}

/** The rules written out plainly, on the whole input at once: end at the first CRLF.CRLF (or a leading .CRLF). */
function oracle(raw: string): { data: string; rest?: string } {
  const crlfDot = raw.indexOf('\r\n.\r\n');
  const end = raw.startsWith('.\r\n') ? 0 : crlfDot < 0 ? -1 : crlfDot + 2;
  const body = end < 0 ? raw : raw.slice(0, end);
  let data = '';
  for (let j = 0; j < body.length; j++) {
    const escape = body[j] === '.' && (j === 0 || body[j - 1] === '\n') && body[j + 1] === '.';
    if (!escape) data += body[j];
  }
  return end < 0 ? { data } : { data, rest: raw.slice(end + 3) };
}

/** `bytes` cut at the given points. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

/** What a client's message is once its wire form was read: line ends made CRLF, the last line closed. */
function canonical(message: string): string {
  const lines = message.replace(/\r\n|\r|\n/g, '\r\n');
  return lines.endsWith('\r\n') ? lines : `${lines}\r\n`;
}

function stuffed(message: Buffer): Buffer {
  const s = new DotStuffer();
  return Buffer.concat([s.push(message), s.end()]);
}

/** Byte strings made mostly of the bytes that matter to framing. */
const framingBytes = fc
  .array(fc.constantFrom('\r', '\n', '.', '..', '\r\n', '\r\n.\r\n', 'a', ' ', '\t', '\x00', '\xff'), { maxLength: 60 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));
/** The same with long runs of ordinary bytes between them, so that dot lines are also found by the native search, past the bytes looked at one by one. */
const sparseFramingBytes = fc
  .array(fc.oneof(fc.constantFrom('\r', '\n', '.', '..', '\r\n', '\r\n.\r\n', '\n.', '\r\n..'), fc.nat({ max: 120 }).map((n) => 'x'.repeat(n))), { maxLength: 30 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));
const anyBytes = fc.oneof(framingBytes, sparseFramingBytes, fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)));
const cuts = fc.array(fc.nat(), { maxLength: 8 });

describe('DataDecoder', () => {
  it('drops escape dots and ends at CRLF.CRLF, handing back what followed', () => {
    assert.deepEqual(decode([Buffer.from('a\r\n..b\r\n.\r\nQUIT\r\n')]), { data: 'a\r\n.b\r\n', rest: 'QUIT\r\n', ends: 1 });
    assert.deepEqual(decode([Buffer.from('..\r\n...\r\n.\r\n')]), { data: '.\r\n..\r\n', rest: '', ends: 1 });
  });

  it('ends on a first line of a lone dot, but not on one sent escaped', () => {
    assert.deepEqual(decode([Buffer.from('.\r\nRSET\r\n')]), { data: '', rest: 'RSET\r\n', ends: 1 });
    assert.deepEqual(decode([Buffer.from('.'), Buffer.from('.\r\n'), Buffer.from('x\r\n.\r\n')]), { data: '.\r\nx\r\n', rest: '', ends: 1 });
  });

  it('never ends on a dot line after a bare LF or a bare CR (smuggling)', () => {
    for (const smuggle of ['a\n.\r\nMAIL FROM:<x@y>\r\n', 'a\r\n.\nMAIL FROM:<x@y>\r\n', 'a\r.\r\nMAIL FROM:<x@y>\r\n', 'a\r\n.\rMAIL\r\n']) {
      const got = decode([Buffer.from(smuggle, 'latin1')]);
      assert.equal(got.ends, 0, JSON.stringify(smuggle));
      assert.equal(got.rest, undefined);
    }
  });

  it('sees the end and escapes across chunk boundaries', () => {
    assert.deepEqual(decode([Buffer.from('a\r\n.'), Buffer.from('\r'), Buffer.from('\nNOOP\r\n')]), { data: 'a\r\n', rest: 'NOOP\r\n', ends: 1 });
    assert.deepEqual(decode([Buffer.from('a\r\n.'), Buffer.from('.b\r\n.\r\n')]), { data: 'a\r\n.b\r\n', rest: '', ends: 1 });
    assert.deepEqual(decode([Buffer.from('a\r\n.\r'), Buffer.from('x\r\n.\r\n')]), { data: 'a\r\n.\rx\r\n', rest: '', ends: 1 });
  });

  it('gives one output buffer per chunk, the chunk itself when there is nothing to drop', () => {
    const plain = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    assert.equal(new DataDecoder().push(plain).data.buffer, plain.buffer);
    const dotty = Buffer.from('..\r\n'.repeat(16 * 1024));
    const out = new DataDecoder().push(dotty);
    assert.equal(out.data.toString(), '.\r\n'.repeat(16 * 1024));
  });

  it('property: follows the plain rules, however the input is cut into chunks', () => {
    fc.assert(
      fc.property(anyBytes, cuts, (raw, at) => {
        const want = oracle(raw.toString('latin1'));
        const got = decode(split(raw, at));
        if (want.rest !== undefined) {
          assert.deepEqual(got, { ...want, ends: 1 });
        } else {
          // Up to the two bytes of an undecided `.` or `.CR` may still be held back.
          assert.equal(got.ends, 0);
          assert.ok(want.data.startsWith(got.data) && want.data.length - got.data.length <= 2);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('property: any message, dot-stuffed by the relay, decodes to itself and ends exactly once, at its end', () => {
    fc.assert(
      fc.property(anyBytes, cuts, anyBytes, (message, at, next) => {
        const wire = Buffer.concat([stuffed(message), next]);
        const got = decode(split(wire, at));
        assert.deepEqual(got, { data: canonical(message.toString('latin1')), rest: next.toString('latin1'), ends: 1 });
      }),
      { numRuns: 500 },
    );
  });
});
