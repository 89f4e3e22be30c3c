/**
 * The back end's replies, read byte by byte as an attacker would send them: how TCP splits them never
 * changes what is read, malformed or over-long input fails at once with bounded buffering, and every
 * reply must answer a command that is outstanding.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_REPLY_LINE, MAX_REPLY_LINES, ReplyParser, replyLine } from '../../src/edge/backend-reply-parser.js';
import { ReplyReader } from '../../src/edge/backend-reply-reader.js';
import { formatReply, type SmtpReply } from '../../src/net/smtp-reply.js';
import type { BackendUnavailable } from '../../src/edge/backend-unavailable.js';

/** Everything `chunks` yield, and whether the parser failed, fed in order. */
function parse(chunks: Buffer[]): { replies: SmtpReply[]; failed: boolean } {
  const p = new ReplyParser();
  const replies: SmtpReply[] = [];
  for (const c of chunks) p.push(c, (r) => replies.push(r));
  return { replies, failed: p.error !== undefined };
}

/** `bytes` cut at the given points. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

const text = fc.string({ unit: fc.constantFrom(...'abc XYZ 0189.-:;<>[]=+\t'.split('')), maxLength: 30 });
const wellFormed: fc.Arbitrary<SmtpReply> = fc.record({
  code: fc.integer({ min: 200, max: 599 }),
  enhanced: fc.constantFrom('', '2.0.0', '4.7.0', '5.1.1'),
  lines: fc.array(text, { minLength: 1, maxLength: 4 }),
});
/** Bytes a back end might send: well-formed replies mixed with arbitrary bytes and the odd bare LF. */
const wire = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: wellFormed.map((r) => Buffer.from(formatReply(r), 'latin1')) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)) },
      { weight: 1, arbitrary: fc.constantFrom(Buffer.from('250 bare LF\n'), Buffer.from('250-a\r\n'), Buffer.from('\r\n')) },
    ),
    { maxLength: 8 },
  )
  .map((parts) => Buffer.concat(parts));

describe('ReplyParser', () => {
  it('reads the same replies however the bytes are split (property)', () => {
    fc.assert(
      fc.property(wire, fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        assert.deepEqual(parse(split(bytes, cuts)), parse([bytes]));
      }),
      { numRuns: 500 },
    );
  });

  it('reads back every well-formed reply exactly, code, enhanced code and lines (property)', () => {
    fc.assert(
      fc.property(fc.array(wellFormed, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 10 }), (replies, cuts) => {
        const bytes = Buffer.from(replies.map(formatReply).join(''), 'latin1');
        const got = parse(split(bytes, cuts));
        assert.equal(got.failed, false);
        assert.deepEqual(
          got.replies.map((r) => r.code),
          replies.map((r) => r.code),
        );
        got.replies.forEach((r, i) => {
          const sent = replies[i];
          assert.ok(sent);
          assert.equal(r.enhanced, sent.enhanced || `${Math.floor(sent.code / 100)}.0.0`);
          // formatReply trims the end of a line that carries an enhanced code.
          assert.deepEqual(r.lines, sent.enhanced ? sent.lines.map((l) => l.trimEnd()) : sent.lines);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses malformed lines: a code outside 2xx-5xx, a code run into text, codes that change, control bytes', () => {
    for (const bad of ['650 x\r\n', '150 x\r\n', '2500 x\r\n', '25 x\r\n', 'x250 y\r\n', '250x\r\n', '250-a\r\n550 b\r\n', '250 a\x00b\r\n', '250 a\x7fb\r\n', '250 a\x1f\r\n', '250 a\rb\r\n', '\r\n']) {
      assert.equal(parse([Buffer.from(bad, 'latin1')]).failed, true, JSON.stringify(bad));
    }
    for (const good of ['250\r\n', '250 \r\n', '250-\r\n250 \r\n', '250 tab\there\r\n', '250 8-bit \xe9 text\r\n']) {
      assert.equal(parse([Buffer.from(good, 'latin1')]).failed, false, JSON.stringify(good));
    }
  });

  it('keeps the replies completed before a malformed line', () => {
    const got = parse([Buffer.from('250 one\r\n250 two\r\nnonsense\r\n250 three\r\n')]);
    assert.deepEqual(
      got.replies.map((r) => r.lines[0]),
      ['one', 'two'],
    );
    assert.equal(got.failed, true);
  });

  it('an endless line fails as soon as it passes the limit, and nothing more is buffered (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70_000 }), fc.constantFrom(0x78, 0x32, 0x0d), (chunkSize, byte) => {
        const p = new ReplyParser();
        const chunk = Buffer.alloc(chunkSize, byte);
        let fed = 0;
        while (!p.error && fed < 10 * MAX_REPLY_LINE) {
          p.push(chunk, () => assert.fail('no reply in an endless line'));
          fed += chunk.length;
        }
        assert.ok(p.error, 'refused');
        assert.ok(fed <= MAX_REPLY_LINE + 1 + chunkSize, `failed once past the limit (fed ${fed})`);
        assert.equal(p.pending, false, 'buffer dropped');
        p.push(Buffer.from('250 ok\r\n'), () => assert.fail('nothing is read after the failure'));
      }),
      { numRuns: 50 },
    );
  });

  it('reads a line as RFC 5321\'s reply-line pattern does: a malformed one or a control character is refused (property)', () => {
    const REPLY_LINE = /^([2-5]\d\d)(?:([ -])(.*))?$/;
    // eslint-disable-next-line no-control-regex
    const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
    const byte = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
    const line = fc.oneof(
      fc.tuple(fc.constantFrom('1', '2', '3', '5', '6', 'a'), fc.constantFrom('0', '5', 'x'), fc.constantFrom('0', '9', ''), fc.constantFrom(' ', '-', '', '0', '\t'), fc.array(byte, { maxLength: 8 }).map((b) => b.join(''))).map((p) => p.join('')),
      fc.array(byte, { maxLength: 8 }).map((b) => b.join('')),
    );
    fc.assert(
      fc.property(line, (l) => {
        const m = CONTROL.test(l) ? null : REPLY_LINE.exec(l);
        // The line read in place, between other bytes: only its own are looked at.
        const bytes = Buffer.from(`2\n${l}5\t`, 'latin1');
        assert.deepEqual(replyLine(bytes, 2, 2 + l.length), m?.[1] ? { code: Number(m[1]), more: m[2] === '-', text: m[3] ?? '' } : undefined, JSON.stringify(l));
      }),
      { numRuns: 3000 },
    );
  });

  it('bytes read into one reused buffer (the first `length` of it each time) give what the same chunks give (property)', () => {
    const reply = fc.oneof(
      fc.constantFrom('250 2.1.0 Ok', '354 End data', '550 5.1.1 <a@b> unknown', '250-one', '250 two', '220 x', '25', '250 bad\rline', '999 no'),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.array(reply, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), fc.oneof(fc.constantFrom(0x0a, 0x0d), fc.integer({ min: 0, max: 0xff })), (lines, cuts, junk) => {
        const chunks = split(Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1'), cuts);
        const shared = Buffer.alloc(1024, junk);
        const p = new ReplyParser();
        const replies: SmtpReply[] = [];
        for (const c of chunks) {
          shared.fill(junk);
          c.copy(shared);
          p.push(shared, (r) => replies.push(r), c.length);
        }
        assert.deepEqual({ replies, failed: p.error !== undefined }, parse(chunks));
      }),
      { numRuns: 500 },
    );
  });

  it('a line of exactly the limit is read; one byte more is refused', () => {
    const max = `250 ${'x'.repeat(MAX_REPLY_LINE - 4)}\r\n`;
    assert.equal(parse([Buffer.from(max)]).replies.length, 1);
    assert.equal(parse([Buffer.from(max.replace('250 ', '250 x'))]).failed, true);
  });

  it('a multi-line reply of too many lines is refused', () => {
    const ok = `${'250-x\r\n'.repeat(MAX_REPLY_LINES - 1)}250 x\r\n`;
    assert.equal(parse([Buffer.from(ok)]).replies.length, 1);
    assert.equal(parse([Buffer.from(`250-x\r\n${ok}`)]).failed, true);
  });
});

describe('ReplyReader accounting', () => {
  /** A reader owed `owed` replies, fed `sent` replies; what it read and whether it raised a protocol error. */
  async function feed(owed: number, sent: number, cuts: number[]): Promise<{ read: number; errors: number }> {
    let errors = 0;
    const reader = new ReplyReader(() => (errors += 1), { greeting: false });
    reader.expect(owed);
    const bytes = Buffer.from(Array.from({ length: sent }, (_, i) => `250-line\r\n250 reply ${i}\r\n`).join(''));
    for (const c of split(bytes, cuts)) reader.push(c);
    let read = 0;
    for (let i = 0; i < owed; i++) {
      const r = await reader.next(5, 'x').catch(() => undefined);
      if (r) read += 1;
    }
    return { read, errors };
  }

  it('replies up to the number owed are read; one more is a protocol error, raised once (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 6 }), fc.array(fc.nat(), { maxLength: 6 }), async (owed, sent, cuts) => {
        const got = await feed(owed, sent, cuts);
        assert.equal(got.errors, sent > owed ? 1 : 0);
        assert.equal(got.read, Math.min(owed, sent));
      }),
      { numRuns: 100 },
    );
  });

  it('a partial reply with nothing owed is already a protocol error', () => {
    const errors: BackendUnavailable[] = [];
    const reader = new ReplyReader((e) => errors.push(e), { greeting: true });
    reader.push(Buffer.from('220 hello\r\n25'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? '', /no command outstanding/);
    assert.equal(errors[0]?.reply.code, 451);
  });

  it('a multi-line reply whose last line has not come yet is owed, not unsolicited', () => {
    const errors: BackendUnavailable[] = [];
    const reader = new ReplyReader((e) => errors.push(e), { greeting: true });
    reader.push(Buffer.from('220-hello\r\n'));
    reader.push(Buffer.from('220 there\r\n'));
    assert.equal(errors.length, 0);
  });
});

describe("a wait's continuations (ReplyReader.next with answered and failed)", () => {
  const answered = (r: SmtpReply): string => `answered ${r.code}`;
  const failed = (err: Error): string => `failed: ${err.message}`;
  const refuse3xx = (r: SmtpReply): SmtpReply => {
    if (r.code < 400 && r.code >= 300) throw new Error(`unexpected ${r.code}`);
    return r;
  };

  it('a reply, arriving later or already read, resolves with what `answered` makes of it after the check', async () => {
    const reader = new ReplyReader(() => undefined, { greeting: false });
    reader.expect(2);
    const later = reader.next(1000, 'RCPT TO', refuse3xx, answered, failed);
    reader.push(Buffer.from('250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n'));
    assert.equal(await later, 'answered 250');
    assert.equal(await reader.next(1000, 'RCPT TO', refuse3xx, answered, failed), 'answered 250', 'the reply read before the wait');
  });

  it('a check that throws, a time-out, a protocol error and a closed connection resolve with what `failed` makes of the error', async () => {
    const refused = new ReplyReader(() => undefined, { greeting: false });
    refused.expect();
    const wait = refused.next(1000, 'RCPT TO', refuse3xx, answered, failed);
    refused.push(Buffer.from('354 go on\r\n'));
    assert.equal(await wait, 'failed: unexpected 354');

    const silent = new ReplyReader(() => undefined, { greeting: false });
    silent.expect();
    assert.equal(await silent.next(20, 'RCPT TO', refuse3xx, answered, failed), 'failed: back end unavailable: no reply to RCPT TO within 20 ms');
    assert.equal(await silent.next(20, 'RCPT TO', refuse3xx, answered, failed), 'failed: back end unavailable: no reply to RCPT TO within 20 ms', 'and every wait after it');

    const broken = new ReplyReader(() => undefined, { greeting: false });
    broken.expect();
    const brokenWait = broken.next(1000, 'RCPT TO', refuse3xx, answered, failed);
    broken.push(Buffer.from('25x nonsense\r\n'));
    assert.match(await brokenWait, /^failed: .*malformed reply line/);

    const closed = new ReplyReader(() => undefined, { greeting: false });
    closed.expect();
    const closedWait = closed.next(1000, 'RCPT TO', refuse3xx, answered, failed);
    closed.closed('connection closed');
    assert.match(await closedWait, /^failed: .*connection closed$/);
    assert.match(await closed.next(1000, 'RCPT TO', refuse3xx, answered, failed), /^failed: .*connection closed$/);
  });

  it('a continuation that throws rejects the wait with what it threw', async () => {
    const reader = new ReplyReader(() => undefined, { greeting: false });
    reader.expect(2);
    const boom = (): string => {
      throw new Error('boom');
    };
    const wait = reader.next(1000, 'RCPT TO', refuse3xx, boom, failed);
    reader.push(Buffer.from('250 Ok\r\n354 go on\r\n'));
    await assert.rejects(wait, /boom/);
    await assert.rejects(reader.next(1000, 'RCPT TO', refuse3xx, answered, boom), /boom/);
  });
});
