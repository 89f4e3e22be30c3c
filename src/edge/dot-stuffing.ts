/**
 * The message as it goes on the wire after DATA (RFC 5321 4.5.2): a dot opening a line is doubled,
 * bare CR and bare LF become CRLF (so no receiver can read a lone CR or LF as a line end: SMTP
 * smuggling), and the final `.` line is added. Same rules as nodemailer's DataStream, but it hands out
 * slices of the chunks it was given plus shared constants, never copies, so relaying adds no
 * per-byte allocation.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');
const END_AFTER_LF = Buffer.from('.\r\n');
const END_AFTER_CR = Buffer.from('\n.\r\n');
const END_OTHERWISE = Buffer.from('\r\n.\r\n');

/** Dot-stuffs one message, chunk by chunk. */
export class DotStuffer {
  /** The last byte seen; undefined at the start of the message (which is the start of a line). */
  private last: number | undefined;

  /** The wire pieces for `chunk`, in order; they share memory with `chunk`. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    const out: Buffer[] = [];
    let from = 0;
    let prev = this.last;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      let insert: Buffer | undefined;
      if (prev === CR && byte !== LF) insert = byte === DOT ? INSERT_LF_DOT : INSERT_LF;
      else if (byte === LF && prev !== CR) insert = INSERT_CR;
      else if (byte === DOT && (prev === LF || prev === undefined)) insert = INSERT_DOT;
      if (insert) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(insert);
        from = i;
      }
      prev = byte;
    }
    out.push(from === 0 ? chunk : chunk.subarray(from));
    this.last = prev;
    return out;
  }

  /** The end-of-data line, completing a last line the message left open. */
  end(): Buffer {
    if (this.last === LF) return END_AFTER_LF;
    if (this.last === CR) return END_AFTER_CR;
    return END_OTHERWISE;
  }
}
