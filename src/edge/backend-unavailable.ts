/** The edge's answer when the back end cannot take a transaction. */
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';

/** Seed 003's front-end proxy answer when the back end cannot take the message: the sender keeps it and retries. */
export const TEMPORARY_SERVER_ERROR: SmtpReply = reply(451, '4.7.0', 'Temporary server error. Please try again later.');

/** The back end was refused, unreachable, silent, or went away: the client must retry, never bounce. */
export class BackendUnavailable extends SmtpError {
  constructor(detail: string) {
    super(TEMPORARY_SERVER_ERROR, `back end unavailable: ${detail}`);
    this.name = 'BackendUnavailable';
  }
}

/** The back end did not answer within its time-out: not retried on another connection (the client has waited long enough). */
export class BackendTimeout extends BackendUnavailable {
  constructor(detail: string) {
    super(detail);
    this.name = 'BackendTimeout';
  }
}
