/**
 * The chunks of a client's message stream, read as Node's own async iterator reads them (`read()`,
 * waiting for `readable` when none is buffered) but without what that iterator builds for every
 * message: an async generator and the end-of-stream helper's listeners and closures, a few
 * microseconds a message. Same outcomes: the chunks in order, then done at `end`; the stream's error
 * if it fails; a premature-close error if it is destroyed before its end (the client went away). As
 * with Node's iterator, the stream is destroyed once its outcome has been read.
 *
 * One reader serves a session's messages in turn (`read` starts the next one), so that its listeners
 * are made once per session, not per message, and they are left on a message's stream when it is
 * done rather than taken off it (three removals a message, one of them a `process.nextTick` of
 * Node's for `readable`): each listens only while its stream is the one being read, `this` being
 * the stream that emitted, so that a stream done with never touches the next message's outcome.
 */
import type { Readable } from 'node:stream';
import { nextAsPromise, type PieceSource } from './backend-connection.js';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class StreamChunks implements AsyncIterator<Buffer, undefined>, PieceSource {
  private stream: Readable | undefined;
  /** undefined while the stream may still give chunks; null once it ended; the error that ended it otherwise. */
  private outcome: Error | null | undefined;
  /** Resumes the pending next(), while it waits for the stream. */
  private waiting: (() => void) | undefined;
  private readonly wake = ((chunks: StreamChunks) =>
    function (this: Readable): void {
      if (this === chunks.stream) chunks.resume();
    })(this);
  private readonly ended = ((chunks: StreamChunks) =>
    function (this: Readable): void {
      if (this === chunks.stream) chunks.settle(null);
    })(this);
  /** Every stream closes, after its outcome too (it is destroyed once its end is read): the error, with its stack, is made only for a close that decides. */
  private readonly closed = ((chunks: StreamChunks) =>
    function (this: Readable): void {
      if (this === chunks.stream && chunks.outcome === undefined) chunks.settle(prematureClose());
    })(this);
  /** Also what keeps a stream's late error (after its outcome) from going unheard. */
  private readonly failed = ((chunks: StreamChunks) =>
    function (this: Readable, err: Error): void {
      if (this === chunks.stream) chunks.settle(err);
    })(this);

  /** Starts reading `stream`, a new message's: whatever the last one was, its outcome was read. */
  read(stream: Readable): this {
    this.stream = stream;
    this.outcome = undefined;
    this.waiting = undefined;
    stream.on('readable', this.wake);
    stream.on('end', this.ended);
    stream.on('error', this.failed);
    stream.on('close', this.closed);
    return this;
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    return nextAsPromise(this);
  }

  /**
   * The next chunk or the end when the stream has either; otherwise a promise that resolves once it
   * may have one (PieceSource), and then the stream is read again by whoever waited, a microtask
   * after the event, as Node's iterator reads it: read inside the `readable` event itself, a 50 MB
   * message behind a slow back end grew the edge by 34 MiB, not 1. Throws the stream's error.
   */
  nextPiece(): IteratorResult<Buffer, undefined> | Promise<void> {
    const stream = this.stream as Readable;
    const chunk = stream.destroyed ? null : (stream.read() as Buffer | null);
    if (chunk !== null) return { done: false, value: chunk };
    const outcome = this.outcome;
    if (outcome === undefined) return new Promise<void>(this.captureWaiting);
    stream.destroy();
    if (outcome === null) return DONE;
    throw outcome;
  }

  private readonly captureWaiting = (resolve: () => void): void => {
    this.waiting = resolve;
  };

  /** Whether the stream's end was read and it was destroyed: next() would only say done again. */
  get finished(): boolean {
    return this.outcome === null && (this.stream as Readable).destroyed;
  }

  /** The first of end, error and close decides. */
  private settle(outcome: Error | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    this.resume();
  }

  /** The pending next(), if any, reads again. */
  private resume(): void {
    const resume = this.waiting;
    this.waiting = undefined;
    resume?.();
  }
}

/** What Node's iterator rejects with for a stream destroyed before its end. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
