/**
 * The adapter's parser reads command lines off the chunk's bytes (DecodingSmtpStream._write): for any
 * input cut into any chunks, its commands, DATA messages, closes and errors come in the same order and
 * with the same bytes as from smtp-server's own _write with the same decoder, whether a command
 * answers at once or a turn later.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { DecodingSmtpStream } from '../../src/net/smtp-server-adapter.js';
import { DataDecoder } from '../../src/edge/data-decoder.js';

/** The same parser with smtp-server's own _write. */
class ReferenceStream extends DecodingSmtpStream {}
ReferenceStream.prototype._write = SMTPStream.prototype._write;

const MAX_LINE = 32;

/**
 * What a parser makes of `chunks`: each command line, each DATA message (the line `DATA` opens one),
 * `QUIT` closes the parser; a command at index i answers a turn later when `later[i]` is set.
 */
async function events(Parser: typeof DecodingSmtpStream, chunks: Buffer[], later: boolean[]): Promise<string[]> {
  // No connection: this parser's commands come to `oncommand` below.
  const parser = new Parser(undefined as never, () => new DataDecoder(), { maxCommandLength: MAX_LINE });
  const seen: string[] = [];
  let n = 0;
  // smtp-server's parser hands on a partial line left at the input's end without a callback.
  parser.oncommand = (line: Buffer, callback?: () => void): void => {
    const text = line.toString('latin1');
    seen.push(`command ${JSON.stringify(text)}`);
    if (text === 'DATA') {
      const stream = parser.startDataMode();
      const data: Buffer[] = [];
      stream.on('data', (c: Buffer) => data.push(c));
      stream.on('end', () => {
        seen.push(`message ${JSON.stringify(Buffer.concat(data).toString('latin1'))}`);
        parser.continue();
      });
    }
    if (text === 'QUIT') parser.isClosed = true;
    if (!callback) return;
    if (later[n++ % later.length]) setImmediate(callback);
    else callback();
  };
  await new Promise<void>((resolve) => {
    parser.on('error', (err: Error) => seen.push(`error ${err.message}`));
    parser.on('close', () => resolve());
    for (const c of chunks) parser.write(c);
    parser.end();
  });
  // A command answered a turn later may still read the next line after the close (smtp-server's own
  // _write does): wait until the parser has gone quiet, so the two parsers' whole sequences compare,
  // not whichever part of each happened to come before its close.
  for (let quiet = 0, turns = 0, length = -1; quiet < 3 && turns < 1000; turns++) {
    quiet = seen.length === length ? quiet + 1 : 0;
    length = seen.length;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return seen;
}

/** `input` cut at `cuts` (positions taken modulo its length). */
function cut(input: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  return [0, ...at].map((from, k) => input.subarray(from, [...at, input.length][k])).filter((c) => c.length > 0);
}

const PIECES = ['NOOP', 'MAIL FROM:<a@b.example>', 'DATA', 'QUIT', '\r\n', '\r\n', '\n', '\r', '.', '.\r\n', 'x'.repeat(20), 'body', '\u00e9\u00ff', ' '];

describe("the adapter's command-line reader", () => {
  it('gives what smtp-server gives for any input in any chunks, commands answering at once or later (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        async (pieces, cuts, later) => {
          const chunks = cut(Buffer.from(pieces.join(''), 'latin1'), cuts);
          assert.deepEqual(await events(DecodingSmtpStream, chunks, later), await events(ReferenceStream, chunks, later));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('runs a chunk of pipelined commands beyond one turn, a message and the commands after it as smtp-server does', async () => {
    const input = Buffer.from(`${'NOOP\r\n'.repeat(250)}DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nNOOP\r\n${'y'.repeat(MAX_LINE + 1)}`);
    const ours = await events(DecodingSmtpStream, [input], [false]);
    assert.equal(ours.filter((e) => e === 'command "NOOP"').length, 251);
    assert.deepEqual(ours.slice(-3), ['message "Subject: x\\r\\n\\r\\nbody\\r\\n"', 'command "NOOP"', 'error Command line too long']);
    assert.deepEqual(ours, await events(ReferenceStream, [input], [false]));
  });
});
