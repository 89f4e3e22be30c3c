/** An accepted message goes to the back end after the edge's own `Received:` field, while the client is still sending it. */
import type { BackendConnection } from './backend-connection.js';
import type { SmtpReply } from '../net/smtp-reply.js';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The pieces of a message already read (`first`, empty ones skipped), then every chunk left in `rest`,
 * each through `count`. A plain iterator, not a generator: the pieces in hand are handed over at once,
 * and each chunk of `rest` costs its own read only (an async generator added a promise and a resumed
 * frame per piece, and each level of `yield*` another). `rest` is left open when the message is
 * abandoned: the client's stream is drained by its reader, so no body line becomes a command.
 */
export function messageChunks(first: readonly Buffer[], rest: AsyncIterator<Buffer> | undefined, count: (chunk: Buffer) => void): AsyncIterableIterator<Buffer> {
  let at = 0;
  const counted = (n: IteratorResult<Buffer>): IteratorResult<Buffer, undefined> => {
    if (n.done) return DONE;
    count(n.value);
    return n;
  };
  const chunks: AsyncIterableIterator<Buffer> = {
    [Symbol.asyncIterator]: () => chunks,
    next: () => {
      while (at < first.length) {
        const piece = first[at++] as Buffer;
        if (piece.length > 0) return Promise.resolve({ done: false, value: piece });
      }
      return rest ? rest.next().then(counted) : Promise.resolve(DONE);
    },
  };
  return chunks;
}

/** Streams the trace field (`received`, CRLF-terminated), `first` and the rest of `rest` to the back end; resolves with its reply to the final dot. */
export function relayMessage(
  backend: BackendConnection,
  received: string,
  first: readonly Buffer[],
  rest: AsyncIterator<Buffer> | undefined,
  count: (chunk: Buffer) => void,
): Promise<SmtpReply> {
  return backend.data(messageChunks([Buffer.from(received), ...first], rest, count));
}

/** Streams the trace field (`received`) and a spooled `message` to the back end; `message` is closed (its file read ends) if the relay stops early. */
export function relaySpooled(backend: BackendConnection, received: string, message: AsyncIterable<Buffer>): Promise<SmtpReply> {
  const field = Buffer.from(received);
  const withTrace = async function* (): AsyncGenerator<Buffer> {
    yield field;
    yield* message;
  };
  return backend.data(withTrace());
}
