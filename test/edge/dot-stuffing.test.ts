import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { DotStuffer } from '../../src/edge/dot-stuffing.js';

/** The wire bytes our stuffer makes of `chunks`. */
function stuff(chunks: string[]): string {
  const s = new DotStuffer();
  const out = chunks.flatMap((c) => s.push(Buffer.from(c, 'latin1')));
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

  it('hands out slices of the chunk it was given, not copies', () => {
    const chunk = Buffer.from('abc\r\n.def\r\n');
    const pieces = new DotStuffer().push(chunk);
    assert.equal(pieces[0]?.buffer, chunk.buffer);
    assert.equal(pieces.at(-1)?.buffer, chunk.buffer);
  });

  it('writes the same bytes as nodemailer DataStream for awkward input, however it is chunked', async () => {
    const text = '.a\r\nb\n.c\r.d\r\r\n\n..e\r\n.\r\nf.\r\n.';
    for (let cut = 0; cut <= text.length; cut++) {
      const chunks = [text.slice(0, cut), text.slice(cut)];
      assert.equal(stuff(chunks), await reference(chunks), `cut at ${cut}`);
    }
  });
});
