/** Step 15's input: the header section of a message as it streams in, and the address in its From: field. */
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { IteratorPieces, type PieceSource } from './backend-connection.js';

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
export function readHeaderSection(source: AsyncIterator<Buffer>, maxBytes: number, onChunk: (chunk: Buffer) => void): Promise<HeaderSection> {
  return new Promise((resolve, reject) => readHeaderPieces(new IteratorPieces(source as AsyncIterator<Buffer, undefined>), maxBytes, onChunk, resolve, reject));
}

/**
 * readHeaderSection on a PieceSource, with continuations: `done` gets the section, `failed` what
 * `source` or `onChunk` threw; exactly one runs, once, in the turn the section is complete (this one
 * when its chunks are in hand), and neither may throw. A client's message waits for its first chunk:
 * that wait's `then` is the section's only turn of the microtask queue, where an async function's
 * await, its promise and its caller's await took three.
 */
export function readHeaderPieces(source: PieceSource, maxBytes: number, onChunk: (chunk: Buffer) => void, done: (s: HeaderSection) => void, failed: (err: unknown) => void): void {
  new HeaderReader(source, maxBytes, onChunk, done, failed).read();
}

class HeaderReader {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private tail: Buffer = EMPTY;
  private readonly resume = (): void => this.read();
  private readonly fail = (err: unknown): void => this.failed(err);

  constructor(
    private readonly source: PieceSource,
    private readonly maxBytes: number,
    private readonly onChunk: (chunk: Buffer) => void,
    private readonly done: (s: HeaderSection) => void,
    private readonly failed: (err: unknown) => void,
  ) {}

  /** Takes the pieces in hand: the section when they complete it, else a wait and again from its `then`. */
  read(): void {
    let section: HeaderSection | undefined;
    try {
      for (;;) {
        if (this.length >= this.maxBytes) {
          section = whole(Buffer.concat(this.chunks, this.length), false);
          break;
        }
        const next = this.source.nextPiece();
        if (next instanceof Promise) return void next.then(this.resume, this.fail);
        if (next.done) {
          section = whole(Buffer.concat(this.chunks, this.length), true);
          break;
        }
        section = this.take(next.value);
        if (section) break;
      }
    } catch (err) {
      return this.failed(err);
    }
    this.done(section);
  }

  /** The section, when `chunk` ends it. */
  private take(chunk: Buffer): HeaderSection | undefined {
    this.onChunk(chunk);
    const { chunks, tail } = this;
    chunks.push(chunk);
    // The first chunk is searched in place, and a header section inside it is never copied.
    const window = this.length === 0 ? chunk : Buffer.concat([tail, chunk]);
    const start = this.length - tail.length;
    this.length += chunk.length;
    const end = start === 0 ? headerEnd(window) : blankLine(window);
    if (end >= 0) {
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, this.length);
      return { head: all.subarray(0, start + end), rest: all.subarray(start + end), read: all, ended: false };
    }
    this.tail = window.subarray(Math.max(0, window.length - 3));
    return undefined;
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
  const found = asciiFromValue(head);
  const value = found === NOT_ASCII ? unfoldedFromValue(head) : found;
  if (!value) return undefined;
  const plain = PLAIN_FROM.exec(value);
  if (plain) return plain[1] ?? plain[2];
  return parsedFromAddress(value);
}

/**
 * The first From: field's value as the header section decoded and unfolded whole gives it (a line
 * break before a space or tab removed; the field's line opening after any other line break, CR, LF,
 * U+2028 or U+2029, its value ending at the next).
 */
function unfoldedFromValue(head: Buffer): string | undefined {
  const unfolded = head.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  return /^from:(.*)$/im.exec(unfolded)?.[1];
}

const NOT_ASCII = Symbol('not ASCII');
const LF = 0x0a;
const CR = 0x0d;

/** Whether the line break that ends before `next` is removed by unfolding: a space or tab follows it. */
function folds(head: Buffer, next: number): boolean {
  const b = head[next];
  return b === 0x20 || b === 0x09;
}

/**
 * unfoldedFromValue read off the bytes up to the end of the field, without decoding and unfolding the
 * whole header section (a message's From: is usually near its top); NOT_ASCII when a byte before the
 * field's end is not ASCII, whose decoding (U+2028, U+2029, replacement characters) only
 * unfoldedFromValue follows.
 */
function asciiFromValue(head: Buffer): string | undefined | typeof NOT_ASCII {
  const n = head.length;
  for (let line = 0; ; ) {
    if (
      line + 5 <= n &&
      ((head[line] as number) | 0x20) === 0x66 &&
      ((head[line + 1] as number) | 0x20) === 0x72 &&
      ((head[line + 2] as number) | 0x20) === 0x6f &&
      ((head[line + 3] as number) | 0x20) === 0x6d &&
      head[line + 4] === 0x3a
    ) {
      return asciiValue(head, line + 5);
    }
    const end = lineEnd(head, line);
    if (end === NOT_ASCII) return NOT_ASCII;
    if (end >= n) return undefined;
    line = end + 1;
  }
}

/** Where the unfolded line from `from` ends (its CR or LF, or the end of `head`); NOT_ASCII at a byte that is not ASCII. */
function lineEnd(head: Buffer, from: number): number | typeof NOT_ASCII {
  const n = head.length;
  for (let i = from; i < n; i++) {
    const b = head[i] as number;
    if (b >= 0x80) return NOT_ASCII;
    if (b === LF) {
      if (!folds(head, i + 1)) return i;
    } else if (b === CR) {
      if (head[i + 1] !== LF || !folds(head, i + 2)) return i;
      i += 1;
    }
  }
  return n;
}

/** The unfolded value from `start` to its line's end; NOT_ASCII as lineEnd. */
function asciiValue(head: Buffer, start: number): string | typeof NOT_ASCII {
  const end = lineEnd(head, start);
  if (end === NOT_ASCII) return NOT_ASCII;
  const text = head.toString('latin1', start, end);
  return text.includes('\n') ? text.replace(/\r?\n/g, '') : text;
}

/** The first mailbox address in a From: field's value, by the full RFC 5322 address parser. */
export function parsedFromAddress(value: string): string | undefined {
  for (const entry of addressparser(value, { flatten: true })) {
    if (entry.address) return entry.address;
  }
  return undefined;
}
