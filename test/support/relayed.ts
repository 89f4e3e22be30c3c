/** A back-end session's DATA (continuations) as a promise, for tests that await the reply or the failure. */
import type { BackendConnection } from '../../src/edge/backend-connection.js';
import type { SmtpReply } from '../../src/net/smtp-reply.js';

export function relayed(session: BackendConnection, message: AsyncIterable<Buffer>): Promise<SmtpReply> {
  return new Promise((resolve, reject) => session.data(message, resolve, reject));
}
