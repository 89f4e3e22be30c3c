/**
 * The limits on one message while it is read: its size (`maxMessageSize`), the session's total
 * (`maxSessionSize`) and the DATA deadline (`dataTimeoutMs`, from `354` to the final dot, which no
 * byte extends).
 */
import type { ListenerConfig } from '../config/schema.js';
import { noteMessageBytes } from './gc-pacer.js';
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';

const TOO_BIG = reply(552, '5.3.4', 'Message size exceeds fixed maximum message size');
const SESSION_FULL = reply(421, '4.7.0', 'Session size limit reached, closing');
const DATA_TIMEOUT = reply(421, '4.4.2', 'Data timeout, closing connection');

/**
 * A connection's DATA deadline: one timer for all its messages, re-armed (refresh) as each message
 * starts, instead of a timer made and cleared per message. It does not hold the process open (the
 * client's socket does while a message is read), and may fire disarmed, when it does nothing.
 */
export class DataDeadline {
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private expire: (() => void) | undefined;

  /** `expire` runs `ms` from now unless disarm() or stop() comes first. */
  arm(ms: number, expire: () => void): void {
    this.expire = expire;
    if (this.timer !== undefined && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(() => this.fire(), ms);
    this.timer.unref();
  }

  disarm(): void {
    this.expire = undefined;
  }

  /** The connection is over. */
  stop(): void {
    this.expire = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    const expire = this.expire;
    this.expire = undefined;
    expire?.();
  }
}

/**
 * One per session, started again for each message (`start`): the count, the enforcing and the
 * deadline's expiry are the message's own, and the closures are made once per session.
 */
export class DataLimits {
  /** Message bytes read so far. */
  bytes = 0;
  private enforcing = true;
  /** The session's bytes before this message. */
  private sessionBytes = 0;
  private onTimeout: ((r: SmtpReply) => void) | undefined;
  private readonly expire = (): void => this.onTimeout?.(DATA_TIMEOUT);

  constructor(
    private readonly limits: ListenerConfig['limits'],
    private readonly deadline: DataDeadline,
  ) {}

  /** A message starts, after `sessionBytes` of the session's; `onTimeout` gets the 421 to write when the connection's deadline passes. */
  start(sessionBytes: number, onTimeout: (r: SmtpReply) => void): void {
    this.bytes = 0;
    this.enforcing = true;
    this.sessionBytes = sessionBytes;
    this.onTimeout = onTimeout;
    this.deadline.arm(this.limits.dataTimeoutMs, this.expire);
  }

  /** Counts a chunk read; throws the reply (SmtpError) once a limit is passed, while they are enforced. */
  readonly count = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    noteMessageBytes(chunk.length);
    if (!this.enforcing) return;
    if (this.bytes > this.limits.maxMessageSize) throw new SmtpError(TOO_BIG);
    if (this.sessionBytes + this.bytes > this.limits.maxSessionSize) throw new SmtpError(SESSION_FULL);
  };

  /** The message was answered: what is left of it is only drained, and counted. */
  stopEnforcing(): void {
    this.enforcing = false;
  }

  /** The message was read to its end (or the client went away). */
  done(): void {
    this.deadline.disarm();
    this.onTimeout = undefined;
  }
}
