/** An accepted message goes to the back end after the edge's own `Received:` field, while the client is still sending it. */
import { nextAsPromise, type BackendConnection, type MessagePieces, type PieceSource } from './backend-connection.js';
import type { SmtpReply } from '../net/smtp-reply.js';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The pieces of a message already read (`first`, empty ones skipped), then every chunk left in `rest`,
 * each through `count`. A plain iterator, not a generator: the pieces in hand are handed over at once,
 * and each chunk of `rest` costs its own read only (an async generator added a promise and a resumed
 * frame per piece, and each level of `yield*` another). The relay takes them (`nextPiece`) without a
 * promise for each piece in hand, a message's end included when the client's stream has it. `rest` is
 * left open when the message is abandoned: the client's stream is drained by its reader, so no body
 * line becomes a command.
 */
export function messageChunks(first: readonly Buffer[], rest: PieceSource | undefined, count: (chunk: Buffer) => void): MessagePieces & AsyncIterableIterator<Buffer> {
  return new MessageChunks(first, rest, count);
}

/**
 * A class, not an object literal: a literal with the computed `Symbol.asyncIterator` key was built by
 * V8's runtime at every message (about 1.5 µs), and its shape made each load from it a slow one.
 */
class MessageChunks implements MessagePieces, AsyncIterableIterator<Buffer> {
  private at = 0;

  constructor(
    private readonly first: readonly Buffer[],
    private readonly rest: PieceSource | undefined,
    private readonly count: (chunk: Buffer) => void,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    return nextAsPromise(this);
  }

  /** A wait of `rest` is passed on as it is: the piece is counted when it is asked for again. */
  nextPiece(): IteratorResult<Buffer, undefined> | Promise<void> {
    const first = this.first;
    while (this.at < first.length) {
      const piece = first[this.at++] as Buffer;
      if (piece.length > 0) return { done: false, value: piece };
    }
    if (!this.rest) return DONE;
    const n = this.rest.nextPiece();
    if (n instanceof Promise || n.done) return n;
    this.count(n.value);
    return n;
  }
}

/** Streams the trace field (`received`, CRLF-terminated), `first` and the rest of `rest` to the back end; `answered` gets its reply to the final dot, `failed` what ended the relay (see BackendConnection.data). */
export function relayMessage(
  backend: BackendConnection,
  received: Buffer,
  first: readonly Buffer[],
  rest: PieceSource | undefined,
  count: (chunk: Buffer) => void,
  answered: (r: SmtpReply) => void,
  failed: (err: unknown) => void,
): void {
  backend.data(messageChunks([received, ...first], rest, count), answered, failed);
}

/** Streams the trace field (`received`) and a spooled `message` to the back end; resolves with its reply to the final dot. `message` is closed (its file read ends) if the relay stops early. */
export function relaySpooled(backend: BackendConnection, received: Buffer, message: AsyncIterable<Buffer>): Promise<SmtpReply> {
  const withTrace = async function* (): AsyncGenerator<Buffer> {
    yield received;
    yield* message;
  };
  return new Promise((resolve, reject) => backend.data(withTrace(), resolve, reject));
}
