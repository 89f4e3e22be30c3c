/**
 * The back end's reply lines, parsed strictly (RFC 5321 4.2): a code of 2xx-5xx followed by the end of
 * the line, a space or a hyphen; every line of a multi-line reply with the same code; bounded line
 * length and line count, so a back end cannot make the edge buffer without limit. Which command a
 * reply answers is the reader's business (backend-reply-reader.ts).
 */
import { fromServerLine, fromServerLines, type SmtpReply } from '../net/smtp-reply.js';
import { passedOnReply } from './session-id-reply.js';
import { BackendUnavailable } from './backend-unavailable.js';

export const MAX_REPLY_LINE = 4096;

export const MAX_REPLY_LINES = 200;

const LF = 0x0a;
const CR = 0x0d;

/** RFC 5321 text is printable; a control character (CR alone included, TAB allowed) would reach the client's reply. */
function isControl(b: number): boolean {
  return (b < 0x20 && b !== 0x09) || b === 0x7f;
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** One reply line: its code, whether more lines follow (`250-`), and its text. */
export interface ReplyLine {
  code: number;
  more: boolean;
  text: string;
}

/**
 * The reply line in `bytes` from `start` to `end` (`[2-5]\d\d`, then the end, or a space or hyphen and
 * the text), undefined when it is malformed or carries a control character; read off the bytes, as
 * every back-end reply passes here: only its text becomes a string.
 */
export function replyLine(bytes: Buffer, start: number, end: number): ReplyLine | undefined {
  const c0 = bytes[start] ?? 0;
  if (end - start < 3 || c0 < 0x32 || c0 > 0x35 || !isDigit(bytes[start + 1] ?? 0) || !isDigit(bytes[start + 2] ?? 0)) return undefined;
  const sep = end - start > 3 ? bytes[start + 3] : undefined;
  if (sep !== undefined && sep !== 0x20 && sep !== 0x2d) return undefined;
  for (let i = start; i < end; i++) if (isControl(bytes[i] ?? 0)) return undefined;
  const code = (c0 - 0x30) * 100 + ((bytes[start + 1] ?? 0) - 0x30) * 10 + ((bytes[start + 2] ?? 0) - 0x30);
  return { code, more: sep === 0x2d, text: end - start > 4 ? latin1(bytes, start + 4, end) : '' };
}

function latin1(bytes: Buffer, start: number, end: number): string {
  return bytes.toString('latin1', start, end);
}

/**
 * Bytes in, complete replies out. The first malformed line sets `error` for good; the replies completed
 * before it are still returned, so how the bytes were split never changes what comes out.
 */
export class ReplyParser {
  /**
   * The bytes of a line not ended yet, copied (the read buffer is used again) into one buffer made the
   * first time: a line arriving a byte at a time costs a copy of each byte once, not of all so far.
   */
  private carry: Buffer | undefined;
  private carried = 0;
  private code: number | undefined;
  private lines: string[] = [];
  error: BackendUnavailable | undefined;

  /**
   * Hands `onReply` the replies the first `length` bytes of `chunk` complete, in order (none once
   * `error` is set): a callback, not an array per chunk, as every back-end reply passes here. The
   * lines are read off the bytes, not a string of the chunk: a string's character reads went through
   * V8's generic property load, its strings coming in several representations.
   */
  push(chunk: Buffer, onReply: (r: SmtpReply) => void, length = chunk.length): void {
    if (this.error) return;
    let start = 0;
    for (let i = 0; i < length; i++) {
      if (chunk[i] !== LF) continue;
      if (this.carried > 0) {
        // The line began in an earlier read: its end joins the carried bytes, unless that passes the limit.
        const total = this.carried + i;
        if (total > MAX_REPLY_LINE + 1) return void this.stop('reply line too long');
        chunk.copy(this.carry as Buffer, this.carried, 0, i);
        this.carried = 0;
        this.take(this.carry as Buffer, 0, total, onReply);
      } else this.take(chunk, start, i, onReply);
      if (this.error) return;
      start = i + 1;
    }
    if (start === length) return;
    // One more than the limit for a CR whose LF has not arrived yet.
    if (this.carried + length - start > MAX_REPLY_LINE + 1) return void this.stop('reply line too long');
    this.carry ??= Buffer.allocUnsafe(MAX_REPLY_LINE + 1);
    this.carried += chunk.copy(this.carry, this.carried, start, length);
  }

  /** The line in `bytes` from `start` to its LF at `lf` (a CR before it dropped). */
  private take(bytes: Buffer, start: number, lf: number, onReply: (r: SmtpReply) => void): void {
    const end = lf > start && bytes[lf - 1] === CR ? lf - 1 : lf;
    const r = end - start > MAX_REPLY_LINE ? this.stop('reply line too long') : this.line(bytes, start, end);
    if (r) onReply(r);
  }

  /** Whether part of a reply (a partial line, or lines of an unfinished multi-line reply) is buffered. */
  get pending(): boolean {
    return this.carried > 0 || this.lines.length > 0;
  }

  private line(bytes: Buffer, start: number, end: number): SmtpReply | undefined {
    const l = replyLine(bytes, start, end);
    if (!l) return this.stop(`malformed reply line '${latin1(bytes, start, Math.min(end, start + 80))}'`);
    if (this.code !== undefined && l.code !== this.code) return this.stop(`multi-line reply changes code from ${this.code} to ${l.code}`);
    // A one-line reply, as nearly all are, is made without collecting its lines.
    if (!l.more && this.code === undefined) return passedOnReply(fromServerLine(l.code, l.text));
    this.code = l.code;
    this.lines.push(l.text);
    if (this.lines.length > MAX_REPLY_LINES) return this.stop('reply has too many lines');
    if (l.more) return undefined;
    const reply = passedOnReply(fromServerLines(l.code, this.lines));
    this.code = undefined;
    this.lines = [];
    return reply;
  }

  private stop(detail: string): undefined {
    this.error = new BackendUnavailable(detail);
    this.carried = 0;
    this.lines = [];
    return undefined;
  }
}
