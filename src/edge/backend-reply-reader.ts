/**
 * Replies off the back end's socket, each matched to the one command it answers.
 *
 * The lines are parsed by backend-reply-parser.ts. The reader counts the commands written and not yet
 * answered: a reply (or any byte) arriving with none outstanding would shift every later reply onto
 * the wrong command, so it is a protocol error that ends the session.
 */
import type { SmtpReply } from '../net/smtp-reply.js';
import { ReplyParser } from './backend-reply-parser.js';
import { BackendTimeout, BackendUnavailable } from './backend-unavailable.js';
import { settle, settledPromise, WaitEnds, type ReplyCheck } from './reply-wait.js';

/** What a wait with no promise (ReplyReader.wait) resolves: nothing, its continuations having run. */
const IGNORE = (): void => undefined;

export type { ReplyCheck } from './reply-wait.js';

/** Reads complete replies off one connection, one wait at a time, accounting for every command. */
export class ReplyReader {
  private readonly parser = new ReplyParser();
  private ready: SmtpReply[] = [];
  /**
   * The one wait in progress, its promise made with a per-reader executor rather than a closure per
   * wait: a pooled connection waits thousands of times.
   */
  private readonly waiting = new WaitEnds();
  private waitingFor = '';
  /** A reply owed ahead of the next wait's, taken by this check with no wait of its own (see skip), and the command it answers. */
  private skipCheck: ((r: SmtpReply) => void) | undefined;
  private skipWhat = '';
  /** What a skipped reply's check threw with nobody waiting yet: the next wait fails with it. */
  private skipFailure: Error | undefined;
  private readonly captureWait = (resolve: (v: unknown) => void, reject: (e: Error) => void): void => {
    this.waiting.resolve = resolve;
    this.waiting.reject = reject;
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
    this.heldReply = undefined;
    this.held.settle(held);
  }

  /**
   * The reply that settled the wait, and the wait, held until the rest of its read is parsed: the
   * wait's continuations (see next and wait) may write the next command (the message after a 354) and
   * wait again, or hand the session back to the pool, and must neither take a reply the back end sent
   * with this one nor miss what breaking the protocol after it did to the session, as they would not
   * a promise's turn later.
   */
  private heldReply: SmtpReply | undefined;
  private readonly held = new WaitEnds();

  /** One reply off the wire: to a skip's check, to the waiter, or kept for the next wait. */
  private readonly onReply = (r: SmtpReply): void => {
    if (this.failure) return;
    if (this.outstanding === 0) return this.protocolError(new BackendUnavailable(`reply with no command outstanding: ${r.code}`));
    this.outstanding -= 1;
    const skipCheck = this.skipCheck;
    if (skipCheck) return this.skipped(skipCheck, r);
    if (!this.waiting.open) return void this.ready.push(r);
    this.held.takeFrom(this.waiting);
    this.timer?.unref();
    this.heldReply = r;
  };

  /** A skipped reply came: its check passes it, or the wait in progress (or else the next one) fails with what it threw; the wait's own reply gets the time-out afresh. */
  private skipped(check: (r: SmtpReply) => void, r: SmtpReply): void {
    this.skipCheck = undefined;
    try {
      check(r);
    } catch (err) {
      if (!this.waiting.open) return void (this.skipFailure = err as Error);
      this.timer?.unref();
      return this.waiting.fail(err as Error);
    }
    if (this.waiting.open) this.arm(this.timerMs);
  }

  fail(err: Error): void {
    this.failure ??= err;
    clearTimeout(this.timer);
    this.waiting.fail(this.failure);
  }

  /** Whether the back end has broken the protocol, or the connection failed. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The connection is gone: a waiting reader fails now, later ones at once. */
  closed(detail: string): void {
    this.closedBecause ??= detail;
    clearTimeout(this.timer);
    if (this.waiting.open) this.fail(new BackendUnavailable(detail));
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
    this.waiting.check = check;
    this.waiting.answered = answered;
    this.waiting.failed = failed;
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
    const w = this.waiting;
    w.resolve = IGNORE;
    w.reject = failed;
    w.check = check;
    w.answered = answered;
    w.failed = undefined;
    this.waitingFor = what;
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
    if (!this.waiting.open) return;
    // A reply that comes after this would answer a command nobody waits for: the connection is not reused.
    this.failure ??= new BackendTimeout(`no reply to ${this.skipCheck ? this.skipWhat : this.waitingFor} within ${this.timerMs} ms`);
    this.waiting.fail(this.failure);
  }

  private protocolError(err: BackendUnavailable): void {
    const first = this.failure === undefined;
    this.fail(err);
    if (first) this.onProtocolError(err);
  }
}
