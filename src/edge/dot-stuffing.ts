/**
 * The message as it goes on the wire after DATA (RFC 5321 4.5.2): a dot opening a line is doubled,
 * bare CR and bare LF become CRLF (so no receiver can read a lone CR or LF as a line end: SMTP
 * smuggling), and the final `.` line is added. Same rules as nodemailer's DataStream. A back end in
 * this process takes the message as its SMTP server would hold it after un-stuffing (CrlfLines): the
 * same line ends, no doubled dots, no final `.` line.
 *
 * Cost follows bytes whatever the bytes are: a chunk that needs nothing added is handed back as is,
 * any other chunk becomes exactly one new buffer. Handing out slices and shared inserts instead made
 * a body of bare LFs two Buffer objects and two socket writes per input byte (~45 bytes of memory per
 * byte relayed).
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const END_AFTER_LF = Buffer.from('.\r\n');
const END_AFTER_CR = Buffer.from('\n.\r\n');
const END_OTHERWISE = Buffer.from('\r\n.\r\n');
const NOTHING = Buffer.alloc(0);
const LF_ONLY = Buffer.from('\n');
const CRLF = Buffer.from('\r\n');

/** Makes every line end CRLF, chunk by chunk, doubling line-opening dots when `stuffDots`. */
class LineEncoder {
  /** The last byte seen; undefined at the start of the message (which is the start of a line). */
  protected last: number | undefined;

  constructor(private readonly stuffDots: boolean) {}

  /** The bytes for `chunk`: `chunk` itself when nothing is added, else one new buffer. */
  push(chunk: Buffer): Buffer {
    const start = this.last;
    const stuff = this.stuffDots;
    if (this.clean(chunk, start)) {
      if (chunk.length > 0) this.last = chunk[chunk.length - 1];
      return chunk;
    }
    let extra = 0;
    let prev = start;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (prev === CR && byte !== LF) extra += 1; // LF
      else if (byte === LF && prev !== CR) extra += 1; // CR
      if (stuff && byte === DOT && (prev === LF || prev === CR || prev === undefined)) extra += 1; // the dot doubled
      prev = byte;
    }
    this.last = prev;
    if (extra === 0) return chunk;
    const out = Buffer.allocUnsafe(chunk.length + extra);
    let at = 0;
    prev = start;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (prev === CR && byte !== LF) out[at++] = LF;
      else if (byte === LF && prev !== CR) out[at++] = CR;
      if (stuff && byte === DOT && (prev === LF || prev === CR || prev === undefined)) out[at++] = DOT;
      out[at++] = byte;
      prev = byte;
    }
    return out;
  }

  /**
   * Whether `chunk`, after `prev`, needs nothing added: each LF after a CR, each CR before an LF (or
   * last), no dot opening a line when stuffing. Found with indexOf over the line ends rather than a
   * look at every byte, which costs a message of ordinary lines several times as much.
   */
  private clean(chunk: Buffer, prev: number | undefined): boolean {
    const n = chunk.length;
    if (n === 0) return true;
    const first = chunk[0] as number;
    if (prev === CR ? first !== LF : first === LF) return false;
    const stuff = this.stuffDots;
    if (stuff && first === DOT && (prev === LF || prev === undefined)) return false;
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      if (i > 0 && chunk[i - 1] !== CR) return false;
      if (stuff && chunk[i + 1] === DOT) return false;
    }
    for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
      if (i + 1 < n && chunk[i + 1] !== LF) return false;
    }
    return true;
  }
}

/** Dot-stuffs one message, chunk by chunk. */
export class DotStuffer extends LineEncoder {
  constructor() {
    super(true);
  }

  /** The end-of-data line, completing a last line the message left open. */
  end(): Buffer {
    if (this.last === LF) return END_AFTER_LF;
    if (this.last === CR) return END_AFTER_CR;
    return END_OTHERWISE;
  }
}

/** One message's line ends made CRLF, chunk by chunk, as a back end holds it after un-stuffing what DotStuffer sends. */
export class CrlfLines extends LineEncoder {
  constructor() {
    super(false);
  }

  /** What completes a last line the message left open (it ends with CRLF, as after the end-of-data line). */
  end(): Buffer {
    if (this.last === LF) return NOTHING;
    if (this.last === CR) return LF_ONLY;
    return CRLF;
  }
}
