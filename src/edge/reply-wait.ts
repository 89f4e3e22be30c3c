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
  let v: unknown;
  try {
    v = answered(checked);
  } catch (err) {
    return reject(err as Error);
  }
  resolve(v);
}

/** Settles a wait that failed with `err`: resolved with what `failed` makes of it, or rejected with it (or with what `failed` threw). */
export function failedWith(err: Error, failed: ((err: Error) => unknown) | undefined, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
  if (!failed) return reject(err);
  let v: unknown;
  try {
    v = failed(err);
  } catch (thrown) {
    return reject(thrown as Error);
  }
  resolve(v);
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
