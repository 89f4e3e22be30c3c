/**
 * The time a client may hold a connection slot, as deadlines that no byte extends. An inactivity
 * timer (smtp-server's socket time-out) is reset by any byte, so a client trickling one byte a second
 * never completed a command and was never cut off.
 *
 * - Command: from every reply the client must answer (the greeting, any reply outside DATA) until its
 *   next command line is complete. The DATA phase has its own deadline (EdgeSession.data).
 * - Session: from the connection's start. When it falls while the edge itself owes the client a reply
 *   (a handler, or the back end, is still working), it takes effect right after that reply, so a
 *   message the back end accepted is never answered with a 421 (the client would send it again).
 */

export interface DeadlineLimits {
  commandMs: number;
  sessionMs: number;
}

export type Expired = 'command' | 'session';

/** What the deadlines need from the connection. */
export interface DeadlineHost {
  /** The client is waiting on the edge (a command or the message is being answered). */
  waitingOnUs(): boolean;
  /** A deadline passed: say 421 and close. */
  expire(what: Expired): void;
}

export class SessionDeadlines {
  /**
   * One command timer for the connection's life, re-armed (refresh) at each reply rather than made
   * anew: a reused connection answers four commands a message. It may fire disarmed (then it does nothing).
   */
  private command: NodeJS.Timeout | undefined;
  /** The command deadline runs: a reply went out and the client's next command line is not complete. */
  private commandArmed = false;
  private readonly session: NodeJS.Timeout;
  private sessionOver = false;
  private stopped = false;

  constructor(
    private readonly limits: DeadlineLimits,
    private readonly host: DeadlineHost,
  ) {
    this.session = setTimeout(sessionEnds, limits.sessionMs, this);
    this.session.unref();
  }

  /** A reply went out; `inData`: it opened the DATA phase (whose own deadline runs from here). */
  replied(inData: boolean): void {
    this.clearCommand();
    if (this.stopped) return;
    if (this.sessionOver) return this.fire('session');
    if (inData) return;
    this.commandArmed = true;
    if (this.command) this.command.refresh();
    else {
      this.command = setTimeout(commandEnds, this.limits.commandMs, this);
      this.command.unref();
    }
  }

  /** A complete command line was read. */
  commandRead(): void {
    this.clearCommand();
  }

  /** The connection is over. */
  stop(): void {
    this.stopped = true;
    this.clearCommand();
    clearTimeout(this.command);
    clearTimeout(this.session);
  }

  /** The session deadline passed. */
  sessionEnds(): void {
    this.sessionOver = true;
    if (!this.host.waitingOnUs()) this.fire('session');
  }

  /** The command timer fired: it counts only while armed. */
  commandEnds(): void {
    if (this.commandArmed) this.fire('command');
  }

  private fire(what: Expired): void {
    if (this.stopped) return;
    this.stop();
    this.host.expire(what);
  }

  private clearCommand(): void {
    this.commandArmed = false;
  }
}

// The timers' callbacks, one each for all connections (the deadlines passed as their argument): no closure per connection.
function sessionEnds(deadlines: SessionDeadlines): void {
  deadlines.sessionEnds();
}

function commandEnds(deadlines: SessionDeadlines): void {
  deadlines.commandEnds();
}
