/**
 * One mail transaction of a client session (RFC 5321 3.3), kept apart from the connection as Haraka
 * keeps its Transaction: created when MAIL FROM passes the policy, dropped at the end of DATA, at
 * RSET (or HELO/EHLO, which reset as RSET does), or at the next MAIL FROM.
 */
import type { BackendPool } from './backend-pool.js';
import type { BackendConnection } from './backend-connection.js';

export class Transaction {
  /** Recipients accepted so far, in the form relayed. */
  readonly recipients: string[] = [];
  /** The back-end session this transaction borrows, once one is lent, and the pool it goes back to. */
  private lent: { session: BackendConnection; pool: BackendPool } | undefined;
  /** When the back-end session was asked for (ms), for the relay-duration metric. */
  backendOpenedAt = 0;

  constructor(readonly sender: string) {}

  get backend(): BackendConnection | undefined {
    return this.lent?.session;
  }

  /** `session`, lent by `pool`, carries this transaction from now on. */
  borrow(session: BackendConnection, pool: BackendPool): void {
    this.lent = { session, pool };
  }

  /** Drops the back end without QUIT: its transaction must not complete, and the session is never lent again. */
  abandonBackend(): void {
    const lent = this.lent;
    this.lent = undefined;
    lent?.pool.discard(lent.session);
  }

  /** The transaction is over: the session goes back to its pool (RSET first if the back end still holds the transaction), which the client's reply does not wait for and which never throws. */
  end(): void {
    const lent = this.lent;
    this.lent = undefined;
    lent?.pool.release(lent.session);
  }
}
