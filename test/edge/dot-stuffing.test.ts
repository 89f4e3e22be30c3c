import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { CrlfLines, DotStuffer } from '../../src/edge/dot-stuffing.js';
import { DataDecoder } from '../../src/edge/data-decoder.js';

/** The wire bytes our stuffer makes of `chunks`. */
function stuff(chunks: string[]): string {
  const s = new DotStuffer();
  const out = chunks.map((c) => s.push(Buffer.from(c, 'latin1')));
  out.push(s.end());
  return Buffer.concat(out).toString('latin1');
}

/** What nodemailer's DataStream, which the relay used before, makes of the same chunks. */
async function reference(chunks: string[]): Promise<string> {
  const d = new DataStream();
  const got: Buffer[] = [];
  d.on('data', (b: Buffer) => got.push(b));
  const ended = new Promise((resolve) => d.on('end', resolve));
  for (const c of chunks) d.write(Buffer.from(c, 'latin1'));
  d.end();
  await ended;
  return Buffer.concat(got).toString('latin1');
}

describe('DotStuffer', () => {
  it('doubles a dot opening a line, ends with the final dot line', () => {
    assert.equal(stuff(['Subject: x\r\n\r\n.hidden\r\n..two\r\nnot.this\r\n']), 'Subject: x\r\n\r\n..hidden\r\n...two\r\nnot.this\r\n.\r\n');
    assert.equal(stuff(['.first line\r\n']), '..first line\r\n.\r\n');
  });

  it('turns bare LF and bare CR into CRLF, so no lone CR or LF can end the data (smuggling)', () => {
    assert.equal(stuff(['a\nb\r\n']), 'a\r\nb\r\n.\r\n');
    assert.equal(stuff(['a\r.\rb\r\n']), 'a\r\n..\r\nb\r\n.\r\n');
    assert.equal(stuff(['a\n.\nQUIT\n']), 'a\r\n..\r\nQUIT\r\n.\r\n');
  });

  it('completes an open last line before the final dot', () => {
    assert.equal(stuff(['no newline']), 'no newline\r\n.\r\n');
    assert.equal(stuff(['ends in CR\r']), 'ends in CR\r\n.\r\n');
  });

  it('sees line starts across chunk boundaries', () => {
    assert.equal(stuff(['line\r', '\n', '.dot\r\n']), 'line\r\n..dot\r\n.\r\n');
    assert.equal(stuff(['line\r', '.x\r\n']), 'line\r\n..x\r\n.\r\n');
  });

  it('hands back a chunk that needs nothing added as is, and any other chunk as one buffer', () => {
    const plain = Buffer.from('abc\r\ndef\r\n');
    assert.equal(new DotStuffer().push(plain), plain);
    const bareLf = Buffer.alloc(64 * 1024, '\n');
    const out = new DotStuffer().push(bareLf);
    assert.equal(out.length, 2 * bareLf.length);
    assert.equal(out.toString('latin1'), '\r\n'.repeat(bareLf.length));
  });

  it('writes the same bytes as nodemailer DataStream for awkward input, however it is chunked', async () => {
    const text = '.a\r\nb\n.c\r.d\r\r\n\n..e\r\n.\r\nf.\r\n.';
    for (let cut = 0; cut <= text.length; cut++) {
      const chunks = [text.slice(0, cut), text.slice(cut)];
      assert.equal(stuff(chunks), await reference(chunks), `cut at ${cut}`);
    }
  });
});

describe('DotStuffer properties', () => {
  it('any byte string, however it is cut into chunks, goes on the wire as it does in one piece', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('\r', '\n', '.', '\r\n', 'a', '\xff'), { maxLength: 60 }).map((p) => p.join('')),
        fc.array(fc.nat(), { maxLength: 6 }),
        (text, cuts) => {
          const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...at].map((from, k) => text.slice(from, [...at, text.length][k]));
          assert.equal(stuff(chunks), stuff([text]));
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** What a back end in this process is handed for `chunks` (CrlfLines), as one string. */
function handedOver(chunks: string[]): string {
  const l = new CrlfLines();
  const out = chunks.map((c) => l.push(Buffer.from(c, 'latin1')));
  out.push(l.end());
  return Buffer.concat(out).toString('latin1');
}

/** What an SMTP server holds after un-stuffing the wire bytes DotStuffer makes of `text`. */
function unstuffed(text: string): string {
  const d = new DataDecoder();
  const { data, rest } = d.push(Buffer.from(stuff([text]), 'latin1'));
  assert.equal(rest?.length, 0, 'the end-of-data line ends the wire bytes');
  return data.toString('latin1');
}

describe('CrlfLines', () => {
  it('makes every line end CRLF and completes an open last line, dots untouched', () => {
    assert.equal(handedOver(['.a\nb\r.c\r\n']), '.a\r\nb\r\n.c\r\n');
    assert.equal(handedOver(['no newline']), 'no newline\r\n');
    assert.equal(handedOver(['ends in CR\r']), 'ends in CR\r\n');
    assert.equal(handedOver(['line\r', '\n', '..two\r\n']), 'line\r\n..two\r\n');
  });

  it('property: for any bytes, however cut into chunks, it hands over exactly what an SMTP server un-stuffs from the dot-stuffed wire bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('\r', '\n', '.', '..', '\r\n', '\r\n.', 'a', '\xff'), { maxLength: 60 }).map((p) => p.join('')),
        fc.array(fc.nat(), { maxLength: 6 }),
        (text, cuts) => {
          const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...at].map((from, k) => text.slice(from, [...at, text.length][k]));
          assert.equal(handedOver(chunks), unstuffed(text));
        },
      ),
      { numRuns: 300 },
    );
  });
});
