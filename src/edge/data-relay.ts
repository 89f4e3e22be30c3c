/** An accepted message goes to the back end after the edge's own `Received:` field, while the client is still sending it. */
import type { BackendConnection } from './backend-connection.js';
import { receivedHeader, type ReceivedInfo } from './received-header.js';
import type { SmtpReply } from '../net/smtp-reply.js';

/**
 * The pieces of a message already read (`first`, empty ones skipped), then every chunk left in `rest`,
 * each through `count`. One generator for the whole message: each level of `yield*` between the
 * client's stream and the back end's socket cost a promise per chunk. `rest` is left open when the
 * message is abandoned: the client's stream is drained by its reader, so no body line becomes a command.
 */
export async function* messageChunks(first: readonly Buffer[], rest: AsyncIterator<Buffer> | undefined, count: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (const piece of first) if (piece.length > 0) yield piece;
  if (!rest) return;
  for (let n = await rest.next(); !n.done; n = await rest.next()) {
    count(n.value);
    yield n.value;
  }
}

/** Streams the trace field, `first` and the rest of `rest` to the back end; resolves with its reply to the final dot. */
export function relayMessage(
  backend: BackendConnection,
  trace: ReceivedInfo,
  first: readonly Buffer[],
  rest: AsyncIterator<Buffer> | undefined,
  count: (chunk: Buffer) => void,
): Promise<SmtpReply> {
  return backend.data(messageChunks([Buffer.from(receivedHeader(trace)), ...first], rest, count));
}

/** Streams the trace field and a spooled `message` to the back end; `message` is closed (its file read ends) if the relay stops early. */
export function relaySpooled(backend: BackendConnection, trace: ReceivedInfo, message: AsyncIterable<Buffer>): Promise<SmtpReply> {
  const received = Buffer.from(receivedHeader(trace));
  const withTrace = async function* (): AsyncGenerator<Buffer> {
    yield received;
    yield* message;
  };
  return backend.data(withTrace());
}
