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

export class DataLimits {
  /** Message bytes read so far. */
  bytes = 0;
  private enforcing = true;
  private readonly deadline: NodeJS.Timeout;

  /** `onTimeout` gets the 421 to write when the deadline passes. */
  constructor(
    private readonly limits: ListenerConfig['limits'],
    private readonly sessionBytes: number,
    onTimeout: (r: SmtpReply) => void,
  ) {
    this.deadline = setTimeout(() => onTimeout(DATA_TIMEOUT), limits.dataTimeoutMs);
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
    clearTimeout(this.deadline);
  }
}
