/**
 * One mail transaction of a client session (RFC 5321 3.3), kept apart from the connection as Haraka
 * keeps its Transaction: created when MAIL FROM passes the policy, dropped at the end of DATA, at
 * RSET (or HELO/EHLO, which reset as RSET does), or at the next MAIL FROM.
 */
import type { BackendSession } from './backend-relay.js';

export class Transaction {
  /** Recipients accepted so far, in the form relayed. */
  readonly recipients: string[] = [];
  /** The back-end session this transaction borrows, once one is open. */
  backend: BackendSession | undefined;
  /** When the back-end session was asked for (ms), for the relay-duration metric. */
  backendOpenedAt = 0;

  constructor(readonly sender: string) {}

  /** Drops the back end without QUIT: its transaction must not complete. */
  abandonBackend(): void {
    this.backend?.abandon();
    this.backend = undefined;
  }

  /** The transaction is over: the back end is told QUIT, which the client's reply does not wait for and which never throws. */
  end(): void {
    const backend = this.backend;
    this.backend = undefined;
    if (backend) void backend.quit();
  }
}
