/** An accepted message goes to the back end after the edge's own `Received:` field, while the client is still sending it. */
import type { BackendConnection } from './backend-connection.js';
import { receivedHeader, type ReceivedInfo } from './received-header.js';
import type { SmtpReply } from '../net/smtp-reply.js';

/** Streams the trace field and `body` to the back end; resolves with its reply to the final dot. */
export async function relayMessage(backend: BackendConnection, body: AsyncIterable<Buffer>, trace: ReceivedInfo): Promise<SmtpReply> {
  const received = Buffer.from(receivedHeader(trace));
  const withTrace = async function* (): AsyncGenerator<Buffer> {
    yield received;
    yield* body;
  };
  return backend.data(withTrace());
}
