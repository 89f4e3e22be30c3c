/**
 * How a wait for a back-end reply settles (backend-reply-reader.ts): the reply through the wait's
 * check, then through the caller's continuations when it gave them, so that they run as the wait
 * settles rather than in a `then` of the caller's (a promise and a turn of the microtask queue each).
 */
import type { SmtpReply } from '../net/smtp-reply.js';

/** Passes a reply on as the answer to the command waited for, or throws the error the wait fails with. */
export type ReplyCheck = (r: SmtpReply) => SmtpReply;

/** Settles a wait with reply `r`: through `check`, then `answered`; a throw from `check` goes to `failed` (see failedWith). */
export function settle(
  r: SmtpReply,
  check: ReplyCheck | undefined,
  answered: ((r: SmtpReply) => unknown) | undefined,
  failed: ((err: Error) => unknown) | undefined,
  resolve: (v: unknown) => void,
  reject: (e: Error) => void,
): void {
  let checked: SmtpReply;
  try {
    checked = check ? check(r) : r;
  } catch (err) {
    return failedWith(err as Error, failed, resolve, reject);
  }
  if (!answered) return resolve(checked);
  through(answered, checked, resolve, reject);
}

/** Resolves with what `fn` makes of `a`, or rejects with what it threw. */
function through<A>(fn: (a: A) => unknown, a: A, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
  let v: unknown;
  try {
    v = fn(a);
  } catch (err) {
    return reject(err as Error);
  }
  resolve(v);
}

/** Settles a wait that failed with `err`: resolved with what `failed` makes of it, or rejected with it (or with what `failed` threw). */
export function failedWith(err: Error, failed: ((err: Error) => unknown) | undefined, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
  if (!failed) return reject(err);
  through(failed, err, resolve, reject);
}

/** A wait settled at once: by reply `r`, or else by `err` (see settle). */
export function settledPromise(
  r: SmtpReply | undefined,
  check: ReplyCheck | undefined,
  answered: ((r: SmtpReply) => unknown) | undefined,
  failed: ((err: Error) => unknown) | undefined,
  err: Error | undefined,
): Promise<unknown> {
  let out!: Promise<unknown>;
  const resolve = (v: unknown): void => void (out = Promise.resolve(v));
  const reject = (e: Error): void => void (out = Promise.reject(e));
  if (r) settle(r, check, answered, failed, resolve, reject);
  else failedWith(err as Error, failed, resolve, reject);
  return out;
}

/**
 * The ends of one wait: how its reply or its failure reaches the caller. Fields of a record a reader
 * keeps for its life, not an object per wait: a pooled connection waits thousands of times.
 */
export class WaitEnds {
  resolve: ((v: unknown) => void) | undefined;
  reject: ((e: Error) => void) | undefined;
  /** What the reply passes through before it settles the wait. */
  check: ReplyCheck | undefined;
  /** The caller's continuations, run as the wait settles. */
  answered: ((r: SmtpReply) => unknown) | undefined;
  failed: ((err: Error) => unknown) | undefined;

  /** Whether a wait is in progress. */
  get open(): boolean {
    return this.reject !== undefined;
  }

  /** Takes over `from`'s wait, leaving `from` with none. */
  takeFrom(from: WaitEnds): void {
    this.resolve = from.resolve;
    this.reject = from.reject;
    this.check = from.check;
    this.answered = from.answered;
    this.failed = from.failed;
    from.clear();
  }

  clear(): void {
    this.resolve = undefined;
    this.reject = undefined;
    this.check = undefined;
    this.answered = undefined;
    this.failed = undefined;
  }

  /** Settles the wait in progress with reply `r` (see settle); it is over before any continuation runs. */
  settle(r: SmtpReply): void {
    const { resolve, reject, check, answered, failed } = this;
    this.clear();
    if (resolve && reject) settle(r, check, answered, failed, resolve, reject);
  }

  /** Fails the wait in progress, if any, with `err` (see failedWith); it is over before any continuation runs. */
  fail(err: Error): void {
    const { resolve, reject, failed } = this;
    this.clear();
    if (resolve && reject) failedWith(err, failed, resolve, reject);
  }
}
