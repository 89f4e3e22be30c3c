/**
 * Back-end sessions kept open and lent to one client transaction after another (from any client of
 * any listener under the same back end), so that a message costs the back end a MAIL FROM, not a
 * connection, a greeting, an EHLO and a QUIT.
 *
 * A transaction borrows a session at MAIL FROM (begin) and gives it back when it ends (release): after
 * the reply to the final dot as it is, after the client abandoned it (RSET, HELO/EHLO, a refused
 * recipient list) once the back end has answered our RSET with 250. Only a session that is healthy and
 * between commands goes back: one that erred, timed out, answered out of turn or said 421 is closed,
 * never lent again (its reader has failed, or it was abandoned). Each borrow sends the new client's
 * XFORWARD (or XCLIENT and EHLO) before MAIL FROM, so no attribute of one client outlives its transaction.
 *
 * Idle sessions wait at most `idleMs` (one timer for the whole pool, not one per session); at most
 * `maxIdle` wait at once (0: no pooling, a connection per transaction as before); a connection carries
 * at most `maxTransactions` transactions, the last one pipelining QUIT with its final dot.
 */
import type { BackendPoolConfig } from '../config/schema.js';
import type { BackendConnection } from './backend-connection.js';
import { BackendSession, type BackendTarget, type ForwardedClient } from './backend-relay.js';
import { InProcessSession } from './in-process-session.js';
import { BackendTimeout, BackendUnavailable } from './backend-unavailable.js';
import type { SmtpReply } from '../net/smtp-reply.js';

/** mailOn's continuations for a caller that awaits the reply itself. */
const passOn = (r: SmtpReply): SmtpReply => r;
const rethrow = (err: unknown): never => {
  throw err;
};

/** What the pool tells the metrics. */
export interface PoolEvents {
  /** A transaction took an idle session. */
  reused(): void;
  /** A connection was opened for a transaction. */
  opened(): void;
}

/** How many sessions the pool holds, by state. */
export interface PoolCounts {
  idle: number;
  busy: number;
}

interface Idle {
  session: BackendConnection;
  since: number;
}

export class BackendPool {
  /** Idle sessions, the one idle longest first; lent from the end (the warmest). */
  private readonly idle: Idle[] = [];
  private busy = 0;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    readonly target: BackendTarget,
    readonly config: BackendPoolConfig,
    private readonly events: PoolEvents = { reused: () => undefined, opened: () => undefined },
  ) {}

  /** Sessions idle and lent out now. */
  get counts(): PoolCounts {
    return { idle: this.idle.length, busy: this.busy };
  }

  /**
   * Borrows a session for `client`'s transaction and sends MAIL FROM on it; `lent` is given the session
   * and the back end's reply, `failed` the BackendUnavailable (or time-out) that ended the attempt, and
   * the promise resolves with what either returns. On an idle session the caller's continuations run
   * as the reader's wait for MAIL FROM settles (BackendConnection.mailFrom), on a fresh one in the
   * pool's own `then`: on a reused connection's every transaction, no promise and turn of the
   * microtask queue of the pool's or the caller's. An idle session that fails before its reply (the
   * back end closed it while it waited, or refused to take another client on it) is closed and the
   * transaction begun once more on a fresh connection, so the client sees only the fresh connection's
   * outcome; a time-out is not retried (the client has already waited the time-out).
   */
  begin<T>(
    client: ForwardedClient,
    sender: string,
    params: { body?: string; size?: number },
    lent: (session: BackendConnection, reply: SmtpReply) => T,
    failed: (err: unknown) => T,
  ): Promise<T> {
    const idle = this.takeIdle();
    this.busy += 1;
    if (!idle) return this.beginFresh(client, sender, params).then(({ session, reply }) => lent(session, reply), failed);
    this.events.reused();
    // No async frame on the idle session's path, every transaction's on a reused connection.
    return this.mailOn(
      idle,
      client,
      sender,
      params,
      (reply): T => lent(idle, reply),
      (err: unknown): T | Promise<T> => {
        idle.abandon();
        if (!(err instanceof BackendUnavailable) || err instanceof BackendTimeout) {
          this.busy -= 1;
          return failed(err);
        }
        return this.beginFresh(client, sender, params).then(({ session, reply }) => lent(session, reply), failed);
      },
    ) as Promise<T>;
  }

  /** begin() on a fresh connection. */
  private async beginFresh(client: ForwardedClient, sender: string, params: { body?: string; size?: number }): Promise<{ session: BackendConnection; reply: SmtpReply }> {
    try {
      this.events.opened();
      const fresh = await this.openSession();
      try {
        return { session: fresh, reply: await this.mailOn(fresh, client, sender, params, passOn, rethrow) };
      } catch (err) {
        fresh.abandon();
        throw err;
      }
    } catch (err) {
      this.busy -= 1;
      throw err;
    }
  }

  /**
   * The transaction on `session` is over: the session goes back to the idle list if it can be lent
   * again (after RSET if the back end still holds a transaction), else it is closed with QUIT.
   * Never throws, and the caller does not wait for it.
   */
  release(session: BackendConnection): void {
    this.busy -= 1;
    if (session.reusable) return this.park(session);
    if (!session.resettable || !this.keeps(session)) return void session.quit();
    void session.reset().then((clean) => {
      if (clean) this.park(session);
    });
  }

  /** The transaction on `session` failed or was cut off: the session is closed at once, nothing more is sent. */
  discard(session: BackendConnection): void {
    this.busy -= 1;
    session.abandon();
  }

  /** No more lending: idle sessions are told QUIT now, lent ones when they come back. Resolves once the idle ones are closed. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((i) => i.session.quit()));
  }

  /** A new session: a connection, or with a back end in this process, a session of its own kind. */
  private async openSession(): Promise<BackendConnection> {
    const { inProcess } = this.target;
    return inProcess ? new InProcessSession(inProcess, this.target.timeoutMs) : BackendSession.connect(this.target);
  }

  /**
   * Begins the transaction on `session` and sends MAIL FROM: one wait when XFORWARD goes with it. The
   * promise resolves with what `answered` makes of the reply or `failed` of the failure, either
   * throwing to reject it.
   */
  private mailOn<T>(
    session: BackendConnection,
    client: ForwardedClient,
    sender: string,
    params: { body?: string; size?: number },
    answered: (r: SmtpReply) => T,
    failed: (err: unknown) => T,
  ): Promise<T> {
    session.last = !this.keeps(session, 1);
    let waiting: Promise<void> | undefined;
    try {
      waiting = session.begin(client);
    } catch (err) {
      return Promise.reject(err as Error).catch(failed);
    }
    return waiting ? waiting.then(() => session.mailFrom(sender, params, answered, failed), failed) : session.mailFrom(sender, params, answered, failed);
  }

  /** Whether `session` may be kept after its current transaction (`ahead`: counting one not yet begun). */
  private keeps(session: BackendConnection, ahead = 0): boolean {
    if (this.closing || this.config.maxIdle === 0) return false;
    return session.transactions + ahead < this.config.maxTransactions;
  }

  private takeIdle(): BackendConnection | undefined {
    for (let i = this.idle.pop(); i; i = this.idle.pop()) {
      i.session.onClose = undefined;
      if (i.session.reusable) return i.session;
      i.session.abandon();
    }
    return undefined;
  }

  private park(session: BackendConnection): void {
    if (!this.keeps(session) || this.idle.length >= this.config.maxIdle) return void session.quit();
    const entry: Idle = { session, since: Date.now() };
    this.idle.push(entry);
    // The back end closed it (its own idle time-out, a restart): forget it at once.
    session.onClose = () => {
      const at = this.idle.indexOf(entry);
      if (at >= 0) this.idle.splice(at, 1);
    };
    this.arm();
  }

  /** One timer for the pool, due when the session idle longest reaches `idleMs`. */
  private arm(): void {
    const oldest = this.idle[0];
    if (this.timer !== undefined || !oldest) return;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, oldest.since + this.config.idleMs - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    const cutoff = Date.now() - this.config.idleMs;
    while (this.idle[0] && this.idle[0].since <= cutoff) {
      const { session } = this.idle.shift() as Idle;
      session.onClose = undefined;
      void session.quit();
    }
    this.arm();
  }
}
