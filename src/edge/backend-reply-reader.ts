/**
 * Replies off the back end's socket, each matched to the one command it answers.
 *
 * The parser is strict (RFC 5321 4.2): a code of 2xx-5xx followed by the end of the line, a space or a
 * hyphen; every line of a multi-line reply with the same code; bounded line length and line count, so
 * a back end cannot make the edge buffer without limit. The reader counts the commands written and
 * not yet answered: a reply (or any byte) arriving with none outstanding would shift every later reply
 * onto the wrong command, so it is a protocol error that ends the session.
 */
import { fromServerLine, fromServerLines, type SmtpReply } from '../net/smtp-reply.js';
import { passedOnReply } from './session-id-reply.js';
import { BackendTimeout, BackendUnavailable } from './backend-unavailable.js';
import { failedWith, settle, settledPromise, type ReplyCheck } from './reply-wait.js';

export const MAX_REPLY_LINE = 4096;

/** What a wait with no promise (ReplyReader.wait) resolves: nothing, its continuations having run. */
const IGNORE = (): void => undefined;
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

export type { ReplyCheck } from './reply-wait.js';

/** Reads complete replies off one connection, one wait at a time, accounting for every command. */
export class ReplyReader {
  private readonly parser = new ReplyParser();
  private ready: SmtpReply[] = [];
  /**
   * The one wait in progress, kept in fields rather than an object per wait, its promise made with a
   * per-reader executor rather than a closure per wait: a pooled connection waits thousands of times.
   */
  private resolveWait: ((v: unknown) => void) | undefined;
  private rejectWait: ((e: Error) => void) | undefined;
  private waitingFor = '';
  /** What the wait in progress passes its reply through before resolving (see next). */
  private checkWait: ReplyCheck | undefined;
  /** The wait's continuations, run as it settles (see next). */
  private answeredWait: ((r: SmtpReply) => unknown) | undefined;
  private failedWait: ((err: Error) => unknown) | undefined;
  /** A reply owed ahead of the next wait's, taken by this check with no wait of its own (see skip), and the command it answers. */
  private skipCheck: ((r: SmtpReply) => void) | undefined;
  private skipWhat = '';
  /** What a skipped reply's check threw with nobody waiting yet: the next wait fails with it. */
  private skipFailure: Error | undefined;
  private readonly captureWait = (resolve: (v: unknown) => void, reject: (e: Error) => void): void => {
    this.resolveWait = resolve;
    this.rejectWait = reject;
  };
  private failure: Error | undefined;
  /** Why the connection closed, made into an error only if someone still waits (most closes are ours). */
  private closedBecause: string | undefined;
  /** Replies owed: commands written (the greeting counts as one) and not yet answered. */
  private outstanding: number;
  /**
   * One timer for every wait of the connection's life, re-armed (refresh) rather than created per
   * reply: a pooled connection answers thousands of commands. It may fire with nobody waiting (then
   * it does nothing); it holds the process open only while someone waits.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;

  /**
   * `onProtocolError` is told once when the back end breaks the protocol, so that the session is
   * dropped at once (before a final dot could follow), not only when someone next waits.
   */
  constructor(
    private readonly onProtocolError: (err: BackendUnavailable) => void,
    { greeting }: { greeting: boolean },
  ) {
    this.outstanding = greeting ? 1 : 0;
  }

  /** `n` commands went out; each is owed one reply. */
  expect(n = 1): void {
    this.outstanding += n;
  }

  /** Whether every command written has had its reply and no part of another is buffered: the connection is between commands. */
  get idle(): boolean {
    return this.outstanding === 0 && this.ready.length === 0 && !this.parser.pending && !this.failed;
  }

  /** The first `length` bytes of `chunk` came off the connection (a shared read buffer is read no further). */
  push(chunk: Buffer, length = chunk.length): void {
    if (this.failure) return;
    this.parser.push(chunk, this.onReply, length);
    if (!this.failure) {
      if (this.parser.error) this.protocolError(this.parser.error);
      else if (this.outstanding === 0 && this.parser.pending) this.protocolError(new BackendUnavailable('bytes with no command outstanding'));
    }
    const held = this.heldReply;
    if (!held) return;
    const { heldCheck, heldAnswered, heldFailed, heldResolve, heldReject } = this;
    this.heldReply = undefined;
    this.heldCheck = undefined;
    this.heldAnswered = undefined;
    this.heldFailed = undefined;
    this.heldResolve = undefined;
    this.heldReject = undefined;
    settle(held, heldCheck, heldAnswered, heldFailed, heldResolve as (v: unknown) => void, heldReject as (e: Error) => void);
  }

  /**
   * The reply that settled the wait, and the wait, held until the rest of its read is parsed: the
   * wait's continuations (see next and wait) may write the next command (the message after a 354) and
   * wait again, or hand the session back to the pool, and must neither take a reply the back end sent
   * with this one nor miss what breaking the protocol after it did to the session, as they would not
   * a promise's turn later.
   */
  private heldReply: SmtpReply | undefined;
  private heldCheck: ReplyCheck | undefined;
  private heldAnswered: ((r: SmtpReply) => unknown) | undefined;
  private heldFailed: ((err: Error) => unknown) | undefined;
  private heldResolve: ((v: unknown) => void) | undefined;
  private heldReject: ((e: Error) => void) | undefined;

  /** One reply off the wire: to a skip's check, to the waiter, or kept for the next wait. */
  private readonly onReply = (r: SmtpReply): void => {
    if (this.failure) return;
    if (this.outstanding === 0) return this.protocolError(new BackendUnavailable(`reply with no command outstanding: ${r.code}`));
    this.outstanding -= 1;
    const skipCheck = this.skipCheck;
    if (skipCheck) return this.skipped(skipCheck, r);
    const resolve = this.resolveWait;
    if (!resolve) return void this.ready.push(r);
    const reject = this.rejectWait as (e: Error) => void;
    const check = this.checkWait;
    const answered = this.answeredWait;
    const failed = this.failedWait;
    this.endWait();
    this.timer?.unref();
    this.heldReply = r;
    this.heldCheck = check;
    this.heldAnswered = answered;
    this.heldFailed = failed;
    this.heldResolve = resolve;
    this.heldReject = reject;
  };

  /** A skipped reply came: its check passes it, or the wait in progress (or else the next one) fails with what it threw; the wait's own reply gets the time-out afresh. */
  private skipped(check: (r: SmtpReply) => void, r: SmtpReply): void {
    this.skipCheck = undefined;
    try {
      check(r);
    } catch (err) {
      if (!this.rejectWait) return void (this.skipFailure = err as Error);
      this.timer?.unref();
      return this.failWait(err as Error);
    }
    if (this.resolveWait) this.arm(this.timerMs);
  }

  fail(err: Error): void {
    this.failure ??= err;
    clearTimeout(this.timer);
    this.failWait(this.failure);
  }

  /** The wait in progress, if any, fails with `err`: through its `failed` continuation when it has one. */
  private failWait(err: Error): void {
    const resolve = this.resolveWait;
    const reject = this.rejectWait;
    const failed = this.failedWait;
    this.endWait();
    if (resolve && reject) failedWith(err, failed, resolve, reject);
  }

  private endWait(): void {
    this.resolveWait = undefined;
    this.rejectWait = undefined;
    this.checkWait = undefined;
    this.answeredWait = undefined;
    this.failedWait = undefined;
  }

  /** Whether the back end has broken the protocol, or the connection failed. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The connection is gone: a waiting reader fails now, later ones at once. */
  closed(detail: string): void {
    this.closedBecause ??= detail;
    clearTimeout(this.timer);
    if (this.rejectWait) this.fail(new BackendUnavailable(detail));
  }

  /**
   * The next reply, to `what`, passed through `check` (which may throw to fail the wait) as it comes:
   * a caller that checks every reply (backend-relay.ts) would otherwise add a promise and a turn of
   * the microtask queue to each of its five waits a message.
   */
  next(timeoutMs: number, what: string, check?: ReplyCheck): Promise<SmtpReply>;
  /**
   * As next, and the promise resolves with what `answered` makes of the checked reply, or with what
   * `failed` makes of the error the wait fails with (either may throw to reject it): the caller's
   * continuations run as the wait settles, a promise and a turn of the microtask queue less than a
   * `then` of its own.
   */
  next<T>(timeoutMs: number, what: string, check: ReplyCheck | undefined, answered: (r: SmtpReply) => T, failed: (err: Error) => T): Promise<T>;
  next(timeoutMs: number, what: string, check?: ReplyCheck, answered?: (r: SmtpReply) => unknown, failed?: (err: Error) => unknown): Promise<unknown> {
    const skipFailure = this.skipFailure;
    if (skipFailure) {
      this.skipFailure = undefined;
      return settledPromise(undefined, undefined, undefined, failed, skipFailure);
    }
    const r = this.ready.shift();
    if (r) return settledPromise(r, check, answered, failed, undefined);
    if (!this.failure && this.closedBecause !== undefined) this.failure = new BackendUnavailable(this.closedBecause);
    if (this.failure) return settledPromise(undefined, undefined, undefined, failed, this.failure);
    const wait = new Promise(this.captureWait);
    this.waitingFor = what;
    this.checkWait = check;
    this.answeredWait = answered;
    this.failedWait = failed;
    this.arm(timeoutMs);
    return wait;
  }

  /**
   * As next, with no promise: `answered` gets the checked reply, `failed` the error the wait fails with
   * (what `check` or `answered` threw included), each in the turn the wait settles, which is this one
   * when it settles at once. For a caller whose own outcome is not this wait's (DATA's 354 and final
   * dot, inside one relay of a message): a promise per wait, and the caller's turn of the microtask
   * queue on it, is left out. `failed` must not throw: there is no promise left to reject.
   */
  wait(timeoutMs: number, what: string, check: ReplyCheck, answered: (r: SmtpReply) => void, failed: (err: Error) => void): void {
    const skipFailure = this.skipFailure;
    if (skipFailure) {
      this.skipFailure = undefined;
      return failed(skipFailure);
    }
    const r = this.ready.shift();
    if (r) return settle(r, check, answered, undefined, IGNORE, failed);
    if (!this.failure && this.closedBecause !== undefined) this.failure = new BackendUnavailable(this.closedBecause);
    if (this.failure) return failed(this.failure);
    this.resolveWait = IGNORE;
    this.rejectWait = failed;
    this.waitingFor = what;
    this.checkWait = check;
    this.answeredWait = answered;
    this.failedWait = undefined;
    this.arm(timeoutMs);
  }

  /**
   * The next reply owed, to `what` (a command written together with the one the next wait is for), is
   * taken by `check` when it comes, with no wait of its own: a reply it throws at fails the wait. The
   * wait's time-out runs for this reply first, then afresh for its own, as two waits in turn did.
   */
  skip(what: string, check: (r: SmtpReply) => void): void {
    const r = this.ready.shift();
    if (r) {
      try {
        check(r);
      } catch (err) {
        this.skipFailure = err as Error;
      }
      return;
    }
    this.skipCheck = check;
    this.skipWhat = what;
  }

  private arm(ms: number): void {
    if (this.timer !== undefined && this.timerMs === ms) {
      this.timer.refresh().ref();
      return;
    }
    clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(() => this.expire(), ms);
  }

  private expire(): void {
    if (!this.rejectWait) return;
    // A reply that comes after this would answer a command nobody waits for: the connection is not reused.
    this.failure ??= new BackendTimeout(`no reply to ${this.skipCheck ? this.skipWhat : this.waitingFor} within ${this.timerMs} ms`);
    this.failWait(this.failure);
  }

  private protocolError(err: BackendUnavailable): void {
    const first = this.failure === undefined;
    this.fail(err);
    if (first) this.onProtocolError(err);
  }
}
