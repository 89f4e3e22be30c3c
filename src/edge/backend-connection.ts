/**
 * What the pool, a transaction and the DATA relay need of a back-end session, whichever kind it is:
 * an SMTP client on a socket (backend-relay.ts) or a back end in this process that takes SMTP's
 * transactions without SMTP's text (in-process-session.ts). Every step resolves with the back end's
 * own reply; failures reject with BackendUnavailable (451 4.7.0).
 */
import type { SmtpReply } from '../net/smtp-reply.js';
import type { ForwardedClient } from './backend-forward.js';

/**
 * Where a message's pieces come from: the next one when it is in hand (no promise and no turn of the
 * microtask queue for it); otherwise a promise to wait for, after which the next piece is asked for
 * again. A promise of nothing rather than of the piece: the one waiting asks again in its own `then`,
 * where a promise of the piece took a `then` of the source's to make it and one of the caller's to
 * take it. Throws (or its promise rejects with) what ended the message.
 */
export interface PieceSource {
  nextPiece(): IteratorResult<Buffer, undefined> | Promise<void>;
}

/** The next piece of `source` as AsyncIterator's `next` gives it: a promise, rejected with what ended the message. */
export function nextAsPromise(source: PieceSource): Promise<IteratorResult<Buffer, undefined>> {
  try {
    const n = source.nextPiece();
    return n instanceof Promise ? n.then(() => askedAgain(source)) : Promise.resolve(n);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** The piece `source` has after a wait, or a promise of it after one more (a value, not a promise, where it can be: a promise returned from a `then` costs two turns more). */
function askedAgain(source: PieceSource): IteratorResult<Buffer, undefined> | Promise<IteratorResult<Buffer, undefined>> {
  const n = source.nextPiece();
  return n instanceof Promise ? n.then(() => askedAgain(source)) : n;
}

/** An async iterator's chunks as a PieceSource: each result is kept as it comes and handed over when asked again. */
export class IteratorPieces implements PieceSource {
  private got: IteratorResult<Buffer, undefined> | undefined;
  private readonly keep = (n: IteratorResult<Buffer, undefined>): void => {
    this.got = n;
  };

  constructor(readonly iterator: AsyncIterator<Buffer, undefined>) {}

  nextPiece(): IteratorResult<Buffer, undefined> | Promise<void> {
    const got = this.got;
    if (!got) return this.iterator.next().then(this.keep);
    this.got = undefined;
    return got;
  }
}

/** A message that the relay takes piece by piece (`nextPiece`), and that anything else reads as an AsyncIterable. */
export interface MessagePieces extends PieceSource, AsyncIterable<Buffer> {}

export interface BackendConnection {
  /** Transactions begun on this session. */
  transactions: number;
  /** Set by the pool when this transaction is the session's last. */
  last: boolean;
  /** Told once when the session closes, for whatever reason (the pool forgets it then). */
  onClose: (() => void) | undefined;
  /** Whether the session can be lent to another transaction: open, healthy, between commands, no transaction open. */
  readonly reusable: boolean;
  /** Whether reset() can make the session reusable. */
  readonly resettable: boolean;
  /** Passes the client of the next transaction on; undefined when there is nothing to wait for (it goes out with MAIL FROM). */
  begin(client: ForwardedClient): Promise<void> | undefined;
  mailFrom(address: string, params?: { body?: string; size?: number }): Promise<SmtpReply>;
  /** MAIL FROM whose promise resolves with what `answered` makes of the reply, or `failed` of the failure (either may throw to reject it). */
  mailFrom<T>(address: string, params: { body?: string; size?: number }, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  rcptTo(address: string): Promise<SmtpReply>;
  /** RCPT TO whose promise resolves with what `answered` makes of the reply, or `failed` of the failure (either may throw to reject it). */
  rcptTo<T>(address: string, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  /**
   * Hands `message` over (with back-pressure) and gives `answered` the reply to its end, or `failed`
   * what ended the relay: if `message` fails, nothing is delivered and `failed` gets its error. Exactly
   * one of them runs, once, and neither may throw. A MessagePieces may be taken piece by piece.
   */
  data(message: AsyncIterable<Buffer>, answered: (r: SmtpReply) => void, failed: (err: unknown) => void): void;
  /** Ends an open transaction; true when the session is clean again, false when it was closed. Never throws. */
  reset(): Promise<boolean>;
  /** Ends the session politely; never throws. */
  quit(): Promise<void>;
  /** Drops the session at once: whatever transaction is open is abandoned, nothing is delivered. */
  abandon(): void;
}
