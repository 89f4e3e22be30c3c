/** Step 15's input: the header section of a message as it streams in, and the address in its From: field. */
import addressparser from 'nodemailer/lib/addressparser/index.js';

const EMPTY = Buffer.alloc(0);

/** The header section (up to and including the blank line) and whatever of the body came with it. */
export interface HeaderSection {
  head: Buffer;
  rest: Buffer;
  /**
   * Everything read: `head` then `rest`, which are views of it. Relayed as one piece rather than two,
   * the message takes one turn of its reader and one socket write less.
   */
  read: Buffer;
  /** The message ended before (or with) the header section. */
  ended: boolean;
}

/**
 * Reads chunks until the blank line that ends the header section, the end of the message, or
 * `maxBytes` (a header section that long is judged on what arrived). `onChunk` sees every chunk read.
 * Each chunk is searched once (with the three bytes before it) and the chunks are joined once: a
 * header section sent in many small pieces costs what it would in one.
 */
export async function readHeaderSection(
  source: AsyncIterator<Buffer>,
  maxBytes: number,
  onChunk: (chunk: Buffer) => void,
): Promise<HeaderSection> {
  const chunks: Buffer[] = [];
  let length = 0;
  let tail: Buffer = EMPTY;
  for (;;) {
    if (length >= maxBytes) return whole(Buffer.concat(chunks, length), false);
    const next = await source.next();
    if (next.done) return whole(Buffer.concat(chunks, length), true);
    onChunk(next.value);
    chunks.push(next.value);
    // The first chunk is searched in place, and a header section inside it is never copied.
    const window = length === 0 ? next.value : Buffer.concat([tail, next.value]);
    const start = length - tail.length;
    length += next.value.length;
    const end = start === 0 ? headerEnd(window) : blankLine(window);
    if (end >= 0) {
      const all = chunks.length === 1 ? next.value : Buffer.concat(chunks, length);
      return { head: all.subarray(0, start + end), rest: all.subarray(start + end), read: all, ended: false };
    }
    tail = window.subarray(Math.max(0, window.length - 3));
  }
}

/** A header section that is everything read (no blank line ended it). */
function whole(head: Buffer, ended: boolean): HeaderSection {
  return { head, rest: EMPTY, read: head, ended };
}

/** Offset just past the blank line ending the header section, or -1. A message may open with it. */
function headerEnd(buf: Buffer): number {
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  if (buf[0] === 0x0a) return 1;
  return blankLine(buf);
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const LF_LF = Buffer.from('\n\n');

/**
 * Offset just past the first blank line (CRLF CRLF or LF LF) inside `buf`, or -1. An LF LF wins only
 * if it starts before the CRLF CRLF's second CRLF, so once a CRLF CRLF is found only the bytes before
 * it are searched (backwards) for one: the body after the header section is scanned once, not twice.
 * The needles are buffers: a string needle is encoded again at every search.
 */
function blankLine(buf: Buffer): number {
  const crlf = buf.indexOf(CRLF_CRLF);
  if (crlf >= 0 && buf.lastIndexOf(LF_LF, crlf + 1) < 0) return crlf + 4;
  const lf = buf.indexOf(LF_LF);
  if (crlf >= 0 && (lf < 0 || crlf + 2 <= lf)) return crlf + 4;
  return lf >= 0 ? lf + 2 : -1;
}

/**
 * The plain forms most mail writes, `a@b.example`, `<a@b.example>` and `Name <a@b.example>` (letters,
 * digits and `._+-` in the address, words in the name), read without the full parser, which takes a
 * few microseconds per message; they give exactly what it would.
 */
const PLAIN_FROM = /^\s*(?:[A-Za-z0-9 ]*<([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+)>|([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+))\s*$/;

/** The first mailbox address in the first From: field, or undefined when there is none. */
export function headerFromAddress(head: Buffer): string | undefined {
  const unfolded = head.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  const field = /^from:(.*)$/im.exec(unfolded);
  if (!field?.[1]) return undefined;
  const plain = PLAIN_FROM.exec(field[1]);
  if (plain) return plain[1] ?? plain[2];
  return parsedFromAddress(field[1]);
}

/** The first mailbox address in a From: field's value, by the full RFC 5322 address parser. */
export function parsedFromAddress(value: string): string | undefined {
  for (const entry of addressparser(value, { flatten: true })) {
    if (entry.address) return entry.address;
  }
  return undefined;
}
