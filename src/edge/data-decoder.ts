/**
 * The client's DATA as it arrives, un-stuffed (RFC 5321 4.5.2), up to the end-of-data line.
 *
 * The end is `CRLF . CRLF` only (a message may also open with `. CRLF`), never a dot line after a
 * bare LF or CR: that is what the edge and every back end agree on, so nothing can be smuggled past
 * the end of a message. A dot opening a line (after any LF, or at the start) followed by another dot
 * is an escape and is dropped.
 *
 * Cost follows bytes whatever the bytes are: each chunk becomes at most one output buffer (the chunk
 * itself, a slice of it, or one copy when escape dots are dropped), and at most the two bytes of an
 * undecided `.` or `.CR` at a chunk's end are carried to the next chunk. smtp-server's own decoder
 * yielded to the event loop and wrote a separate buffer, ignoring back-pressure, for every escape dot.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** Bytes looked at one by one between two native searches for a dot (see lineOpeningDot). */
const SCAN_AHEAD = 32;

/** What one chunk of input gave. */
export interface Decoded {
  /** Message bytes, un-stuffed; may be empty. */
  data: Buffer;
  /** Present once the end-of-data line was read: the input that followed it (the next commands). */
  rest?: Buffer;
}

/** Decodes one message's DATA, chunk by chunk. */
export class DataDecoder {
  /** Input bytes not yet decided on: a line-opening `.` or `.CR` at the end of the last chunk. */
  private carry: Buffer | undefined;
  /** The two input bytes before the next undecided one; the start of the data counts as after CRLF. */
  private before1 = LF;
  private before2 = CR;

  push(chunk: Buffer): Decoded {
    const input = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    // Made at the first escape dot only: most chunks have none, and are passed on as they came.
    let out: Unstuffed | undefined;
    let end = input.length;
    let rest: Buffer | undefined;
    for (let i = this.lineOpeningDot(input, 0); i >= 0; i = this.lineOpeningDot(input, i + 1)) {
      const next = input[i + 1];
      if (next === DOT) {
        (out ??= new Unstuffed(input)).drop(i);
        continue;
      }
      const ending = next === CR && this.twoBefore(input, i) === CR;
      if (next === undefined || (ending && input[i + 2] === undefined)) {
        // Undecided until the next chunk: an escape, the end, or a plain dot.
        end = i;
        this.carry = Buffer.from(input.subarray(i));
        break;
      }
      if (ending && input[i + 2] === LF) {
        end = i;
        rest = input.subarray(i + 3);
        break;
      }
    }
    const before1 = this.byteBefore(input, end);
    this.before2 = this.twoBefore(input, end);
    this.before1 = before1;
    const data = out ? out.upTo(end) : end === input.length ? input : input.subarray(0, end);
    return rest === undefined ? { data } : { data, rest };
  }

  /**
   * The first dot at or after `from` that opens a line (after an LF, or at the start of the data), or
   * -1. Bytes are looked at one by one SCAN_AHEAD at a time, and past each such run the next dot is
   * found natively (memchr's pace): a native call costs as much as a few dozen bytes looked at, so it
   * is made at most once per SCAN_AHEAD bytes whatever the bytes are (dots back to back stay as cheap
   * as a plain loop), and text with few dots is not read a byte at a time.
   */
  private lineOpeningDot(input: Buffer, from: number): number {
    for (let i = from; ; ) {
      const stop = Math.min(input.length, i + SCAN_AHEAD);
      for (; i < stop; i++) if (input[i] === DOT && this.byteBefore(input, i) === LF) return i;
      if (i >= input.length) return -1;
      const dot = input.indexOf(DOT, i);
      if (dot < 0) return -1;
      if (this.byteBefore(input, dot) === LF) return dot;
      i = dot + 1;
    }
  }

  /** The input byte before `input[i]`, the bytes before the chunk counting. */
  private byteBefore(input: Buffer, i: number): number {
    return i >= 1 ? (input[i - 1] as number) : this.before1;
  }

  private twoBefore(input: Buffer, i: number): number {
    return i >= 2 ? (input[i - 2] as number) : i === 1 ? this.before1 : this.before2;
  }
}

/** A chunk with escape dots dropped: one copy, made as they are found. */
class Unstuffed {
  private readonly copy: Buffer;
  private at = 0;
  private from = 0;

  constructor(private readonly input: Buffer) {
    this.copy = Buffer.allocUnsafe(input.length);
  }

  drop(i: number): void {
    this.run(i);
    this.from = i + 1;
  }

  upTo(end: number): Buffer {
    this.run(end);
    return this.copy.subarray(0, this.at);
  }

  /** Copies input[from, to); short runs (dot lines) byte by byte, as a native copy per run costs more. */
  private run(to: number): void {
    const copy = this.copy;
    if (to - this.from > 64) {
      this.at += this.input.copy(copy, this.at, this.from, to);
      return;
    }
    for (let k = this.from; k < to; k++) copy[this.at++] = this.input[k] as number;
  }
}
